"""Per-benchmark metrics from sample records: per seed, over seeds, and over problems (bootstrap CI); over the
k samples of each problem (drp.evals.sample_scores) and the thinking/answer token split (drp.evals.token_split)."""

from __future__ import annotations

from collections import defaultdict

from drp.evals.sample_scores import sample_scores
from drp.evals.stats import bootstrap_ci, mean_std
from drp.evals.token_split import response_endings, token_split_metrics

# A server usually counts the end-of-sequence token the text does not contain: one token apart is a match.
TOKEN_TOLERANCE = 1


def successes(records: list[dict]) -> list[dict]:
    return [r for r in records if not r.get("error")]


def per_problem(records: list[dict]) -> dict[str, dict]:
    """Problem id → accuracy and tokens averaged over its seeds (the unit the CI and paired tests use)."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for record in successes(records):
        grouped[record["problem_id"]].append(record)
    return {
        pid: {
            "accuracy": sum(bool(r["correct"]) for r in rows) / len(rows),
            "tokens": sum(r["tokens"] for r in rows) / len(rows),
            # None for samples recorded before the thinking/answer split
            "thinking_tokens": None
            if any(r.get("thinking_tokens") is None for r in rows)
            else sum(r["thinking_tokens"] for r in rows) / len(rows),
            "question_sha": rows[0].get("question_sha"),
            "seeds": len(rows),
        }
        for pid, rows in grouped.items()
    }


def benchmark_metrics(
    records: list[dict], max_tokens: int | None = None, maj_k: int | None = None, pass_k: list[int] | None = None
) -> dict:
    """Metrics of one benchmark from its latest sample records (errored ones counted apart, never as wrong);
    `maj_k` and `pass_k` as drp.evals.sample_scores takes them (compare sets them to what every run has)."""
    done = successes(records)
    by_seed: dict[int, list[dict]] = defaultdict(list)
    for record in done:
        by_seed[record["seed"]].append(record)
    seeds = []
    for seed in sorted(by_seed):
        rows = by_seed[seed]
        seeds.append(
            {
                "seed": seed,
                "n": len(rows),
                "correct": sum(bool(r["correct"]) for r in rows),
                "accuracy": sum(bool(r["correct"]) for r in rows) / len(rows),
                "mean_tokens": sum(r["tokens"] for r in rows) / len(rows),
                "length_capped": sum(r.get("finish_reason") == "length" for r in rows),
                "no_answer": sum(r.get("extracted_answer") is None for r in rows),
            }
        )
    problems = per_problem(records)
    acc_mean, acc_std = mean_std([s["accuracy"] for s in seeds])
    tok_mean, tok_std = mean_std([s["mean_tokens"] for s in seeds])
    capped = sum(r.get("finish_reason") == "length" for r in done)
    return {
        "n_problems": len(problems),
        "seeds": [s["seed"] for s in seeds],
        "samples": len(done),
        "per_seed": seeds,
        "accuracy": {
            "mean": acc_mean,
            "std": acc_std,
            "ci95": list(bootstrap_ci([p["accuracy"] for p in problems.values()])),
        },
        "tokens": {
            "mean": tok_mean,
            "std": tok_std,
            "ci95": list(bootstrap_ci([p["tokens"] for p in problems.values()])),
        },
        **sample_scores(records, maj_k=maj_k, pass_k=pass_k),
        "token_split": token_split_metrics(done),
        "endings": response_endings(done),
        "max_tokens": max_tokens,
        "length_capped": {"count": capped, "rate": capped / len(done) if done else 0.0},
        "no_answer": [
            {"problem_id": r["problem_id"], "seed": r["seed"]} for r in done if r.get("extracted_answer") is None
        ],
        "answer_without_boxed": sum(r.get("answer_source") == "fallback" for r in done),
        "token_check": token_check(done),
        "errors": [
            {"problem_id": r["problem_id"], "seed": r["seed"], "error": r["error"]} for r in records if r.get("error")
        ],
        "complete": not any(r.get("error") for r in records),
        "contamination": contamination(records),
        **({"lm_eval": lm_eval_accuracy(done)} if any("strict_correct" in r for r in done) else {}),
    }


def contamination(records: list[dict]) -> dict:
    """How many evaluated problems the student trained on; `checked` is False when its questions were unknown."""
    marks = {}
    for record in records:
        marks.setdefault(record["problem_id"], record.get("trained_on"))
    checked = bool(marks) and all(mark is not None for mark in marks.values())
    seen = sorted(str(pid) for pid, mark in marks.items() if mark)
    return {"checked": checked, "trained_on": len(seen) if checked else None, "problem_ids": seen[:50]}


def lm_eval_accuracy(records: list[dict]) -> dict:
    """lm-eval's strict and flexible filters' accuracy over the samples (paper protocol)."""
    return {
        name: sum(bool(r.get(f"{name}_correct")) for r in records) / len(records) if records else 0.0
        for name in ("strict", "flexible")
    }


def token_check(records: list[dict]) -> dict:
    """Our tokenizer's count against the server's usage.completion_tokens."""
    pairs = [
        (r["tokens"], r["server_completion_tokens"]) for r in records if r.get("server_completion_tokens") is not None
    ]
    mismatches = sum(abs(ours - theirs) > TOKEN_TOLERANCE for ours, theirs in pairs)
    return {
        "compared": len(pairs),
        "mismatches": mismatches,
        "mismatch_rate": mismatches / len(pairs) if pairs else None,
        "mean_abs_diff": sum(abs(a - b) for a, b in pairs) / len(pairs) if pairs else None,
        "tolerance": TOKEN_TOLERANCE,
    }
