"""Run the pruning graph over a dataset: `run(config, place)` owns the run, gets it ready (new or resumed),
prunes its pending traces and ends the session.

Its parts, one job each: drp/run_config.py (the run's settings, typed, and what a resume may change),
drp/run_place.py (where the run lives), drp/run_lock.py (one process owns a run at a time),
drp/run_parts.py (the policy, teacher, price and counters, built once), drp/run_prepare.py (a new run built
aside and published whole, or an existing one resumed under its own settings), drp/run_traces.py (the traces
executed, in this process or forked workers), drp/run_results.py (a trace's final state as the store's rows)
and drp/run_finish.py (pruned.jsonl and the summary).

A trace whose teacher could not be reached at all (no endpoint answered) is left pending, not failed, and once
every endpoint is taken for down the run stops taking traces and ends with a TeacherUnreachable error; a resume
then finishes them. A resume also retries the traces that failed on a teacher error (an endpoint's fault, not
the trace's) unless told not to (`retry_failed`).
"""

from __future__ import annotations

from drp.run_config import RunConfig
from drp.run_errors import RunError, TeacherUnreachable
from drp.run_finish import RunSummary, finish
from drp.run_folders import clear_leftovers
from drp.run_lock import lock_run
from drp.run_parts import RunParts, build_teacher, load_policy, reuse_sources, teacher_price, token_counter
from drp.run_place import RunPlace
from drp.run_prepare import create, policy_changes, reopen, settle
from drp.run_traces import execute

__all__ = ["RunConfig", "RunError", "RunPlace", "RunSummary", "TeacherUnreachable", "run"]


def run(config: RunConfig, place: RunPlace, progress: bool = True) -> RunSummary:
    """Prune every pending trace of the run at `place`: a new one made from `config`, or, with --resume, the
    run there under its own settings (but for what drp.run_config.RESUMABLE lets `config` change)."""
    with lock_run(place):  # before anything is read or written; the workers share it
        clear_leftovers(place)
        config, saved = settle(place, config)
        # Every setting is checked before the run is created or changed: an LLM policy without a teacher, an
        # unknown price, a policy change not allowed, a tokenizer that cannot be loaded, a run reusing itself.
        policy = load_policy(config)
        teacher = build_teacher(config, policy, place)
        price = teacher_price(config, teacher)
        changes = policy_changes(config, place.run_id, saved, policy) if saved else []
        parts = RunParts(policy, teacher, price, token_counter(config))
        parts.reuse = reuse_sources(config, place, teacher)
        try:
            store = reopen(place, config, parts, saved, changes) if saved else create(place, config, parts)
            processed, seconds, unreachable = execute(store, place, config, parts, progress)
            return finish(store, place, config, processed, seconds, unreachable)
        finally:
            parts.close()
