"""Grading with drp.answers + math-verify, and the per-benchmark metrics built from sample records."""

import pytest

from drp.evals.metrics import benchmark_metrics
from drp.evals.scoring import grade


@pytest.mark.parametrize(
    "gold, response",
    [
        ("\\frac{1}{2}", "Half of it.\n</think>\n\nSo \\boxed{0.5}"),
        ("3/4", "\\boxed{\\dfrac{3}{4}}"),
        ("\\frac{14}{3}", "\\boxed{4\\frac{2}{3}}"),
        ("18", "She makes \\boxed{18 \\text{ dollars}}."),
        ("18", "\\boxed{\\$18}"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\boxed{(3, \\frac{\\pi}{2})}"),
        ("30^\\circ", "\\boxed{30}"),
        ("10\\%", "\\boxed{10}"),
        ("27", "\\boxed{27.0}"),
        ("1000", "\\boxed{1,000}"),
        ("\\frac{\\sqrt{2}}{2}", "\\boxed{\\frac{\\sqrt2}{2}}"),
    ],
)
def test_equivalent_answers_are_correct(gold, response):
    verdict = grade(response, gold)
    assert verdict.correct and verdict.source == "boxed"


def test_last_boxed_wins_and_wrong_answers_are_wrong():
    verdict = grade("First \\boxed{5}, no wait: \\boxed{6}", "5")
    assert verdict.extracted == "6" and not verdict.correct


def test_fallback_and_missing_answers():
    stated = grade("The answer is 42.", "42")
    assert stated.correct and stated.source == "fallback"
    for response in ("I am not sure.", "", None):
        verdict = grade(response, "42")
        assert verdict.extracted is None and verdict.source is None and not verdict.correct


def _record(pid, seed, correct, tokens, server=None, finish="stop", answer="1", error=None):
    if error:
        return {"problem_id": pid, "seed": seed, "error": error, "question_sha": "x"}
    return {
        "problem_id": pid,
        "seed": seed,
        "correct": correct,
        "tokens": tokens,
        "finish_reason": finish,
        "extracted_answer": answer,
        "server_completion_tokens": server,
        "question_sha": "x",
        "error": None,
    }


def test_benchmark_metrics():
    records = [
        _record("p1", 0, True, 100, server=101),
        _record("p2", 0, False, 300, server=250, finish="length"),
        _record("p1", 1, True, 120, server=120),
        _record("p2", 1, False, 50, server=51, answer=None),
        _record("p3", 0, True, 10),
        _record("p3", 1, None, None, error="HTTP 500: boom"),
    ]
    m = benchmark_metrics(records, max_tokens=300)
    assert m["seeds"] == [0, 1] and m["n_problems"] == 3 and m["samples"] == 5
    seed0, seed1 = m["per_seed"]
    assert seed0["accuracy"] == pytest.approx(2 / 3) and seed0["mean_tokens"] == pytest.approx(410 / 3)
    assert seed1["accuracy"] == pytest.approx(1 / 2) and seed1["mean_tokens"] == pytest.approx(85)
    assert m["accuracy"]["mean"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["accuracy"]["std"] == pytest.approx(abs(2 / 3 - 1 / 2) / 2**0.5)
    low, high = m["accuracy"]["ci95"]
    assert 0 <= low <= m["accuracy"]["mean"] <= high <= 1
    assert m["length_capped"] == {"count": 1, "rate": 0.2} and m["max_tokens"] == 300
    assert m["no_answer"] == [{"problem_id": "p2", "seed": 1}]
    # 4 pairs with a server count; 300 vs 250 is the only one more than one token apart.
    assert m["token_check"]["compared"] == 4 and m["token_check"]["mismatches"] == 1
    assert m["token_check"]["mismatch_rate"] == pytest.approx(0.25)
    assert m["errors"] == [{"problem_id": "p3", "seed": 1, "error": "HTTP 500: boom"}]
    assert m["complete"] is False
