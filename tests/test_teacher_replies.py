"""Teacher replies and input size (issue 8, part 4): a reply without `usage` is counted with the teacher's
tokenizer or shown as missing, never as 0 tokens; a record above the size cap ends as too_long at once, unread.
(LaTeX inside replies: test_teacher_latex.py.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from helpers import EXAMPLES, TORCH_WORKER, db_of, drp, example_records, traces_of, write_jsonl
from test_report import embedded

from drp.testing.scripted_teacher import Raw, ScriptedTeacher
from drp.testing.skill_aware_responder import sensible
from drp.tokens import TokenCounter


def without_usage(request: dict) -> Raw:
    """The sensible teacher, from a server that sends no `usage` (some local servers, some proxies)."""
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": request.get("model"),
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": sensible(request).content},
            }
        ],
    }
    return Raw(json.dumps(body))


def run_without_usage(run_id: str, *extra: str, model: str = "m"):
    with ScriptedTeacher(without_usage) as teacher:
        result = drp(
            "run",
            EXAMPLES,
            "--policy",
            "skill-aware",
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            model,
            "--run-id",
            run_id,
            "--quiet",
            *extra,
        )
    assert result.exit_code == 0, result.output
    return result


def llm_calls(run_id: str) -> list[dict]:
    return list(db_of(run_id).query("select * from calls where llm order by trace_id, seq"))


def test_missing_usage_is_missing_not_zero(tmp_path):
    run_without_usage("no-usage")
    calls = llm_calls("no-usage")
    assert calls and all(
        c["input_tokens"] is None and c["output_tokens"] is None and c["usage"] == "missing" for c in calls
    )
    processed = [t for t in traces_of("no-usage").values() if t["teacher_calls"]]
    assert processed and all(t["teacher_input_tokens"] is None for t in processed)

    stats = json.loads(drp("stats", "no-usage", "--json").output)
    assert stats["teacher_input_tokens_per_trace"] is None and stats["teacher_output_tokens_per_trace"] is None
    assert stats["teacher_calls_without_usage"] == len(calls) == stats["teacher_llm_calls"]
    text = drp("stats", "no-usage").output
    assert "tokens in/out per trace missing/missing" in text
    assert f"{len(calls)} of {len(calls)} teacher calls came without usage" in text and "--teacher-tokenizer" in text

    shown = drp("logs", "show", "no-usage", processed[0]["id"]).output
    assert "tokens missing" in shown and "None" not in shown
    assert drp("report", "no-usage", "--out", tmp_path / "r.html").exit_code == 0
    index, blocks = embedded((tmp_path / "r.html").read_text())
    teacher = index["summary"]["teacher"]
    assert teacher["input"] is None and teacher["output"] is None and teacher["missing_usage"] == len(calls)
    assert all(node["input_tokens"] is None for node in index["summary"]["nodes"] if node["node"] == "pruner")


def test_missing_usage_is_counted_with_the_teachers_tokenizer(shared_tokenizer):
    run_without_usage("counted", "--teacher-tokenizer", shared_tokenizer)
    counter = TokenCounter(shared_tokenizer)
    calls = llm_calls("counted")
    assert calls and all(c["usage"] == "counted" for c in calls)
    for call in calls:
        assert call["input_tokens"] == counter.count_chat(json.loads(call["messages"])) > 0
        assert call["output_tokens"] == counter.count(call["raw_output"]) > 0
    stats = json.loads(drp("stats", "counted", "--json").output)
    assert stats["teacher_input_tokens_per_trace"] > 0 and stats["teacher_calls_counted_with_tokenizer"] == len(calls)
    assert "counted with the teacher's tokenizer" in drp("stats", "counted").output
    assert (
        json.loads(db_of("counted").execute("select config from runs").fetchone()[0])["teacher_tokenizer"]
        == shared_tokenizer
    )


@TORCH_WORKER  # the folder's tokenizer is loaded through transformers
def test_a_teacher_served_from_a_folder_counts_with_its_own_tokenizer(shared_tokenizer, tmp_path):
    model = tmp_path / "teacher-model"  # what `drp serve FOLDER` names its model: the folder
    shutil.copytree(shared_tokenizer, model)
    run_without_usage("own-tokenizer", model=str(model))
    assert {c["usage"] for c in llm_calls("own-tokenizer")} == {"counted"}


def test_reported_usage_is_kept_as_reported():
    from drp.testing.scripted_teacher import Text

    def small_counts(request):
        return Text(sensible(request).content, prompt_tokens=7, completion_tokens=3)

    with ScriptedTeacher(small_counts) as teacher:
        assert (
            drp(
                "run",
                EXAMPLES,
                "--policy",
                "skill-aware",
                "--teacher-url",
                teacher.url,
                "--teacher-model",
                "m",
                "--run-id",
                "reported",
                "--quiet",
            ).exit_code
            == 0
        )
    calls = llm_calls("reported")
    assert {(c["input_tokens"], c["output_tokens"], c["usage"]) for c in calls} == {(7, 3, "reported")}
    stats = json.loads(drp("stats", "reported", "--json").output)
    assert stats["teacher_calls_without_usage"] == 0 and stats["teacher_input_tokens_per_trace"] > 0


# ── the input size cap ────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak memory is read from Linux's /proc")
def test_a_30_mb_record_ends_as_too_long_at_once(tmp_path, hermetic_runs):
    normal = example_records()[1]
    huge = {
        **example_records()[0],
        "id": "huge",
        "response": "Let me think about this again. " * 1_000_000 + "\n</think>\n\nThe answer is \\boxed{10}.",
    }
    source = write_jsonl(tmp_path / "big.jsonl", [huge, normal])
    assert source.stat().st_size > 30_000_000
    # The command as a user runs it, reporting its own peak memory when it ends (VmHWM: since its exec, unlike
    # ru_maxrss, which also holds what the forked pytest process had).
    measured = (
        "import re, runpy, sys\n"
        "sys.argv = ['drp', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('drp.cli', run_name='__main__')\n"
        "finally:\n    print('peak_kib', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])"
    )
    command = [sys.executable, "-c", measured, "run", str(source), "--policy", "rules", "--run-id", "big", "--quiet"]
    started = time.monotonic()
    process = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = process.communicate(timeout=90)  # before the cap: 146 s and 5.9 GB (split, tokenized, verified)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("a 30 MB record still ran after 90 s")
    seconds = time.monotonic() - started
    assert process.returncode == 0, output.decode()[-2000:]
    traces = traces_of("big")
    assert traces["huge"]["status"] == "rejected" and traces["huge"]["reason"].startswith("too_long: the record holds")
    assert "--max-record-chars" in traces["huge"]["reason"]
    assert traces["huge"]["response_tokens_before"] is None and traces["huge"]["thinking_tokens_before"] is None
    assert traces[normal["id"]]["status"] == "accepted"
    assert len(traces["huge"]["response"]) == len(huge["response"])  # kept whole in the run: nothing is lost
    peak_gib = int(re.search(rb"peak_kib (\d+)", output)[1]) / 2**20
    print(f"30 MB record: {seconds:.1f} s, peak {peak_gib:.2f} GiB")
    assert seconds < 60 and peak_gib < 2, (seconds, peak_gib)


def test_the_size_cap_is_settable_and_kept_on_resume(tmp_path):
    records = example_records()
    sizes = {r["id"]: len(r["question"]) + len(r["response"]) for r in records}
    cap = sorted(sizes.values())[len(sizes) // 2]
    result = drp(
        "run", EXAMPLES, "--policy", "rules", "--run-id", "capped", "--quiet", "--limit", "4", "--max-record-chars", cap
    )
    assert result.exit_code == 0, result.output
    assert drp("run", EXAMPLES, "--run-id", "capped", "--resume", "--quiet").exit_code == 0
    for trace_id, row in traces_of("capped").items():
        too_long = (row["reason"] or "").startswith("too_long: the record holds")
        assert too_long == (sizes[trace_id] > cap), (trace_id, row["reason"])
    assert drp("run", EXAMPLES, "--policy", "rules", "--run-id", "x", "--max-record-chars", "0").exit_code == 2
