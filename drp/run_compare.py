"""Several runs side by side on the traces they share (`drp stats RUN_A RUN_B …`, the end of a `--set` sweep).

Traces are paired by id and compared where every run finished them (not pending): one policy against another on
the same inputs. Teacher calls and tokens per trace count what each trace needed (its own calls and those it
reused from other runs); cost is what each run spent on them (reused replies cost nothing)."""

from __future__ import annotations

import statistics

from drp.store import json_or_text

COLUMNS = (
    "id",
    "status",
    "thinking_tokens_before",
    "thinking_tokens_after",
    "response_tokens_before",
    "response_tokens_after",
    "teacher_calls",
    "teacher_input_tokens",
    "teacher_output_tokens",
    "reused_calls",
    "reused_input_tokens",
    "reused_output_tokens",
    "seconds",
    "checks",
)

# (key, label, how it is shown)
ROWS = (
    ("accepted_share", "accepted", "pct"),
    ("thinking_reduction", "thinking tokens reduction (accepted, mean)", "pct"),
    ("response_reduction", "response tokens reduction (accepted, mean)", "pct"),
    ("derivation_pass", "derivation check passed (accepted)", "pct"),
    ("calls_per_trace", "teacher calls per trace", "num"),
    ("reused_share", "of them reused from other runs", "pct"),
    ("input_tokens_per_trace", "teacher input tokens per trace", "int"),
    ("output_tokens_per_trace", "teacher output tokens per trace", "int"),
    ("cost", "cost spent on these traces", "cost"),
    ("seconds_per_trace", "seconds per trace (in flight)", "num"),
    ("wall_seconds", "wall time of the run", "num"),
)


def compare(stores: list, price=None) -> dict:
    """Per run (drp.store.RunStore, read-only), its figures on the traces all of them finished. `price` (a
    drp.costs.Price) prices every run alike; without it each run's own price is used."""
    from drp.costs import run_price

    tables = [{row["id"]: row for row in store.traces(COLUMNS) if row["status"] != "pending"} for store in stores]
    shared = set(tables[0]).intersection(*tables[1:]) if tables else set()
    runs = []
    for store, rows in zip(stores, tables):
        info = store.run_row()
        own_price, batch = run_price(json_or_text(info.get("config")))
        figures = _figures([rows[trace] for trace in sorted(shared)], price or own_price, batch)
        runs.append(
            {
                "run_id": info.get("id") or store.folder.name,
                "policy": info.get("policy"),
                "policy_hash": info.get("policy_hash"),
                "traces": len(rows),
                "wall_seconds": info.get("wall_seconds"),
                **figures,
            }
        )
    return {"shared": len(shared), "runs": runs}


def _figures(rows: list[dict], price, batch: bool) -> dict:
    count = len(rows)
    accepted = [row for row in rows if row["status"] == "accepted"]
    derivation = [
        checks.get("derivation")
        for row in accepted
        if isinstance(checks := json_or_text(row["checks"]), dict) and checks.get("derivation") is not None
    ]
    calls = [(row["teacher_calls"] or 0) + (row["reused_calls"] or 0) for row in rows]
    reused = sum(row["reused_calls"] or 0 for row in rows)
    spent_in = [row["teacher_input_tokens"] for row in rows]
    spent_out = [row["teacher_output_tokens"] for row in rows]
    known = None not in spent_in and None not in spent_out
    cost = None
    if price is not None and known:
        cost = price.cost(sum(spent_in), sum(spent_out), batch)
    return {
        "accepted_share": len(accepted) / count if count else None,
        "thinking_reduction": _mean(
            [_reduction(r["thinking_tokens_before"], r["thinking_tokens_after"]) for r in accepted]
        ),
        "response_reduction": _mean(
            [_reduction(r["response_tokens_before"], r["response_tokens_after"]) for r in accepted]
        ),
        "derivation_pass": sum(1 for passed in derivation if passed) / len(derivation) if derivation else None,
        "calls_per_trace": sum(calls) / count if count else None,
        "reused_share": reused / sum(calls) if sum(calls) else None,
        "input_tokens_per_trace": _needed(rows, "input"),
        "output_tokens_per_trace": _needed(rows, "output"),
        "cost": cost,
        "currency": price.currency if price else None,
        "seconds_per_trace": _mean([row["seconds"] for row in rows]),
    }


def _needed(rows: list[dict], side: str) -> float | None:
    """Teacher tokens per trace, spent and reused together (None when some are unknown)."""
    values = []
    for row in rows:
        spent, reused = row[f"teacher_{side}_tokens"], row[f"reused_{side}_tokens"]
        if (spent is None and row["teacher_calls"]) or (reused is None and row["reused_calls"]):
            return None
        values.append((spent or 0) + (reused or 0))
    return sum(values) / len(values) if values else None


def _reduction(before, after) -> float | None:
    return 1 - after / before if before and after is not None else None


def _mean(values) -> float | None:
    values = [value for value in values if value is not None]
    return statistics.fmean(values) if values else None


def table(result: dict) -> str:
    """The comparison as aligned text: one row per figure, one column per run."""
    from drp.costs import format_cost

    runs = result["runs"]

    def shown(run: dict, key: str, how: str) -> str:
        value = run.get(key)
        if value is None:
            return "-"
        return {
            "pct": f"{value:.1%}",
            "num": f"{value:,.1f}",
            "int": f"{value:,.0f}",
            "cost": format_cost(value, run.get("currency") or "USD"),
        }[how]

    header = ["", *(run["run_id"] for run in runs)]
    lines = [
        ["policy", *(f"{run['policy']} [{(run['policy_hash'] or '')[:8]}]" for run in runs)],
        ["finished traces", *(str(run["traces"]) for run in runs)],
    ]
    lines += [[label, *(shown(run, key, how) for run in runs)] for key, label, how in ROWS]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    out = [f"{result['shared']} traces finished in all {len(runs)} runs (figures below are on those)"]
    for row in [header, *lines]:
        out.append("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
    return "\n".join(out)
