"""`drp diff RUN_A RUN_B ID`: one trace under two policies, step by step.

Steps are lined up by the original text they cover (their unit ranges) when both runs segmented by reference, so
two segmentations of the same thinking meet where they start at the same unit; otherwise by step number. Each row
shows the original span once and, per run, its skill, action and what the step became; a row where the runs
differ is marked. Above the table: each run's status, token counts and checks."""

from __future__ import annotations

from itertools import zip_longest

from drp.errors import UserError
from drp.store import json_or_text

STYLES = {"KEEP": "green", "DELETE": "red", "COMPRESS": "yellow", "MERGE": "cyan"}


def rows(steps_a: list[dict], steps_b: list[dict]) -> list[tuple[str, str, dict | None, dict | None]]:
    """(where, original text, step of A or None, step of B or None), in the order of the original."""
    by_units = all(s.get("unit_start") is not None for s in steps_a + steps_b)
    if not by_units:
        return [
            (str(n), (a or b)["text"] or "", a, b) for n, (a, b) in enumerate(zip_longest(steps_a, steps_b), start=1)
        ]
    starts_a = {s["unit_start"]: s for s in steps_a}
    starts_b = {s["unit_start"]: s for s in steps_b}
    lined = []
    for start in sorted(set(starts_a) | set(starts_b)):
        a, b = starts_a.get(start), starts_b.get(start)
        ends = {s["unit_end"] for s in (a, b) if s}
        where = f"{start}" if ends == {start} else f"{start}–{max(ends)}"
        text = (a if a and (not b or a["unit_end"] >= b["unit_end"]) else b)["text"] or ""
        lined.append((where, text, a, b))
    return lined


def became(step: dict | None) -> str:
    if step is None:
        return ""
    action = (step.get("action") or "").upper()
    return {"KEEP": step.get("text") or "", "DELETE": ""}.get(action, step.get("rewritten") or "")


def show(store_a, store_b, trace_id: str) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    traces = [store.trace(trace_id) for store in (store_a, store_b)]
    names = [store.run_row().get("id") or store.folder.name for store in (store_a, store_b)]
    for name, trace in zip(names, traces):
        if trace is None:
            raise UserError(f"no trace {trace_id!r} in run {name}")
    if traces[0]["question"] != traces[1]["question"] or traces[0]["response"] != traces[1]["response"]:
        raise UserError(
            f"trace {trace_id!r} is not the same record in {names[0]} and {names[1]} (question or "
            "response differ): compare runs of the same input"
        )
    console = Console()
    console.print(Text(trace_id, "bold"))
    for side, name, store, trace in zip("AB", names, (store_a, store_b), traces):
        checks = json_or_text(trace.get("checks")) or {}
        measured = ", ".join(f"{k} {v}" for k, v in checks.items()) if checks else "-"
        console.print(
            Text(
                f"{side} = {name} ({store.run_row().get('policy')}): {trace['status']} "
                f"({trace['reason'] or '-'}) · attempts {trace['attempts']} · thinking tokens "
                f"{trace['thinking_tokens_before']} → {trace['thinking_tokens_after'] or '-'} · checks: {measured}"
            )
        )
    table = Table(show_lines=True, expand=True)
    table.add_column("units")
    table.add_column("original", overflow="fold", ratio=1)
    table.add_column("A", overflow="fold", ratio=1)
    table.add_column("B", overflow="fold", ratio=1)
    steps = [store.steps(trace_id) for store in (store_a, store_b)]
    for where, original, a, b in rows(*steps):
        same = (
            a is not None
            and b is not None
            and (a["action"], became(a), a["skill"]) == (b["action"], became(b), b["skill"])
        )
        table.add_row(Text(where + ("" if same else " ≠"), "" if same else "bold"), Text(original), _cell(a), _cell(b))
    console.print(table)
    for side, trace in zip("AB", traces):  # after </think>: what each policy made of the answer section
        section = trace.get("pruned_answer_section")
        console.print(
            Text(f"{side} after </think>: ").append(section if section is not None else "(not accepted)", "dim")
        )


def _cell(step: dict | None):
    """A step as one run made it: skill and action, then what the step became (a kept step: its original)."""
    from rich.text import Text

    if step is None:
        return Text("(inside another step)", "dim")
    action = (step["action"] or "-").upper()
    cell = Text(f"{step['skill'] or '-'} · ").append(action, STYLES.get(action, "white"))
    if action == "KEEP":
        return cell.append("\n(as the original)", "dim")
    return cell.append("\n" + became(step)) if became(step) else cell
