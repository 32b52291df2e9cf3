"""Getting a run ready for its traces: a new one built aside and published whole (drp/run_folders.py), or an
existing one resumed with its own settings (drp.run_config.RESUMABLE says what a resume may change; a
changed policy is refused unless allowed, and then recorded). Call these holding the run's lock."""

from __future__ import annotations

import json
from pathlib import Path

from drp import input_traces
from drp.jsonl import atomic_write
from drp.run_config import RunConfig, resumed, with_default_policy
from drp.run_errors import RunError
from drp.run_folders import is_empty_folder, is_run_folder, publish, staging
from drp.run_parts import RunParts, same_file
from drp.run_place import RunPlace
from drp.store import DB_NAME, RunStore, check_intact, check_readable, dumps, now, open_run


def settle(place: RunPlace, config: RunConfig) -> tuple[RunConfig, dict | None]:
    """The config to run with, and the saved config.json when this resumes an existing run (None: a new run).
    Nothing is written here: a refusal leaves everything as it was."""
    from drp.redaction import is_redacted

    folder, run_id, execution = place.folder, place.run_id, config.execution
    exists = folder.exists() and not is_empty_folder(folder)
    if exists and not is_run_folder(folder):
        if not execution.overwrite and (folder / DB_NAME).is_file():
            check_intact(folder / DB_NAME)  # a damaged database is named as such, not as a stranger's folder
            check_readable(folder / DB_NAME)  # so is one damaged inside, where its list of tables spans pages
        raise RunError(
            f"{folder} exists and is not a drp run: drp never writes into or deletes it. "
            "Choose another --run-id, or move that folder"
        )
    if exists and execution.overwrite:
        if folder.is_symlink():  # the link would be swapped, not the run it points to
            raise RunError(
                f"{folder} is a link: --overwrite replaces run folders only; remove the link or choose another --run-id"
            )
        # else: a new run, swapped in for the old one once complete
    elif exists and not execution.resume:
        raise RunError(f"run {run_id!r} already exists at {folder}: pass --resume to finish it or --overwrite")
    elif not exists and execution.resume:
        raise RunError(f"nothing to resume: no run {run_id!r} at {folder}")
    if not exists or execution.overwrite:
        input_traces.check_source(config.source.path)  # a missing input makes no run
        return with_default_policy(config), None
    saved_config = _saved_config(folder, run_id)
    saved = RunConfig.from_options(saved_config["options"])
    if config.policy.name is not None and saved.policy.name != config.policy.name:
        raise RunError(f"run {run_id!r} used policy {saved.policy.name!r}; cannot resume with {config.policy.name!r}")
    if not config.teacher.urls and any(is_redacted(url) for url in saved.teacher.urls):
        raise RunError(
            f"run {run_id!r} used a teacher URL with credentials, which are never stored: "
            "pass --teacher-url again to resume it"
        )
    return resumed(saved, config, lambda own, given: _resume_source(own, given, run_id)), saved_config


def create(place: RunPlace, config: RunConfig, parts: RunParts) -> RunStore:
    """Build the run aside (database, every input line, settings; the run's row last), move it into place
    whole (a kill at any instant before leaves no run, after leaves a resumable one), and open it."""
    with staging(place) as staged:
        store = open_run(staged, write=True)
        try:
            lines = store.ingest(_input(config))
            policy = parts.policy
            history = [
                {"hash": policy.policy_hash, "since": now(), "prompt_hashes": policy.prompt_hashes, "changes": []}
            ]
            _write_config(staged, store, place.run_id, config, parts, history, input_lines=lines)
        finally:
            store.close()  # before the folder moves: SQLite names its side files by path
        publish(staged, place)
    return open_run(place.folder, write=True)


def reopen(place: RunPlace, config: RunConfig, parts: RunParts, saved: dict, changes: list[str]) -> RunStore:
    """An existing run, for this session: its config brought up to date (the policy history included)."""
    run_id, source = place.run_id, config.source.path
    store = open_run(place.folder, write=True)
    _write_config(place.folder, store, run_id, config, parts, _history(saved, parts.policy, changes))
    if store.run_row().get("input_lines") is None:  # a run made before runs were ingested whole
        if _is_gone(source):
            store.close()
            raise RunError(
                f"the input of run {run_id!r}, {source}, is missing: pass where it is now, "
                f"`drp run NEW_PATH --run-id {run_id} --resume`"
            )
        store.save_run(run_id, {"input_lines": store.ingest(_input(config))})
    return store


def policy_changes(config: RunConfig, run_id: str, saved: dict, policy) -> list[str]:
    """How the policy differs from the one the run was made with (empty: the same). A change is refused
    unless the user allowed it."""
    from drp.policy import snapshot_changes, snapshot_hash

    before = saved.get("policy") or {}
    if policy.policy_hash == (saved.get("policy_hash") or snapshot_hash(before)):
        return []
    changes = snapshot_changes(before, policy.snapshot()) or ["its content (same settings, different hash)"]
    if not config.policy.allow_change:
        raise RunError(
            f"run {run_id!r} was made with another version of policy {policy.name!r}; changed: "
            f"{'; '.join(changes)}. Resume with the run's policy, or pass --allow-policy-change to "
            "finish it with this one (each trace keeps the policy hash it was made with)"
        )
    return changes


def _input(config: RunConfig):
    return input_traces.load(config.source.path, config.source.field_map, config.source.split)


def _saved_config(folder: Path, run_id: str) -> dict:
    """The config of a complete run, or a RunError saying the run cannot be resumed."""
    from drp.store import IncompleteRun, RunNotFound

    try:
        open_run(folder).close()  # only looks: a run whose creation never finished is refused untouched
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config["options"]["policy"]  # noqa: B018 - a config without its options is as good as none
        return config
    except (IncompleteRun, RunNotFound, OSError, ValueError, KeyError, TypeError):
        raise RunError(
            f"run {run_id!r} at {folder} cannot be resumed: its creation was interrupted before its "
            "settings were saved. Start it again with --overwrite"
        ) from None


def _history(saved: dict, policy, changes: list[str]) -> list[dict]:
    """The run's policies in order of use: hash, since when, prompt hashes, what changed (and, for the ones
    no longer in use, the whole snapshot)."""
    from drp.policy import snapshot_hash

    before = saved.get("policy") or {}
    history = saved.get("policy_history") or [
        {
            "hash": snapshot_hash(before),
            "since": None,
            "prompt_hashes": before.get("prompt_hashes") or {},
            "changes": [],
        }
    ]
    if changes:
        history[-1]["snapshot"] = before
        history.append(
            {"hash": policy.policy_hash, "since": now(), "prompt_hashes": policy.prompt_hashes, "changes": changes}
        )
    return history


def _resume_source(saved: str, given: str, run_id: str) -> str:
    """The input a resumed run records: its own; or, when its own is gone (moved, renamed), the one given.
    Another input than its own is refused: the run's lines came from its own."""
    if given == saved or same_file(given, saved):
        return saved
    if _is_gone(saved):
        input_traces.check_source(given)
        return given
    raise RunError(
        f"run {run_id!r} reads {saved}, not {given}: resume it with its own input (or start a new run for this one)"
    )


def _is_gone(source: str) -> bool:
    return not Path(source).expanduser().exists() and input_traces.looks_local(source)


def _write_config(
    folder: Path,
    store: RunStore,
    run_id: str,
    config: RunConfig,
    parts: RunParts,
    history: list[dict],
    input_lines: int | None = None,
) -> None:
    """config.json (replaced whole, never half-written), then the run's row."""
    from drp.redaction import redact_url

    policy, teacher, counter, price = parts.policy, parts.teacher, parts.counter, parts.price
    urls = [redact_url(url) for url in config.teacher.urls]  # credentials stay out
    stored = {
        "run_id": run_id,
        "options": {**config.to_options(run_id), "teacher_urls": urls},
        "policy": policy.snapshot(),
        "policy_hash": policy.policy_hash,
        "policy_history": history,
        "teacher": teacher.settings.public() if teacher else None,
        "tokenizer": counter.name,
        "teacher_tokenizer": teacher.usage_counter.name if teacher and teacher.usage_counter else None,
        "price": price.public() if price else None,
    }
    with atomic_write(folder / "config.json") as out:
        out.write(json.dumps(stored, indent=2, ensure_ascii=False))
    row = {
        "policy": policy.name,
        "input": config.source.path,
        "teacher_url": " ".join(urls) if teacher else None,
        "teacher_model": config.teacher.model if teacher else None,
        "tokenizer": counter.name,
        "config": dumps(stored),
        "prompt_hashes": dumps(policy.prompt_hashes),
        "policy_hash": policy.policy_hash,
        "policy_history": dumps([{k: v for k, v in entry.items() if k != "snapshot"} for entry in history]),
    }
    if input_lines is not None:
        row["input_lines"] = input_lines
    store.save_run(run_id, row)
