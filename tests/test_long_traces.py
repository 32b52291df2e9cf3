"""Long traces through `skill-aware` against a scripted teacher with a small context: every call's prompt plus its
max_tokens stays under the policy's `context.max_tokens`, the classifier and pruner work in windows with their
neighbours as context, and the verifier's feedback sends only the broken window back to the pruner.
(How the long traces are built: drp/testing/long_traces.py.)"""

from __future__ import annotations

import json
import re

import pytest
from helpers import db_of, drp, traces_of, write_jsonl

from drp.agents.windows import PER_MESSAGE_TOKENS
from drp.testing.long_traces import joined_gsm8k, joined_math, one_display_block, synthetic_latex
from drp.testing.scripted_teacher import ScriptedTeacher, Text
from drp.testing.skill_aware_responder import agent_of, needed_in, prune, sensible, steps_in
from drp.tokens import TokenCounter

CONTEXT = 8192
MARGIN = 256


@pytest.fixture(scope="module")
def counter():
    return TokenCounter()  # the run's own default: the shared R1 tokenizer when present, else approximate


def _fixture(kind: str, counter, request):
    if kind == "synthetic":
        return synthetic_latex(counter)
    shared = request.getfixturevalue("shared")  # skips when ../shared is absent
    return joined_gsm8k(shared, counter) if kind == "gsm8k" else joined_math(shared, counter)


def _run(tmp_path, trace: dict, responder, run_id: str, *extra: str):
    source = write_jsonl(tmp_path / f"{run_id}.jsonl", [trace])
    with ScriptedTeacher(responder) as teacher:
        result = drp(
            "run",
            source,
            "--policy",
            "skill-aware",
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            "m",
            "--run-id",
            run_id,
            "--quiet",
            "--set",
            f"context.max_tokens={CONTEXT}",
            "--set",
            f"context.margin={MARGIN}",
            *extra,
        )
    return result, teacher.requests


def _context_of(request: dict, counter) -> int:
    prompt = sum(counter.count(m["content"]) + PER_MESSAGE_TOKENS for m in request["messages"])
    return prompt + (request.get("max_tokens") or request.get("max_completion_tokens"))


@pytest.mark.parametrize("kind", ["synthetic", "gsm8k", "math"])
def test_a_long_trace_fits_a_small_teacher_context(kind, counter, tmp_path, request):
    trace = _fixture(kind, counter, request)
    thinking_tokens = counter.count(trace["response"].split("</think>")[0])
    assert thinking_tokens >= (16_000 if kind != "math" else 8_000)
    result, requests = _run(tmp_path, trace, sensible, kind)
    assert result.exit_code == 0, result.output
    row = traces_of(kind)[trace["id"]]
    assert row["status"] == "accepted", row["reason"]
    assert row["thinking_tokens_after"] < row["thinking_tokens_before"]
    # The server saw every request: each one's context is within the limit, margin kept.
    contexts = [_context_of(r, counter) for r in requests]
    assert max(contexts) <= CONTEXT - MARGIN, max(contexts)
    by_agent = {agent: [r for r in requests if agent_of(r) == agent] for agent in ("segmenter", "classifier", "pruner")}
    assert all(len(calls) > 1 for calls in by_agent.values()), {a: len(c) for a, c in by_agent.items()}
    # Windows cover the steps exactly once, in order, and each shows its neighbours as context only.
    steps = list(db_of(kind).query("select * from steps where trace_id = ? order by step", [trace["id"]]))
    for agent in ("classifier", "pruner"):
        numbers = [
            int(n) for r in by_agent[agent] for n in re.findall(r"^Step (\d+)", r["messages"][1]["content"], re.M)
        ]
        assert sorted(numbers) == list(range(1, len(steps) + 1))
        later = next(
            r["messages"][1]["content"]
            for r in by_agent[agent]
            if not re.search(r"^Step 1\b", r["messages"][1]["content"], re.M)
        )  # not the first window
        assert "Just before them (context only" in later and f"The reasoning has {len(steps)} steps" in later
        assert trace["question"].splitlines()[0] in later  # the question travels with every window
    assert all(step["action"] in ("KEEP", "DELETE") for step in steps)


def test_a_display_block_longer_than_the_context_is_cut_into_units_and_kept_in_place(counter, tmp_path):
    # one paragraph, no sentence end, more tokens than the teacher's whole context
    trace, block = one_display_block(counter)
    assert counter.count(block) > CONTEXT
    result, requests = _run(tmp_path, trace, sensible, "block")
    assert result.exit_code == 0, result.output
    row = traces_of("block")[trace["id"]]
    assert row["status"] == "accepted", row["reason"]
    assert max(_context_of(r, counter) for r in requests) <= CONTEXT - MARGIN
    assert sum(agent_of(r) == "pruner" for r in requests) > 1  # the block's units took several windows
    # Kept whole and in place: where one pruner window ends inside the block, the next goes on with a line break.
    assert block in row["pruned_thinking"]
    assert row["thinking_tokens_after"] < row["thinking_tokens_before"]


def test_the_verifier_sends_only_the_broken_window_back(counter, tmp_path):
    trace = synthetic_latex(counter, tokens=9_000)
    broken = {}

    def responder(request):
        if agent_of(request) != "pruner":
            return sensible(request)
        plan = json.loads(prune(request))
        prompt = request["messages"][1]["content"]
        later_window = not re.search(r"^Step 1\b", prompt, re.M)
        if later_window and not broken and "rejected by the verifier" not in prompt:
            # One window after the first writes, on its first try, a number that is nowhere in the original.
            # (a step no number of the answer depends on: a rewrite of one that is would be left out at once)
            broken["step"] = next(n for n, *_ in steps_in(request) if n not in needed_in(request))
            plan["delete"] = [n for n in plan["delete"] if n != broken["step"]]
            plan["compress"] = [{"step": broken["step"], "text": "So 987654 apples."}]
        return Text(json.dumps(plan))

    result, _ = _run(tmp_path, trace, responder, "blame", "--concurrency", "1")
    assert result.exit_code == 0, result.output
    row = traces_of("blame")[trace["id"]]
    assert row["status"] == "accepted" and row["attempts"] == 2
    calls = list(db_of("blame").query("select * from calls where trace_id = ? order by seq", [trace["id"]]))
    first_round = [c for c in calls if c["node"] == "pruner" and c["attempt"] == 1]
    second_round = [c for c in calls if c["node"] == "pruner" and c["attempt"] == 2]
    assert len(first_round) > 2 and len(second_round) == 1  # only the broken window was pruned again
    verdict = json.loads([c for c in calls if c["node"] == "verifier"][0]["parsed"])
    assert not verdict["passed"] and len(verdict["windows"]) == 1
    first, last = verdict["windows"][0]["steps"]
    assert first <= broken["step"] <= last and first > 1 and "987654" in verdict["windows"][0]["feedback"]
    retry_prompt = json.loads(second_round[0]["messages"])[1]["content"]
    assert f"Here are steps {first} to {last}" in retry_prompt and "987654" in retry_prompt
    assert "987654" not in (row["pruned_thinking"] or "")


def test_a_prompt_that_cannot_fit_is_a_clear_failure_not_a_request(tmp_path, counter):
    trace = synthetic_latex(counter, tokens=2_000)
    trace["question"] = "Why? " * 9000  # the question alone is larger than the context
    result, requests = _run(tmp_path, trace, sensible, "nofit")
    row = traces_of("nofit")[trace["id"]]
    assert result.exit_code == 1 and not requests
    assert row["status"] == "failed" and row["reason"].startswith("segmenter_unusable: context:")
