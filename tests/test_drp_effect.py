"""benchmarks/drp_effect.py's own logic: the two arms differ only in their thinking, a rerun resumes at the first
unfinished stage, a changed experiment is refused, and result.json's figures on hand-made samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

import drp_effect  # noqa: E402


def _row(trace_id: str, thinking: str, answer: str | None, chat: bool = False) -> dict:
    completion = f"<think>\n{thinking}" + (f"\n</think>\n\n{answer}" if answer is not None else "")
    if chat:  # `drp export`'s conversational rows: the completion is a list of messages
        return {"trace_id": trace_id, "completion": [{"role": "assistant", "content": completion}]}
    return {"trace_id": trace_id, "completion": completion}


def test_answer_sections_must_match_between_arms():
    identity = {
        "a": _row("a", "long thinking " * 5, "The final answer is $\\boxed{3}$."),
        "b": _row("b", "more thinking", "The final answer is $\\boxed{4}$."),
    }
    pruned = {
        "a": _row("a", "short", "The final answer is $\\boxed{3}$."),
        "b": _row("b", "short", "The final answer is $\\boxed{4}$."),
    }
    assert drp_effect.answer_section_mismatches({"identity": identity, "pruned": pruned}) == []

    pruned["b"] = _row("b", "short", "So 4.\nThe final answer is $\\boxed{4}$.")  # a longer answer section
    assert drp_effect.answer_section_mismatches({"identity": identity, "pruned": pruned}) == ["b"]

    pruned["b"] = _row("b", "never closes", None)
    identity["b"] = _row("b", "never closes", None)  # equal, but with no answer section at all
    assert drp_effect.answer_section_mismatches({"identity": identity, "pruned": pruned}) == ["b"]

    chat_pruned = {"a": _row("a", "short", "The final answer is $\\boxed{3}$.", chat=True)}
    assert drp_effect.answer_section_mismatches({"identity": {"a": identity["a"]}, "pruned": chat_pruned}) == []
    chat_pruned["a"] = _row("a", "short", "So 3.\nThe final answer is $\\boxed{3}$.", chat=True)
    assert drp_effect.answer_section_mismatches({"identity": {"a": identity["a"]}, "pruned": chat_pruned}) == ["a"]

    del pruned["a"]  # an id one arm lacks
    assert "a" in drp_effect.answer_section_mismatches({"identity": identity, "pruned": pruned})


def _stub_stages(monkeypatch, calls: list[str], fail_at: str | None = None):
    """Every stage replaced by a recorder; `fail_at` dies like a kill in the middle of that stage."""

    def recorder(name):
        def work(*args, **kwargs):
            calls.append(name)
            if name == fail_at:
                raise KeyboardInterrupt
            return {"stage": name}

        return work

    for name in ("prepare", "select", "prune", "export", "assert_held_out"):
        monkeypatch.setattr(drp_effect, name, recorder(name))
    monkeypatch.setattr(drp_effect, "distill", lambda pipeline, arm: recorder(f"distill-{arm}")())
    monkeypatch.setattr(drp_effect, "evaluate", lambda pipeline, name, model: recorder(f"eval-{name}")())
    monkeypatch.setattr(drp_effect, "result", lambda pipeline, stages, wall: {"seconds": stages.seconds()})
    monkeypatch.setattr("drp.models.resolve", lambda name: name)


def test_a_rerun_resumes_at_the_first_unfinished_stage(tmp_path, monkeypatch):
    traces = tmp_path / "traces.jsonl"
    traces.write_text("{}\n")
    argv = ["--out", str(tmp_path / "out"), "--traces", str(traces)]
    first: list[str] = []
    _stub_stages(monkeypatch, first, fail_at="distill-pruned")
    with pytest.raises(KeyboardInterrupt):
        drp_effect.main(argv)
    assert first == ["prepare", "select", "prune", "export", "assert_held_out", "distill-identity", "distill-pruned"]

    second: list[str] = []
    _stub_stages(monkeypatch, second)
    figures = drp_effect.main(argv)
    assert second == ["distill-pruned", "eval-base", "eval-identity", "eval-pruned"]
    assert set(figures["seconds"]) == set(drp_effect.STAGES)
    assert json.loads((tmp_path / "out" / "result.json").read_text()) == figures

    third: list[str] = []
    _stub_stages(monkeypatch, third)
    drp_effect.main(argv)
    assert third == []  # everything done: only result.json is written again


def test_a_rerun_with_another_experiment_is_refused(tmp_path, monkeypatch):
    traces = tmp_path / "traces.jsonl"
    traces.write_text("{}\n")
    calls: list[str] = []
    _stub_stages(monkeypatch, calls, fail_at="prune")
    with pytest.raises(KeyboardInterrupt):
        drp_effect.main(["--out", str(tmp_path / "out"), "--traces", str(traces), "--steps", "60"])
    with pytest.raises(SystemExit, match="steps: 60 → 90"):
        drp_effect.main(["--out", str(tmp_path / "out"), "--traces", str(traces), "--steps", "90"])


def _samples(folder: Path, rows: list[tuple[str, bool, str, str]]) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "samples.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "benchmark": "gsm8k:train",
                    "problem_id": pid,
                    "seed": 0,
                    "correct": correct,
                    "response": response,
                    "finish_reason": finish,
                    "error": None,
                }
            )
            + "\n"
            for pid, correct, response, finish in rows
        )
    )


def test_result_splits_tokens_at_think_close_and_pairs_the_models(tmp_path):
    out = tmp_path / "out"
    # word counts stand in for the tokenizer: thinking words before </think>, answer words after
    _samples(
        out / "evals" / "base",
        [("1", False, "a b c d", "length"), ("2", True, "a b", "stop"), ("3", True, "a", "stop")],
    )
    _samples(
        out / "evals" / "identity",
        [
            ("1", True, "t t t t t t </think> x", "stop"),
            ("2", True, "t t t t </think> x y", "stop"),
            ("3", False, "t t t t t t t t", "length"),
        ],
    )
    _samples(
        out / "evals" / "pruned",
        [
            ("1", True, "t t </think> x", "stop"),
            ("2", False, "t t </think> x y", "stop"),
            ("3", True, "t t t </think> x", "stop"),
        ],
    )
    paired = drp_effect.paired_samples(type("P", (), {"out": out})())
    count = lambda text: len(text.replace("</think>", " ").split())  # noqa: E731
    figures = {name: drp_effect.model_figures(paired[name], count) for name in drp_effect.MODELS}

    identity, pruned, base = figures["identity"], figures["pruned"], figures["base"]
    assert identity["thinking_tokens_mean"] == round((6 + 4 + 8) / 3, 1)
    assert identity["answer_tokens_mean"] == round((1 + 2 + 0) / 3, 1)
    assert identity["capped"] == 1 and identity["without_think_close"] == 1
    assert pruned["thinking_tokens_mean"] == round((2 + 2 + 3) / 3, 1)
    assert pruned["accuracy"] == round(2 / 3, 4) and identity["accuracy"] == round(2 / 3, 4)
    assert base["without_think_close"] == 3 and base["thinking_tokens_mean"] == round(7 / 3, 1)
    low, high = identity["accuracy_ci95"]
    assert 0 < low < 2 / 3 < high < 1
    assert pruned["_per_problem"]["correct"] == [True, False, True]


def test_plan_lists_the_stages_and_runs_nothing(tmp_path, capsys, monkeypatch):
    traces = tmp_path / "traces.jsonl"
    traces.write_text("{}\n")
    calls: list[str] = []
    _stub_stages(monkeypatch, calls)
    assert drp_effect.main(["--out", str(tmp_path / "out"), "--traces", str(traces), "--plan"]) is None
    printed = capsys.readouterr().out
    assert calls == [] and all(name in printed for name in drp_effect.STAGES)
