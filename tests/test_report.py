"""`drp report` without a browser: what the HTML file embeds, and how it is escaped, for real rules runs."""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drp.cli import app
from drp.report.data import verdicts
from drp.report.writer import embed_json

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "traces.jsonl"
INJECTION = {
    "id": "inject-1",
    "question": 'What is 2 + 3? <script>document.title="pwned";window.drpPwned="question"</script>',
    "gold_answer": "5",
    "response": (
        "Okay, so I need to add 2 and 3. <img src=x onerror=\"window.drpPwned='img'\">\n\n"
        "First, 2 + 3 = 5. </script><script>window.drpPwned='breakout'</script><!-- not a comment\n\n"
        "So the answer is 5.\n</think>\n\nThe answer is \\boxed{5}. <svg onload=\"window.drpPwned='svg'\"></svg>"
    ),
}


def drp(*args: str) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def embedded(html: str) -> tuple[dict, dict[int, dict]]:
    """The index block and every per-trace block, parsed back the way the browser's JSON.parse would."""
    index = json.loads(re.search(r'<script type="application/json" id="drp-index">(.*?)</script>', html, re.S)[1])
    blocks = {
        int(pos): json.loads(text)
        for pos, text in re.findall(r'<script type="application/json" id="drp-t(\d+)">(.*?)</script>', html, re.S)
    }

    # Steps and calls are embedded as rows of values under the index's column names.
    def objects(rows, kind):
        return [dict(zip(index["columns"][kind], values)) for values in rows]

    for detail in blocks.values():
        detail["steps"] = objects(detail["steps"], "steps")
        detail["calls"] = objects(detail["calls"], "calls")
        if detail.get("vs"):
            detail["vs"]["steps"] = objects(detail["vs"]["steps"], "steps")
    return index, blocks


def db_rows(run: Path, sql: str, params=()) -> list[tuple]:
    with sqlite3.connect(run / "drp.db") as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
def rules_run(hermetic_runs) -> Path:
    drp("run", EXAMPLES, "--policy", "rules", "--run-id", "ex")
    return hermetic_runs / "ex"


def test_report_embeds_the_whole_run_and_nothing_external(rules_run):
    out = drp("report", "ex")
    report = rules_run / "report.html"
    assert str(report) in out
    html = report.read_text()
    # Self-contained: the page itself (data blocks aside) loads nothing; one executable script; no-network CSP.
    shell = re.sub(r'<script type="application/json".*?</script>', "", html, flags=re.S)
    assert not re.search(r"<link|\bsrc=|url\(|@import|https?://(?!www\.w3\.org/2000/svg)", shell)
    assert len(re.findall(r"<script>", html)) == 1
    assert "default-src 'none'" in html

    index, blocks = embedded(html)
    traces = db_rows(
        rules_run, "SELECT id, status, thinking_tokens_before, thinking_tokens_after FROM traces ORDER BY line"
    )
    assert [r["id"] for r in index["rows"]] == [t[0] for t in traces]
    assert [r["status"] for r in index["rows"]] == [t[1] for t in traces]
    assert sorted(blocks) == list(range(len(traces)))
    assert index["run"]["policy"] == "rules"
    assert index["run"]["prompt_hashes"] == json.loads(db_rows(rules_run, "SELECT prompt_hashes FROM runs")[0][0])

    # Header numbers agree with the database computed independently here.
    summary = index["summary"]
    by_status = dict(db_rows(rules_run, "SELECT status, COUNT(*) FROM traces GROUP BY status"))
    assert summary["status"] == by_status and summary["traces"] == len(traces)
    accepted = [1 - a / b for _, s, b, a in traces if s == "accepted"]
    assert summary["reduction"]["n"] == len(accepted)
    assert summary["reduction"]["mean"] == pytest.approx(statistics.fmean(accepted))
    assert summary["reduction"]["median"] == pytest.approx(statistics.median(accepted))
    histogram = summary["reduction"]["histogram"]
    assert histogram["negative"] + sum(histogram["bins"]) == len(accepted)
    assert summary["actions"] == dict(db_rows(rules_run, "SELECT action, COUNT(*) FROM steps GROUP BY action"))

    # Each detail block carries that trace's steps, calls and verifier verdicts.
    assert index["layout"]["section_break"] == "\n</think>\n\n"  # the page joins pruned sections with drp.layout's
    for pos, row in enumerate(index["rows"]):
        detail = blocks[pos]
        steps = db_rows(
            rules_run, "SELECT step, action, text FROM steps WHERE trace_id = ? ORDER BY step", (row["id"],)
        )
        assert [(s["step"], s["action"], s["text"]) for s in detail["steps"]] == steps
        calls = db_rows(rules_run, "SELECT node FROM calls WHERE trace_id = ? ORDER BY seq", (row["id"],))
        assert [c["node"] for c in detail["calls"]] == [c[0] for c in calls]
        assert len(detail["verdicts"]) == sum(1 for c in calls if c[0] == "verifier")
        if row["status"] == "accepted":
            assert detail["verdicts"][-1]["passed"] is True
            pruned = db_rows(rules_run, "SELECT pruned_response FROM traces WHERE id = ?", (row["id"],))[0][0]
            rebuilt = detail["pruned_thinking"] + "\n</think>\n\n" + detail["pruned_answer_section"]
            assert rebuilt == pruned or detail["pruned_response"] == pruned


def test_status_and_limit_select_traces(rules_run):
    drp("report", "ex", "--status", "rejected", "--out", rules_run / "rejected.html")
    index, blocks = embedded((rules_run / "rejected.html").read_text())
    rejected = [r[0] for r in db_rows(rules_run, "SELECT id FROM traces WHERE status = 'rejected' ORDER BY line")]
    assert rejected and [r["id"] for r in index["rows"]] == rejected and len(blocks) == len(rejected)
    assert index["selection"]["total"] == len(db_rows(rules_run, "SELECT id FROM traces"))

    drp("report", str(rules_run), "--status", "accepted,rejected", "--limit", "3", "--out", rules_run / "three.html")
    index, blocks = embedded((rules_run / "three.html").read_text())
    first = [r[0] for r in db_rows(rules_run, "SELECT id FROM traces ORDER BY line LIMIT 3")]
    assert [r["id"] for r in index["rows"]] == first and len(blocks) == 3


def test_a_damaged_run_still_gets_a_report(rules_run):
    # A run db without its runs row and calls table (older or interrupted runs): the report falls back to
    # config.json and shows what is there instead of failing.
    with sqlite3.connect(rules_run / "drp.db") as conn:
        conn.execute("DELETE FROM runs")
        conn.execute("DROP TABLE calls")
    drp("report", "ex")
    index, blocks = embedded((rules_run / "report.html").read_text())
    assert index["run"]["config"]["policy"]["name"] == "rules"
    assert index["run"]["prompt_hashes"] == index["run"]["config"]["policy"]["prompt_hashes"]
    assert index["summary"]["nodes"] == [] and all(b["calls"] == [] and b["verdicts"] == [] for b in blocks.values())
    assert len(blocks) == len(db_rows(rules_run, "SELECT id FROM traces"))


def test_bad_arguments_fail_with_a_message(rules_run):
    result = CliRunner().invoke(app, ["report", "no-such-run"])
    assert result.exit_code == 2 and "no run database" in result.output
    result = CliRunner().invoke(app, ["report", "ex", "--status", "done"])
    assert result.exit_code == 2 and "unknown status done" in result.output


def test_vs_matches_traces_by_id(rules_run, hermetic_runs, tmp_path):
    # B: another policy over a subset, in a different order, so matching must go by id.
    records = [json.loads(line) for line in EXAMPLES.read_text().splitlines() if line.strip()]
    subset = tmp_path / "subset.jsonl"
    subset.write_text("".join(json.dumps(r) + "\n" for r in reversed(records[:5])))
    drp("run", subset, "--policy", "rules-keep-answer", "--run-id", "b")
    drp("report", "ex", "--vs", "b")
    index, blocks = embedded((rules_run / "report-vs-b.html").read_text())
    b_rows = {
        r[0]: r[1:]
        for r in db_rows(hermetic_runs / "b", "SELECT id, status, thinking_tokens_after, pruned_thinking FROM traces")
    }
    assert index["vs"]["run"]["policy"] == "rules-keep-answer"
    assert index["vs"]["missing_in_vs"] == len(records) - 5 and index["vs"]["only_in_vs"] == 0
    for pos, row in enumerate(index["rows"]):
        theirs = b_rows.get(row["id"])
        if theirs is None:
            assert row["vs"] is None and blocks[pos]["vs"] is None
        else:
            assert (row["vs"]["status"], row["vs"]["after"]) == theirs[:2]
            assert blocks[pos]["vs"]["pruned_thinking"] == theirs[2]
    # each trace links to its twin in B's own side-by-side report, which `drp report b --vs ex` writes there
    assert (rules_run / index["vs"]["twin_report"]).resolve() == (hermetic_runs / "b" / "report-vs-ex.html").resolve()
    drp("report", "b", "--vs", "ex")
    twin_index, _ = embedded((hermetic_runs / "b" / "report-vs-ex.html").read_text())
    assert (hermetic_runs / "b" / twin_index["vs"]["twin_report"]).resolve() == (
        rules_run / "report-vs-b.html"
    ).resolve()


def test_untrusted_text_cannot_leave_its_json_block(hermetic_runs, tmp_path):
    source = tmp_path / "inject.jsonl"
    source.write_text(json.dumps(INJECTION) + "\n")
    drp("run", source, "--policy", "rules", "--run-id", "inj")
    drp("report", "inj")
    html = (hermetic_runs / "inj" / "report.html").read_text()
    # No `<` from the data reaches the HTML: the only tags are the page's own.
    assert "drpPwned" in html  # the text is there...
    for fragment in ("<img src=x", "<script>document.title", "</script><script>window", "<!-- not", "<svg onload"):
        assert fragment not in html  # ...but never as markup
    index, blocks = embedded(html)
    assert index["rows"][0]["question"] == INJECTION["question"]
    originals = "".join(s["text"] for s in blocks[0]["steps"]) or blocks[0]["original_thinking"]
    assert "<img src=x onerror=" in originals and "</script><script>" in originals


@pytest.mark.parametrize(
    "value",
    ["</script><script>alert(1)</script>", "<!-- x", "<\u2028>\u2029", "a\\u003cb", {"k</SCRIPT>": ["<!--", 1]}],
)
def test_embed_json_round_trips_without_angle_brackets(value):
    text = str(embed_json(value))
    assert "<" not in text
    assert json.loads(text) == value


def test_verdicts_accept_the_shapes_a_verifier_may_record():
    calls = [
        {"node": "segmenter", "attempt": 1, "seq": 1, "parsed": {"passed": True}},
        {
            "node": "verifier",
            "attempt": 1,
            "seq": 2,
            "parsed": {
                "passed": False,
                "failures": ["answer changed"],
                "feedback": "keep step 4",
                "checks": {"shorter": True},
            },
        },
        {"node": "verifier", "attempt": 2, "seq": 3, "parsed": {"ok": True, "feedback": None}},
        {"node": "verifier", "attempt": 3, "seq": 4, "parsed": ["new number 7"]},
        {"node": "verifier", "attempt": 4, "seq": 5, "parsed": None, "error": "judge timed out"},
        {"node": "verifier", "attempt": 5, "seq": 6, "parsed": {"failures": "too long"}},
    ]
    found = verdicts(calls)
    assert [v["attempt"] for v in found] == [1, 2, 3, 4, 5]
    assert [v["passed"] for v in found] == [False, True, False, None, False]
    assert found[0]["failures"] == ["answer changed"] and found[0]["feedback"] == "keep step 4"
    assert found[0]["other"] == {"checks": {"shorter": True}}
    assert found[3]["error"] == "judge timed out"
    assert found[4]["failures"] == ["too long"]
