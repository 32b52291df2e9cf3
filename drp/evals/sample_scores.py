"""Scores over k samples per problem: avg@k (pass@1), unbiased pass@k and maj@k.

Each is a per-problem value averaged over problems, reported with its standard error and a percentile bootstrap
95% CI over problems (the problem, not the sample, is the unit: a problem's k samples are not independent draws
of the benchmark).

- avg@k: the share of a problem's samples that are correct (the unbiased pass@1 estimate).
- pass@k′ (k′ ≤ n): Chen et al. 2021's unbiased estimator 1 − C(n−c, k′) / C(n, k′) from n samples, c correct.
- maj@k: the answer most of the first k samples give wins (samples without an answer do not vote). The correct
  answers are one answer (each is equivalent to the gold one); wrong answers are grouped by math-verify
  equivalence, so a wrong "0.5" and "\\frac{1}{2}" are one vote. A tie is worth the share of the tied answers
  that are correct: the expected score of a fair coin between them, with no seed favoured.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from math import comb

from drp.evals.stats import summary


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) is correct."""
    if not 0 < k <= n or not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 < k ≤ n and 0 ≤ c ≤ n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def k_values(n: int) -> list[int]:
    """The k′ reported for n samples: powers of two below n, and n itself."""
    values, k = [], 1
    while k < n:
        values.append(k)
        k *= 2
    return values + [n] if n > 0 else []


def answer_groups(answers: list[str], same: Callable[[str, str], bool]) -> list[list[int]]:
    """Indices of `answers` grouped by equivalence: identical strings first, then each distinct string joins the
    first group whose representative it is `same` as (so `same` runs once per distinct string and group)."""
    by_text: dict[str, list[int]] = {}
    for index, answer in enumerate(answers):
        by_text.setdefault(answer.strip(), []).append(index)
    groups: list[tuple[str, list[int]]] = []
    for text, indices in by_text.items():
        for representative, members in groups:
            if same(representative, text):
                members.extend(indices)
                break
        else:
            groups.append((text, list(indices)))
    return [sorted(members) for _, members in groups]


def majority_vote(votes: list[tuple[str | None, bool]], same: Callable[[str, str], bool]) -> float:
    """maj@k of one problem from its samples' (extracted answer, correct): 1, 0, or a tie's share correct.

    The correct answers are one group already (each is equivalent to the gold answer); only the wrong ones are
    grouped, and only when they might outvote it: math-verify is slow on answers that differ, so it runs only
    where the vote depends on it."""
    answered = [(answer, correct) for answer, correct in votes if answer is not None]
    right = sum(correct for _, correct in answered)
    wrong = [answer for answer, correct in answered if not correct]
    if right == 0 or len(wrong) < right:
        return 1.0 if right else 0.0
    if max(Counter(answer.strip() for answer in wrong).values()) > right:
        return 0.0  # one wrong answer, written the same way, outvotes it already
    sizes = [len(group) for group in answer_groups(wrong, same)]
    if max(sizes) != right:
        return 1.0 if max(sizes) < right else 0.0
    return 1 / (1 + sizes.count(right))


def same_answer(first: str, second: str) -> bool:
    """math-verify equivalence; constants of plainly different value are told apart before it, at a fraction of
    its cost (drp.answers.clearly_different)."""
    from drp.answers import clearly_different, equivalent

    return not clearly_different(first, second) and equivalent(first, second)


def by_problem(records: list[dict]) -> dict[str, list[dict]]:
    """Problem id → its successful samples in seed order."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        if not record.get("error"):
            grouped[str(record["problem_id"])].append(record)
    return {pid: sorted(rows, key=lambda r: r["seed"]) for pid, rows in grouped.items()}


def sample_scores(
    records: list[dict],
    maj_k: int | None = None,
    pass_k: list[int] | None = None,
    same: Callable[[str, str], bool] | None = None,
) -> dict:
    """avg@k, pass@k′ and maj@k of one benchmark from its latest sample records.

    k is the fewest samples any problem has (a resumed run with failed samples may leave some short); pass@k′ is
    given for `pass_k` (default: k_values(k)), maj@k over each problem's first `maj_k` samples (default k).
    """
    same = same or same_answer
    problems = by_problem(records)
    if not problems:
        return {"samples_per_problem": {"min": 0, "max": 0}, "avg@k": None, "pass@k": {}, "maj@k": None}
    counts = [len(rows) for rows in problems.values()]
    k = min(counts)
    correct = [(len(rows), sum(bool(r.get("correct")) for r in rows)) for rows in problems.values()]
    maj_k = k if maj_k is None else min(maj_k, k)
    pass_k = k_values(k) if pass_k is None else [value for value in pass_k if value <= k]
    majority = [
        majority_vote([(r.get("extracted_answer"), bool(r.get("correct"))) for r in rows[:maj_k]], same)
        for rows in problems.values()
    ]
    return {
        "samples_per_problem": {"min": k, "max": max(counts)},
        "avg@k": {"k": k, **summary([c / n for n, c in correct])},
        "pass@k": {str(value): summary([pass_at_k(n, c, value) for n, c in correct]) for value in pass_k},
        "maj@k": {"k": maj_k, **summary(majority)},
    }
