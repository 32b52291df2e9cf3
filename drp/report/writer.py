"""Writing the report: one HTML file with inline CSS/JS, an index JSON block and one JSON block per trace.

The page parses only the index at load; a trace's block is parsed when the trace is opened. Every text
from the run reaches the page inside JSON whose `<` is written as \\u003c, so no trace or model reply can
close the script element or open a comment, and the page's JS inserts it with textContent only.
A Content-Security-Policy that allows exactly our script (by hash) and no network is the second fence.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

import drp.report.data as data
from drp.costs import run_price
from drp.errors import UserError
from drp.jsonl import atomic_write
from drp.layout import SECTION_BREAK
from drp.outcomes import reason_kind
from drp.report.summary import summarise
from drp.store import RunStore

ASSETS = "assets"


@dataclass
class ReportResult:
    path: Path
    traces: int
    bytes: int
    seconds: float


def embed_json(value) -> Markup:
    """JSON safe inside <script type="application/json">: no `<` at all, so no `</script` or `<!--`."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return Markup(text.replace("<", "\\u003c"))


def _asset(name: str) -> str:
    return resources.files("drp.report").joinpath(ASSETS, name).read_text(encoding="utf-8")


def default_out(src: RunStore, vs: RunStore | None) -> Path:
    """In the run's folder; in the current folder when the run's is read-only (a read-only mount, another
    user's run)."""
    name = f"report-vs-{vs.folder.name}.html" if vs else "report.html"
    if os.access(src.folder, os.W_OK):
        return src.folder / name
    return Path.cwd() / f"{src.folder.name}-{name}"


def is_report(path: Path) -> bool:
    """A page this writer made (its title says so near the top)."""
    if not path.is_file():  # never open a FIFO or a device to look
        return False
    try:
        with open(path, "rb") as handle:
            return b"<title>drp report" in handle.read(4096)
    except OSError:
        return False


def check_out(out: Path, overwrite: bool) -> None:
    """The report may replace an earlier report; any other file only with `overwrite`, and never a file of
    any drp run (its database, config, results) or of another command's output (drp.outputs): inside a run's
    folder it only adds or replaces an HTML page."""
    from drp.outputs import check_output

    if out.is_dir():
        raise UserError(f"--out {out} is a folder: name the HTML file to write, e.g. --out {out / 'report.html'}")
    check_output(out, "report", allowed_in_run=_page_in_a_run)
    if not out.exists() or is_report(out):
        return
    if not overwrite:
        raise UserError(
            f"--out {out} exists and is not a drp report: pass --overwrite to replace it, or choose another --out"
        )


def _page_in_a_run(path: Path) -> bool:
    return path.suffix.lower() == ".html" and (not path.exists() or is_report(path))


def write_report(
    run: str,
    out: Path | None = None,
    statuses: list[str] | None = None,
    limit: int | None = None,
    vs: str | None = None,
    overwrite: bool = False,
) -> ReportResult:
    """Write the report of RUN (optionally side by side with run VS) and return where and how big."""
    started = time.perf_counter()
    src = data.open_report_run(run)
    other = data.open_report_run(vs) if vs else None
    out = Path(out) if out else default_out(src, other)
    check_out(out, overwrite)
    rows = data.list_rows(src, statuses, limit)
    index = build_index(src, rows, statuses, limit, other)
    if index["vs"] is not None:
        # Each trace links to its twin in the other run's own side-by-side report (`drp report B --vs A`).
        twin = default_out(other, src)
        index["vs"]["twin_report"] = os.path.relpath(twin.resolve(), out.parent.resolve())
        index["vs"]["twin_command"] = f"drp report {other.folder} --vs {src.folder}"

    js = _asset("report.js")
    script_hash = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode()
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(_asset("report.html"))
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and moved into place: an interrupted report never leaves a half page where one was. A report
    # is a page to share: readable by all, whatever the umask.
    with atomic_write(out, errors="replace", mode=0o644) as handle:
        for chunk in template.generate(
            title=index["run"].get("id") or src.folder.name,
            vs_title=(index["vs"]["run"].get("id") if index["vs"] else None),
            css=Markup(_asset("report.css")),
            js=Markup(js),
            script_hash=script_hash,
            index=embed_json(index),
            details=_detail_blocks(src, rows, other),
        ):
            handle.write(chunk)
    return ReportResult(path=out, traces=len(rows), bytes=out.stat().st_size, seconds=time.perf_counter() - started)


def build_index(src: RunStore, rows: list[dict], statuses, limit, other: RunStore | None) -> dict:
    """Header data plus one small row per listed trace (the page's list, filters and sorting use only this)."""
    summary = summarise(src)
    info = data.run_info(src)
    price, batch = run_price(info.get("config"))
    steps = data.step_summaries(src)
    skills = sorted({skill for entry in steps.values() for skill in entry["skills"]})
    skill_number = {skill: i for i, skill in enumerate(skills)}
    other_rows = {row["id"]: row for row in data.list_rows(other)} if other else {}
    listed = []
    for row in rows:
        entry = steps.get(row["id"], {"skills": (), "actions": {}})
        item = {
            "id": row["id"],
            "line": row["line"],
            "status": row["status"] or "unknown",
            "reason": row["reason"],
            "reason_kind": reason_kind(row["reason"]),
            "attempts": row["attempts"],
            "question": row["question"],
            "gold": row["gold_answer"],
            "original_answer": row["original_answer"],
            "pruned_answer": row["pruned_answer"],
            "before": row["thinking_tokens_before"],
            "after": row["thinking_tokens_after"],
            "response_before": row["response_tokens_before"],
            "response_after": row["response_tokens_after"],
            "teacher_in": row["teacher_input_tokens"],
            "teacher_out": row["teacher_output_tokens"],
            "teacher_calls": row["teacher_calls"],
            "seconds": row["seconds"],
            "cost": price.cost(row["teacher_input_tokens"], row["teacher_output_tokens"], batch) if price else None,
            "skills": sorted(skill_number[s] for s in entry["skills"]),
            "actions": entry["actions"],
        }
        if other:
            theirs = other_rows.get(row["id"])
            item["vs"] = (
                None
                if theirs is None
                else {
                    "status": theirs["status"] or "unknown",
                    "reason": theirs["reason"],
                    "before": theirs["thinking_tokens_before"],
                    "after": theirs["thinking_tokens_after"],
                    "pruned_answer": theirs["pruned_answer"],
                    "attempts": theirs["attempts"],
                }
            )
        listed.append(item)
    vs = None
    if other:
        mine = src.trace_ids()
        vs = {
            "run": data.run_info(other),
            "summary": summarise(other),
            "only_in_vs": len(set(other_rows) - mine),
            "missing_in_vs": len(mine - set(other_rows)),
        }
    return {
        "format": 1,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run": info,
        "summary": summary,
        "vs": vs,
        "selection": {"statuses": statuses or [], "limit": limit, "shown": len(rows), "total": summary["traces"]},
        "skills": skills,
        "columns": {"steps": data.STEP_COLUMNS, "calls": data.EMBEDDED_CALL_COLUMNS},
        # drp.layout's response layout: the page joins a pruned thinking and answer section with it
        "layout": {"section_break": SECTION_BREAK},
        "rows": listed,
    }


def _detail_blocks(src: RunStore, rows: list[dict], other: RunStore | None) -> Iterator[tuple[int, Markup]]:
    """(position in the list, JSON) per trace, read one at a time so memory stays flat for big runs."""
    for position, row in enumerate(rows):
        detail = data.trace_detail(src, row["id"]) or {}
        if other:
            detail["vs"] = data.comparison(other, row["id"])
        yield position, embed_json(detail)
