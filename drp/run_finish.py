"""Ending a run's session: its pruned.jsonl rebuilt from the database, its counts, and a summary (or, when the
teacher could not be reached, the error that says how to finish the traces left pending)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from drp.jsonl import write_jsonl
from drp.outcomes import FAILED
from drp.run_config import RunConfig
from drp.run_errors import TeacherUnreachable
from drp.run_place import RunPlace
from drp.store import RunStore


@dataclass
class RunSummary:
    run_id: str
    path: Path
    processed: int
    counts: dict[str, int]
    seconds: float

    @property
    def failed(self) -> int:
        return self.counts.get(FAILED, 0)


def finish(
    store: RunStore, place: RunPlace, config: RunConfig, processed: int, seconds: float, unreachable: str | None
) -> RunSummary:
    """End the session and close the store; the summary, or TeacherUnreachable when traces were left pending."""
    store.end_session(place.run_id, seconds)
    write_pruned_jsonl(store, place.folder)
    counts = store.status_counts()
    store.close()
    if unreachable:
        error = TeacherUnreachable(
            f"{unreachable}: stopped with {counts.get('pending', 0)} traces left pending; "
            f"finish with `drp run {config.source.path} --run-id {place.run_id} --resume` "
            "once an endpoint answers"
        )
        error.reason = unreachable
        raise error
    return RunSummary(place.run_id, place.folder, processed, counts, seconds)


def write_pruned_jsonl(store: RunStore, folder: Path) -> Path:
    """Accepted results, rebuilt from the database each time (atomic replace: never half-written). Each
    record names the policy it was made with (a run resumed under a changed policy holds several)."""
    run = store.run_row()
    history = json.loads(run.get("policy_history") or "[]")
    prompt_hashes = {entry["hash"]: entry.get("prompt_hashes") for entry in history}
    first = history[0]["hash"] if history else None  # traces made before policy hashes were kept
    records = store.accepted()
    for record in records:
        made_with = record.get("policy_hash") or first
        record.update(
            policy=run.get("policy"),
            policy_hash=made_with,
            prompt_hashes=prompt_hashes.get(made_with) or json.loads(run.get("prompt_hashes") or "{}"),
        )
    return write_jsonl(folder / "pruned.jsonl", records)
