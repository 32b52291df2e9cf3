"""`drp report` in a real headless Chromium: filters, trace details, transcripts, --vs, injection, big lists.

The browser must start: a missing Chromium is a failure here, never a skip (`make test` provides one through
scripts/ensure_browser.py and passes it as DRP_CHROMIUM; run alone, the tests look for one the same way).
Screenshots go to the test's tmp folder and to artifacts/report/ (git-ignored) for a human to look at.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from typer.testing import CliRunner

from drp.cli import app
from drp.testing.scripted_teacher import ScriptedTeacher, Text
from drp.testing.skill_aware_responder import agent_of, prune, sensible

# the module fixture is built once, on one pytest-xdist worker
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("test_report_browser")]

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "traces.jsonl"
ARTIFACTS = REPO / "artifacts" / "report"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INJECTION = {
    "id": "inject-1",
    "question": 'What is 2 + 3? <script>document.title="pwned";window.drpPwned="question"</script>',
    "gold_answer": "5",
    "response": (
        "Okay, so I need to add 2 and 3. <img src=x onerror=\"document.title='pwned';window.drpPwned='img'\">\n\n"
        "First, 2 + 3 = 5. </script><script>window.drpPwned='breakout'</script><!-- not a comment\n\n"
        "So the answer is 5.\n</think>\n\nThe answer is \\boxed{5}. <svg onload=\"window.drpPwned='svg'\"></svg>"
    ),
}


def drp(*args) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def db_rows(run: Path, sql: str, params=()) -> list[tuple]:
    with sqlite3.connect(run / "drp.db") as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Real runs made once for the module: the example traces under two policies (a: rules,
    b: rules-keep-answer), the injection trace (inj), and the LLM skill-aware policy against a scripted
    loopback teacher whose first pruning drops the answer, so the verifier fails it once (llm; the answer's steps
    unprotected)."""
    folder = tmp_path_factory.mktemp("report-runs")
    injection = folder / "inject.jsonl"
    injection.write_text(json.dumps(INJECTION) + "\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRP_RUNS_DIR", str(folder))
        drp("run", EXAMPLES, "--policy", "rules", "--run-id", "a")
        drp("run", EXAMPLES, "--policy", "rules-keep-answer", "--run-id", "b")
        drp("run", injection, "--policy", "rules", "--run-id", "inj")

        def responder(request):
            if agent_of(request) == "pruner":
                first_try = "was rejected:" not in request["messages"][-1]["content"]
                return Text(prune(request, delete_everything_after=1 if first_try else None))
            return sensible(request)

        with ScriptedTeacher(responder) as teacher:
            drp(
                "run",
                EXAMPLES,
                "--policy",
                "skill-aware",
                "--teacher-url",
                teacher.url,
                "--teacher-model",
                "scripted",
                "--run-id",
                "llm",
                "--limit",
                "2",
                "--quiet",
                "--teacher-max-retries",
                "0",
                "--set",
                "protect_derivation=false",
            )  # else the schema itself keeps the answer's steps
    return folder


def chromium_path() -> str:
    """DRP_CHROMIUM (set by `make test`), else what scripts/ensure_browser.py finds without installing."""
    if os.environ.get("DRP_CHROMIUM"):
        return os.environ["DRP_CHROMIUM"]
    spec = importlib.util.spec_from_file_location("ensure_browser", REPO / "scripts" / "ensure_browser.py")
    ensure_browser = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ensure_browser)
    found = ensure_browser.find_chromium()
    if found is None:
        pytest.fail("no headless Chromium: run `make test` (it provides one) or `python scripts/ensure_browser.py`")
    return found


@pytest.fixture(scope="module")
def browser(runs):
    # After `runs`: Playwright's sync API keeps an event loop running, and `drp run` starts its own.
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class View:
    """One page of the report plus every script error or CSP violation the page reported."""

    def __init__(self, browser, tmp_path: Path):
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.tmp_path = tmp_path
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)

    def open(self, report: Path, trace: str | None = None):
        self.page.goto(report.resolve().as_uri() + (f"#trace={trace}" if trace else ""))
        self.page.wait_for_selector('body[data-ready="1"]')
        return self.page

    def wait_count(self, expected: int) -> None:
        """Wait for the (debounced) filters to settle on `expected` listed traces."""
        self.page.wait_for_function(
            "n => document.getElementById('f-count').textContent.startsWith(n + ' of')", arg=expected
        )

    def count(self) -> int:
        return int(self.page.inner_text("#f-count").split(" of ")[0].replace(",", ""))

    def screenshot(self, name: str) -> Path:
        path = self.tmp_path / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, ARTIFACTS / path.name)
        return path


@pytest.fixture
def view(browser, tmp_path):
    opened = View(browser, tmp_path)
    yield opened
    opened.context.close()


def test_filter_by_status_then_read_a_trace(runs, view, tmp_path):
    run = runs / "a"
    drp("report", run, "--out", tmp_path / "a.html")
    page = view.open(tmp_path / "a.html")
    total = db_rows(run, "SELECT COUNT(*) FROM traces")[0][0]
    assert view.count() == total
    assert "rules" in page.inner_text("#header")

    rejected = [r[0] for r in db_rows(run, "SELECT id FROM traces WHERE status = 'rejected' ORDER BY line")]
    page.select_option("#f-status", "rejected")
    assert view.count() == len(rejected)
    assert page.eval_on_selector_all("#list .row .row-id", "rows => rows.map(r => r.textContent)") == rejected
    assert page.eval_on_selector_all("#list .row .badge", "b => b.map(x => x.textContent)") == ["rejected"] * len(
        rejected
    )

    page.select_option("#f-status", "accepted")
    first = db_rows(run, "SELECT id FROM traces WHERE status = 'accepted' ORDER BY line LIMIT 1")[0][0]
    page.click("#list .row >> nth=0")
    page.wait_for_selector("#detail .step")
    assert page.inner_text("#detail h2") == first

    # Steps: one coloured row per stored step, labelled with its skill, original text on the left.
    steps = db_rows(run, "SELECT action, skill, text, rewritten FROM steps WHERE trace_id = ? ORDER BY step", (first,))
    shown = page.eval_on_selector_all(
        "#detail .steps .step",
        "rows => rows.map(r => [r.className, r.querySelector('.skill').textContent,"
        " r.querySelector('.step-orig pre').textContent, r.querySelector('.step-pruned').textContent])",
    )
    assert len(shown) == len(steps)
    for (cls, skill, original, pruned), (action, db_skill, text, rewritten) in zip(shown, steps):
        assert f"act-{action}" in cls and skill == db_skill and original == text
        expected = {"KEEP": text, "DELETE": "deleted", "COMPRESS": rewritten}.get(action)
        if expected is not None:
            assert pruned == expected
    assert "passed" in page.inner_text("#detail table.verdicts")

    # The transcript is folded by default and lists every recorded call when opened.
    transcript = page.locator("#detail details.transcript")
    assert transcript.evaluate("d => d.open") is False
    transcript.locator("summary").first.click()
    transcript.locator("details.call").first.wait_for()
    calls = db_rows(run, "SELECT node, raw_output FROM calls WHERE trace_id = ? ORDER BY seq", (first,))
    assert page.locator("#detail details.call").count() == len(calls)
    verifier = page.locator("#detail details.call", has_text="verifier")
    verifier.locator("summary").click()
    verifier.locator("h5", has_text="Raw reply").wait_for()  # folds are built on their (async) toggle event
    body = verifier.text_content()  # (inner_text would apply the headings' text-transform)
    assert "Rendered messages" in body and "Raw reply" in body and "Parsed" in body
    assert json.loads(calls[-1][1])["passed"] is True and '"passed": true' in body

    # The full pruned response, which the page joins from its two sections with drp.layout's break, is the stored one.
    full = page.locator("#detail details.fold", has_text="Full texts")
    full.locator("summary").first.click()
    full.locator("h4", has_text="Pruned response").wait_for()
    stored = db_rows(run, "SELECT pruned_response FROM traces WHERE id = ?", (first,))[0][0]
    assert full.locator("pre").nth(1).text_content() == stored

    view.screenshot("report-trace")
    assert view.errors == []


def test_reduction_skill_and_text_filters(runs, view, tmp_path):
    run = runs / "a"
    drp("report", run, "--out", tmp_path / "a.html")
    page = view.open(tmp_path / "a.html")
    tokens = db_rows(run, "SELECT thinking_tokens_before, thinking_tokens_after FROM traces")
    reductions = [1 - a / b for b, a in tokens if b and a is not None]
    page.fill("#f-min", "60")
    view.wait_count(sum(r >= 0.6 for r in reductions))
    page.fill("#f-max", "70")
    expected = sum(0.6 <= r <= 0.7 for r in reductions)
    view.wait_count(expected)
    page.fill("#f-min", "")
    page.fill("#f-max", "")
    view.wait_count(len(tokens))

    skill, n = db_rows(
        run, "SELECT skill, COUNT(DISTINCT trace_id) AS n FROM steps GROUP BY skill ORDER BY n, skill LIMIT 1"
    )[0]
    page.select_option("#f-skill", label=skill)
    assert view.count() == n
    page.select_option("#f-skill", index=0)

    word = "bicycle"
    in_question = db_rows(run, "SELECT COUNT(*) FROM traces WHERE question LIKE ?", (f"%{word}%",))[0][0]
    page.fill("#f-text", word)
    view.wait_count(in_question)
    # A phrase only in the reasoning is found once the search also looks inside the trace texts.
    phrase = "Let me read the problem again"
    in_text = db_rows(run, "SELECT COUNT(*) FROM traces WHERE response LIKE ?", (f"%{phrase}%",))[0][0]
    assert in_text > 0
    page.fill("#f-text", phrase)
    view.wait_count(0)
    page.check("#f-deep")
    assert view.count() == in_text
    assert view.errors == []


def test_injected_markup_shows_as_text_and_never_runs(runs, view, tmp_path):
    drp("report", runs / "inj", "--out", tmp_path / "inj.html")
    page = view.open(tmp_path / "inj.html", trace="inject-1")
    page.wait_for_selector("#detail pre.question")
    # Open every fold (full texts, transcript, each call) so all untrusted text is in the DOM.
    for _ in range(3):
        page.eval_on_selector_all("details", "ds => ds.forEach(d => { d.open = true; })")
        page.wait_for_timeout(100)
    page.wait_for_timeout(300)
    assert page.evaluate("window.drpPwned") is None
    assert page.title().startswith("drp report")
    assert page.locator("#detail img, #detail svg, #detail script").count() == 0
    assert page.locator("script:not([type='application/json'])").count() == 1
    assert page.inner_text("#detail pre.question") == INJECTION["question"]
    detail = page.inner_text("#detail")
    for fragment in ("<img src=x onerror=", "</script><script>window.drpPwned='breakout'</script><!--", "<svg onload="):
        assert fragment in detail
    view.screenshot("report-injection")
    assert view.errors == []


def test_vs_shows_both_pruned_versions(runs, view, tmp_path):
    drp("report", runs / "a", "--vs", runs / "b", "--out", tmp_path / "vs.html")
    trace = db_rows(runs / "a", "SELECT id FROM traces WHERE status = 'accepted' ORDER BY line LIMIT 1")[0][0]
    page = view.open(tmp_path / "vs.html", trace=trace)
    page.wait_for_selector("#detail section.vs")
    sides = page.eval_on_selector_all("#detail section.vs .pair > div", "ds => ds.map(d => d.innerText)")
    assert len(sides) == 2
    for side, run in zip(sides, (runs / "a", runs / "b")):
        thinking, before, after = db_rows(
            run,
            "SELECT pruned_thinking, thinking_tokens_before, thinking_tokens_after FROM traces WHERE id = ?",
            (trace,),
        )[0]
        assert thinking.strip() in side and f"{before:,}→{after:,}" in side
    assert "rules-keep-answer" in page.inner_text("#header")
    twin = page.get_attribute("#detail section.vs a.twin", "href")
    assert (
        twin.endswith(f"report-vs-a.html#trace={trace}")
        and (tmp_path / twin.split("#")[0]).resolve() == (runs / "b" / "report-vs-a.html").resolve()
    )
    gaps = page.eval_on_selector_all(".row .row-vs", "ns => ns.map(n => n.innerText)")
    assert any("B\u2212A" in gap for gap in gaps)
    view.screenshot("report-vs")
    assert view.errors == []


def test_large_run_renders_only_visible_rows(runs, view, tmp_path):
    # 50 copies of the example run under new ids: 400 traces, filled from real rows.
    big = tmp_path / "big"
    big.mkdir()
    with sqlite3.connect(runs / "a" / "drp.db") as source, sqlite3.connect(big / "drp.db") as target:
        source.backup(target)
    db = sqlite_utils.Database(big / "drp.db")
    traces, steps = list(db["traces"].rows), list(db["steps"].rows)
    calls = [{k: v for k, v in c.items() if k != "id"} for c in db["calls"].rows]
    with db.conn:
        for copy in range(1, 50):
            db["traces"].insert_all(
                {**t, "id": f"{t['id']}-c{copy}", "line": t["line"] + copy * len(traces)} for t in traces
            )
            db["steps"].insert_all({**s, "trace_id": f"{s['trace_id']}-c{copy}"} for s in steps)
            db["calls"].insert_all({**c, "trace_id": f"{c['trace_id']}-c{copy}"} for c in calls)
    total = db["traces"].count
    drp("report", big, "--out", tmp_path / "big.html")
    page = view.open(tmp_path / "big.html")
    assert view.count() == total == 400
    assert page.locator("script[type='application/json']").count() == total + 1
    assert page.locator("#list .row").count() < 40  # a window of rows, not 400
    assert page.locator("#detail .step").count() == 0  # no detail is built before a trace is opened
    page.eval_on_selector("#list", "l => l.scrollTop = l.scrollHeight")
    last = db_rows(big, "SELECT id FROM traces ORDER BY line DESC LIMIT 1")[0][0]
    page.wait_for_selector(f"#list .row-id >> text='{last}'")
    page.locator("#list .row", has_text=last).click()
    page.wait_for_function("id => document.querySelector('#detail h2')?.textContent === id", arg=last)
    assert page.locator("#list .row").count() < 40
    assert view.errors == []


def test_verdict_per_attempt_and_transcript_of_an_llm_run(runs, view, tmp_path):
    run = runs / "llm"
    drp("report", run, "--out", tmp_path / "llm.html")
    trace, attempts = db_rows(run, "SELECT id, attempts FROM traces WHERE status = 'accepted' ORDER BY line LIMIT 1")[0]
    page = view.open(tmp_path / "llm.html", trace=trace)
    page.wait_for_selector("#detail table.verdicts")

    # One verdict row per verifier call: the failed first attempt shows its failure and feedback.
    recorded = [
        json.loads(p)
        for (p,) in db_rows(
            run, "SELECT parsed FROM calls WHERE trace_id = ? AND node = 'verifier' ORDER BY seq", (trace,)
        )
    ]
    assert attempts == 2 and [v["passed"] for v in recorded] == [False, True]
    rows = page.eval_on_selector_all("#detail table.verdicts tbody tr", "rs => rs.map(r => r.innerText)")
    assert len(rows) == 2
    assert "failed" in rows[0] and recorded[0]["failures"][0] in rows[0] and recorded[0]["feedback"] in rows[0]
    assert "passed" in rows[1]

    # The transcript renders each call's messages with their roles, the raw reply and the token counts.
    page.click("#detail details.transcript > summary")
    calls = db_rows(
        run,
        "SELECT node, messages, raw_output, input_tokens, output_tokens FROM calls WHERE trace_id = ? ORDER BY seq",
        (trace,),
    )
    page.locator("#detail details.call").first.wait_for()
    assert page.locator("#detail details.call").count() == len(calls)
    pruners = [c for c in calls if c[0] == "pruner"]
    assert len(pruners) == 2
    second = page.locator("#detail details.call", has_text="pruner").nth(1)
    assert f"{pruners[1][3]} in / {pruners[1][4]} out" in second.locator("summary").inner_text()
    second.locator("summary").click()
    second.locator(".msg").first.wait_for()
    messages = json.loads(pruners[1][1])
    assert second.locator(".msg-role").all_text_contents() == [m["role"] for m in messages]
    assert second.locator(".msg pre").all_text_contents() == [m["content"] for m in messages]
    assert "was rejected:" in messages[-1]["content"]
    assert pruners[1][2] in second.text_content()
    view.screenshot("report-llm-run")
    assert view.errors == []
