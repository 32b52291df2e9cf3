"""avg@k, pass@k and maj@k, the thinking/answer token split and how responses ended, on hand-computed examples."""

import itertools
import math

import pytest

from drp.answers import clearly_different, equivalent
from drp.evals.metrics import benchmark_metrics, per_problem
from drp.evals.sample_scores import answer_groups, k_values, majority_vote, pass_at_k, same_answer, sample_scores
from drp.evals.token_split import response_endings, split_tokens, token_split_metrics
from drp.tokens import approximate_count


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (4, 1, 2, 1 - 3 / 6),  # 1 − C(3,2)/C(4,2)
        (4, 2, 2, 1 - 1 / 6),  # 1 − C(2,2)/C(4,2)
        (5, 2, 3, 1 - 1 / 10),  # 1 − C(3,3)/C(5,3)
        (7, 3, 1, 3 / 7),  # pass@1 is the share correct
        (4, 0, 4, 0.0),
        (4, 3, 2, 1.0),  # fewer wrong samples than k: some draw always holds a correct one
    ],
)
def test_pass_at_k_by_hand(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_is_the_share_of_k_subsets_holding_a_correct_sample():
    outcomes = [True, False, False, True, False, False]
    for k in range(1, 7):
        subsets = list(itertools.combinations(outcomes, k))
        assert pass_at_k(6, 2, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))


@pytest.mark.parametrize("n, c, k", [(3, 1, 4), (3, 1, 0), (3, 4, 1)])
def test_pass_at_k_refuses_what_it_cannot_estimate(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


@pytest.mark.parametrize(
    "n, expected", [(1, [1]), (3, [1, 2, 3]), (4, [1, 2, 4]), (5, [1, 2, 4, 5]), (16, [1, 2, 4, 8, 16]), (0, [])]
)
def test_k_values(n, expected):
    assert k_values(n) == expected


def test_groups_compare_each_distinct_answer_once():
    calls = []

    def same(a, b):
        calls.append((a, b))
        return {a, b} == {"a", "c"}

    assert answer_groups(["a", "b", "a", "c", " b"], same) == [[0, 2, 3], [1, 4]]
    assert calls == [("a", "b"), ("a", "c")]  # "a" twice and " b" are grouped by their text alone


@pytest.mark.parametrize(
    "votes, expected",
    [
        ([("12", True), ("12.0", True), ("7", False)], 1.0),  # 12 and 12.0 are one answer
        ([("0.5", True), ("\\frac{1}{2}", True), ("1", False), ("2", False)], 1.0),
        ([("0", False), ("0", False), ("5", True)], 0.0),
        ([("5", True), ("6", False)], 0.5),  # a tie is worth the share of tied answers that are correct
        ([("5", True), ("6", False), ("7", False)], 1 / 3),
        ([(None, False), (None, False), ("5", True)], 1.0),  # no answer, no vote
        ([(None, False), (None, False)], 0.0),
        ([("\\frac{1}{2}", False), ("0.5", False), ("3", True), ("3.0", True)], 0.5),  # wrong answers grouped too
        ([("\\frac{1}{2}", False), ("0.5", False), ("3", True)], 0.0),
    ],
)
def test_majority_vote(votes, expected):
    assert majority_vote(votes, equivalent) == pytest.approx(expected)


def test_majority_vote_asks_for_equivalence_only_where_the_vote_depends_on_it():
    calls = []

    def same(a, b):
        calls.append((a, b))
        return equivalent(a, b)

    # Two right, one wrong: decided by the counts. Three wrong "7": decided by the text.
    assert majority_vote([("12", True), ("12.0", True), ("7", False)], same) == 1.0
    assert majority_vote([("6", True), ("7", False), ("7", False), (" 7", False)], same) == 0.0
    assert calls == []
    # Two right against two different wrong answers: only the wrong ones are compared, with each other.
    assert majority_vote([("6", True), ("6", True), ("7", False), ("8", False)], same) == 1.0
    assert calls == [("7", "8")]


@pytest.mark.parametrize(
    "first, second, different",
    [
        ("3\\sqrt{2}", "\\frac{\\pi}{4}", True),
        ("7", "-7", True),
        ("3\\sqrt{2}", "\\sqrt{18}", False),  # equal values
        ("\\frac{1}{3}", "0.3333", False),  # within the gap: math-verify decides
        ("10\\%", "0.2", False),  # units: math-verify decides
        ("(1, 2)", "7", False),  # not a constant
        ("x^2+1", "2", False),
    ],
)
def test_clearly_different_constants(first, second, different):
    assert clearly_different(first, second) is different


def test_clearly_different_never_contradicts_math_verify():
    answers = [
        "\\frac{1}{3}",
        "0.3333",
        "\\frac14",
        "0.25",
        "3\\sqrt{2}",
        "\\sqrt{18}",
        "10\\%",
        "10",
        "0.1",
        "30^\\circ",
        "\\frac{\\pi}{6}",
        "\\$18",
        "18",
        "1,000",
        "1000",
    ]
    pairs = list(itertools.combinations(answers, 2))
    decided = [(a, b) for a, b in pairs if clearly_different(a, b)]
    assert len(decided) > len(pairs) / 3  # the shortcut earns its place
    assert not [(a, b) for a, b in decided if equivalent(a, b) or equivalent(b, a)]
    assert same_answer("\\frac14", "0.25") and not same_answer("0.25", "3\\sqrt{2}")


def _record(pid, seed, correct, answer, thinking=10, answer_tokens=5, finish="stop", closed=True, error=None):
    if error:
        return {"problem_id": pid, "seed": seed, "error": error, "question_sha": pid}
    return {
        "problem_id": pid,
        "seed": seed,
        "correct": correct,
        "extracted_answer": answer,
        "tokens": thinking + answer_tokens,
        "thinking_tokens": thinking,
        "answer_tokens": answer_tokens,
        "think_closed": closed,
        "finish_reason": finish,
        "question_sha": pid,
        "error": None,
    }


# p1 right in all 5 samples; p2 right in seed 0 only (wrong "0" three times); p3 right in seeds 0 and 1
# ("12" and "12.0"), wrong "7" and "8", and a failed fifth sample.
RECORDS = [
    *[_record("p1", s, True, "3") for s in range(5)],
    _record("p2", 0, True, "4"),
    *[_record("p2", s, False, "0") for s in (1, 2, 3)],
    _record("p3", 0, True, "12"),
    _record("p3", 1, True, "12.0"),
    _record("p3", 2, False, "7"),
    _record("p3", 3, False, "8"),
    _record("p3", 4, None, None, error="HTTP 500"),
]


def test_sample_scores_by_hand():
    scores = sample_scores(RECORDS)
    assert scores["samples_per_problem"] == {"min": 4, "max": 5}
    per_problem_accuracy = [1.0, 0.25, 0.5]
    avg = scores["avg@k"]
    assert avg["k"] == 4 and avg["value"] == pytest.approx(7 / 12)
    sd = math.sqrt(sum((a - 7 / 12) ** 2 for a in per_problem_accuracy) / 2)
    assert avg["se"] == pytest.approx(sd / math.sqrt(3))
    assert avg["ci95"][0] <= avg["value"] <= avg["ci95"][1]
    assert list(scores["pass@k"]) == ["1", "2", "4"]
    assert scores["pass@k"]["1"]["value"] == pytest.approx(7 / 12)
    assert scores["pass@k"]["2"]["value"] == pytest.approx((1 + 0.5 + 5 / 6) / 3)  # p1 n=5 c=5 gives 1
    assert scores["pass@k"]["4"] == {"value": 1.0, "se": 0.0, "ci95": [1.0, 1.0]}
    assert scores["maj@k"]["k"] == 4 and scores["maj@k"]["value"] == pytest.approx(2 / 3)
    # The first two samples only: p2 is a tie between "4" (right) and "0" (wrong).
    two = sample_scores(RECORDS, maj_k=2, pass_k=[2, 8])
    assert two["maj@k"]["value"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert list(two["pass@k"]) == ["2"]  # pass@8 needs 8 samples of every problem


def test_split_tokens_by_hand():
    count = approximate_count  # words and punctuation marks: countable by eye
    split = split_tokens("a b c\n</think>\n\nThe answer is \\boxed{5}.", count)
    # thinking: a b c < / think > (7); answer: The answer is \ boxed { 5 } . (9)
    assert (split.tokens, split.thinking, split.answer, split.think_closed) == (16, 7, 9, True)
    unclosed = split_tokens("a b c and on", count)
    assert (unclosed.tokens, unclosed.thinking, unclosed.answer, unclosed.think_closed) == (5, 5, 0, False)
    assert split_tokens(None, count).tokens == 0


def test_split_tokens_with_the_students_tokenizer_adds_up(shared_tokenizer):
    from drp.tokens import TokenCounter

    counter = TokenCounter(shared_tokenizer)
    thinking = "Okay, 3 apples and 4 more make 7.\n</think>"
    answer = "\n\nSo the total is $\\boxed{7}$."
    split = split_tokens(thinking + answer, counter.count)
    assert split.thinking == counter.count(thinking) and split.answer == counter.count(answer)
    assert split.tokens == counter.count(thinking + answer) == split.thinking + split.answer


def test_token_split_and_endings_by_hand():
    records = [
        _record("p1", 0, True, "1", thinking=10, answer_tokens=5),
        _record("p2", 0, False, "2", thinking=20, answer_tokens=5),
        _record("p3", 0, True, "3", thinking=30, answer_tokens=10),
        _record("p4", 0, False, None, thinking=40, answer_tokens=0, finish="length", closed=False),
    ]
    split = token_split_metrics(records)
    assert split["n"] == 4
    assert split["thinking"] == {"mean": 25.0, "median": 25.0, "p90": pytest.approx(37.0)}  # 30 + 0.7 × 10
    assert split["answer"]["mean"] == 5.0 and split["tokens"]["mean"] == 30.0
    assert split["correct"]["n"] == 2 and split["correct"]["tokens"]["mean"] == 27.5  # (15 + 40) / 2
    assert split["incorrect"]["thinking"]["mean"] == 30.0 and split["incorrect"]["tokens"]["median"] == 32.5
    endings = response_endings(records)
    assert endings["n"] == 4
    assert endings["stopped"] == {"count": 3, "rate": 0.75} and endings["truncated"] == {"count": 1, "rate": 0.25}
    assert endings["no_think_close"]["count"] == 1 and endings["no_answer"] == {"count": 1, "rate": 0.25}


def test_samples_from_before_the_split_are_left_out_not_counted_as_zero():
    old = {
        k: v
        for k, v in _record("p9", 0, True, "1").items()
        if k not in ("thinking_tokens", "answer_tokens", "think_closed")
    }
    split = token_split_metrics([old, _record("p1", 0, True, "1", thinking=12)])
    assert split["n"] == 1 and split["thinking"]["mean"] == 12
    assert response_endings([old])["no_think_close"]["count"] == 0
    assert per_problem([old])["p9"]["thinking_tokens"] is None


def test_benchmark_metrics_carry_the_k_scores_and_the_split():
    metrics = benchmark_metrics(RECORDS, max_tokens=100)
    assert metrics["avg@k"]["value"] == pytest.approx(7 / 12) and metrics["maj@k"]["value"] == pytest.approx(2 / 3)
    assert metrics["token_split"]["thinking"]["mean"] == 10 and metrics["endings"]["n"] == 13
    assert per_problem(RECORDS)["p1"]["thinking_tokens"] == 10
