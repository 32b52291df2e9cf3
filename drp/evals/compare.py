"""`drp compare`: eval folders side by side, paired on the same problems, with the tests reviewers ask for.

The first folder is the baseline. Per benchmark and run: accuracy and tokens (mean ± sd over seeds, 95%
bootstrap CI over problems), avg@k, pass@k and maj@k at the k every run has, thinking and answer tokens, how
responses ended, token reduction, and against the baseline, paired on the per-problem means over samples: the
accuracy difference with its paired bootstrap CI and a sign-flip test, an exact McNemar test (per problem:
correct in most of its samples), and Wilcoxon signed-rank tests on tokens and on thinking tokens. Runs on
different problem sets are refused, naming the difference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from drp.errors import UserError
from drp.evals.evaluation import CONFIG, SAMPLES, sample_key, with_headline
from drp.evals.metrics import benchmark_metrics, per_problem
from drp.evals.protocols import DEFAULT_PROTOCOL
from drp.evals.sample_scores import by_problem
from drp.evals.stats import bootstrap_ci, mcnemar_exact, sign_flip_test, wilcoxon_signed_rank


class CompareError(UserError):
    """Runs that cannot be compared; the message names the difference."""


@dataclass
class EvalRun:
    label: str
    path: Path
    config: dict
    samples: dict[str, list[dict]]  # benchmark → latest records


def load_eval_run(path: Path) -> EvalRun:
    if not (path / SAMPLES).is_file():
        raise CompareError(f"{path} is not an eval folder (no {SAMPLES}); make one with `drp eval --out`")
    config = _config(path / CONFIG)
    samples = _checked_samples(path / SAMPLES, config)
    if not samples:
        raise CompareError(f"{path}: {SAMPLES} holds no samples")
    return EvalRun(path.name, path, config, samples)


def _config(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CompareError(f"{path} is not the JSON `drp eval` writes ({error})") from None
    if not isinstance(config, dict):
        raise CompareError(f"{path} holds a JSON {type(config).__name__}, not the settings `drp eval` writes")
    for key, kind in (
        ("decoding", dict),
        ("prompt_template", dict),
        ("paper_caps", dict),
        ("protocol", str),
        ("model", str),
    ):
        if config.get(key) is not None and not isinstance(config[key], kind):
            raise CompareError(f"{path}: {key} is {type(config[key]).__name__}, not what `drp eval` writes")
    return config


def _checked_samples(path: Path, config: dict) -> dict[str, list[dict]]:
    """Benchmark → its latest records, each checked to be a sample `drp eval` wrote (one-line error if not) and
    scored by the folder's headline score."""
    from drp.sampling.samples_file import latest_by_key, read_records

    records = []
    try:
        for number, record in enumerate(read_records(path), start=1):
            problem = _sample_problem(record)
            if problem:
                raise CompareError(f"{path}: record {number} is not a sample of `drp eval`: {problem}")
            records.append(record)
    except UnicodeDecodeError as error:
        raise CompareError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    grouped: dict[str, list[dict]] = {}
    for record in latest_by_key(records, sample_key).values():
        grouped.setdefault(record["benchmark"], []).append(with_headline(record, config))
    return grouped


def _number(value) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _sample_problem(record: dict) -> str | None:
    """What the statistics would trip over in one record, or None."""
    from drp.surrogates import first_surrogate

    checks = [
        ("benchmark", lambda v: isinstance(v, str) and v.strip(), "text"),
        ("seed", lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
        ("problem_id", lambda v: isinstance(v, (str, int)) and not isinstance(v, bool), "text or an integer"),
    ]
    if not record.get("error"):  # a finished sample is scored and counted
        checks += [
            ("correct", lambda v: isinstance(v, (bool, int)), "true or false"),
            ("tokens", _number, "a token count"),
            ("finish_reason", lambda v: v is None or isinstance(v, str), "text"),
            ("question_sha", lambda v: v is None or isinstance(v, str), "text"),
        ]
    for key, valid, expected in checks:
        if key not in record or not valid(record[key]):
            shown = "missing" if key not in record else f"{json.dumps(record[key], default=str)[:40]}"
            return f"{key} is {shown}, not {expected}"
    surrogate = first_surrogate(record)
    return f"{surrogate[0]} holds a lone surrogate ({surrogate[1]})" if surrogate else None


def _unique_labels(runs: list[EvalRun]) -> None:
    names = [r.label for r in runs]
    for run in runs:
        if names.count(run.label) > 1:
            run.label = f"{run.path.parent.name}/{run.path.name}"
    if len({r.label for r in runs}) < len(runs):
        for index, run in enumerate(runs):
            run.label = f"{index + 1}:{run.label}"


def compare(paths: list[Path]) -> dict:
    if len(paths) < 2:
        raise CompareError("compare needs at least two eval folders")
    runs = [load_eval_run(Path(p)) for p in paths]
    _unique_labels(runs)
    _same_protocol(runs)
    present = [set(r.samples) for r in runs]
    common = [b for b in runs[0].samples if all(b in names for names in present)]
    skipped = {b: [r.label for r in runs if b in r.samples] for b in sorted(set().union(*present) - set(common))}
    if not common:
        raise CompareError(
            "no benchmark is in every run: " + "; ".join(f"{r.label}: {', '.join(sorted(r.samples))}" for r in runs)
        )
    benchmarks = {}
    for name in common:
        _same_problems(name, runs)
        benchmarks[name] = _compare_benchmark(name, runs)
    return {
        "baseline": runs[0].label,
        "protocol": _protocol(runs[0]),
        "runs": [
            {
                "label": r.label,
                "path": str(r.path),
                "model": r.config.get("model"),
                "decoding": r.config.get("decoding"),
                "prompt_template": (r.config.get("prompt_template") or {}).get("label"),
            }
            for r in runs
        ],
        "benchmarks": benchmarks,
        "skipped_benchmarks": skipped,
    }


def _protocol(run: EvalRun) -> str:
    return run.config.get("protocol") or DEFAULT_PROTOCOL  # runs from before protocols were all `default`


def _same_protocol(runs: list[EvalRun]) -> None:
    """Different requests, caps and scoring: their numbers cannot stand side by side."""
    protocols = {_protocol(run) for run in runs}
    if len(protocols) > 1:
        raise CompareError(
            "these runs were evaluated under different protocols ("
            + ", ".join(f"{run.label}: {_protocol(run)}" for run in runs)
            + "); evaluate them all with the same `drp eval --protocol`"
        )
    scores = {run.config.get("score") for run in runs}  # paper protocol: the headline each folder was scored by
    if len(scores) > 1:
        raise CompareError(
            "these runs have different headline scores ("
            + ", ".join(f"{run.label}: {run.config.get('score')}" for run in runs)
            + "); rerun `drp eval` on each folder with the same --score (no new sampling)"
        )


def _same_problems(name: str, runs: list[EvalRun]) -> None:
    base = runs[0]
    base_problems = per_problem(base.samples[name])
    for other in runs[1:]:
        problems = per_problem(other.samples[name])
        only_base = sorted(set(base_problems) - set(problems))
        only_other = sorted(set(problems) - set(base_problems))
        if only_base or only_other:
            parts = []
            if only_base:
                parts.append(f"{len(only_base)} only in {base.label} ({_few(only_base)})")
            if only_other:
                parts.append(f"{len(only_other)} only in {other.label} ({_few(only_other)})")
            hint = _error_hint(name, [base, other], only_base + only_other)
            raise CompareError(
                f"{name}: {base.label} and {other.label} are on different problems: {'; '.join(parts)}{hint}"
            )
        changed = sorted(pid for pid in problems if problems[pid]["question_sha"] != base_problems[pid]["question_sha"])
        if changed:
            raise CompareError(
                f"{name}: {base.label} and {other.label} asked different questions under the same "
                f"ids ({len(changed)}: {_few(changed)}): the data files differ"
            )


def _error_hint(name: str, runs: list[EvalRun], ids: list[str]) -> str:
    failed = [r.label for r in runs if any(rec.get("error") and rec["problem_id"] in ids for rec in r.samples[name])]
    return f" ({', '.join(failed)} has failed samples there: rerun its drp eval to finish it)" if failed else ""


def _few(ids: list[str], shown: int = 5) -> str:
    return ", ".join(ids[:shown]) + (", ..." if len(ids) > shown else "")


def _compare_benchmark(name: str, runs: list[EvalRun]) -> dict:
    base_problems = per_problem(runs[0].samples[name])
    ids = sorted(base_problems)
    # Scores over k samples stand side by side only at one k: the fewest samples any run has on a problem.
    k = min(min((len(rows) for rows in by_problem(run.samples[name]).values()), default=0) for run in runs)
    rows = []
    for run in runs:
        cap = (run.config.get("paper_caps") or {}).get(name) or (run.config.get("decoding") or {}).get("max_tokens")
        metrics = benchmark_metrics(run.samples[name], cap, maj_k=k, pass_k=[k])
        problems = per_problem(run.samples[name])
        thinking = [problems[i]["thinking_tokens"] for i in ids]
        row = {
            "label": run.label,
            "n_problems": metrics["n_problems"],
            "seeds": len(metrics["seeds"]),
            "accuracy": metrics["accuracy"],
            "tokens": metrics["tokens"],
            "samples_per_problem": metrics["samples_per_problem"],
            "avg@k": metrics["avg@k"],
            "pass@k": {"k": k, **metrics["pass@k"][str(k)]} if str(k) in metrics["pass@k"] else None,
            "maj@k": metrics["maj@k"],
            "thinking_tokens": None
            if None in thinking
            else {**metrics["token_split"]["thinking"], "ci95": list(bootstrap_ci(thinking))},
            "token_split": metrics["token_split"],
            "endings": metrics["endings"],
            "length_capped_rate": metrics["length_capped"]["rate"],
            "no_answer": len(metrics["no_answer"]),
            "errors": len(metrics["errors"]),
            "contamination": metrics["contamination"],
            **({"lm_eval": metrics["lm_eval"]} if "lm_eval" in metrics else {}),
        }
        if run is not runs[0]:
            base_tokens = rows[0]["tokens"]["mean"]
            mcnemar = mcnemar_exact(
                [base_problems[i]["accuracy"] > 0.5 for i in ids], [problems[i]["accuracy"] > 0.5 for i in ids]
            )
            wilcoxon = wilcoxon_signed_rank(
                [base_problems[i]["tokens"] for i in ids], [problems[i]["tokens"] for i in ids]
            )
            base_accuracy, accuracy = (
                [base_problems[i]["accuracy"] for i in ids],
                [problems[i]["accuracy"] for i in ids],
            )
            flip = sign_flip_test(base_accuracy, accuracy)
            row.update(
                accuracy_paired={
                    "mean_difference": flip.mean_difference,
                    "ci95": list(bootstrap_ci([b - a for a, b in zip(base_accuracy, accuracy)])),
                    "sign_flip_pvalue": flip.pvalue,
                    "exact": flip.exact,
                },
                wilcoxon_thinking=_wilcoxon_thinking(
                    rows[0], row, [base_problems[i] for i in ids], [problems[i] for i in ids]
                ),
            )
            row.update(
                accuracy_delta=metrics["accuracy"]["mean"] - rows[0]["accuracy"]["mean"],
                token_reduction=(1 - metrics["tokens"]["mean"] / base_tokens) if base_tokens else None,
                mcnemar={"only_baseline": mcnemar.only_a, "only_this": mcnemar.only_b, "pvalue": mcnemar.pvalue},
                wilcoxon_tokens={
                    "statistic": wilcoxon.statistic,
                    "pvalue": wilcoxon.pvalue,
                    "n_nonzero": wilcoxon.n_nonzero,
                },
            )
        rows.append(row)
    return {"n_problems": len(ids), "rows": rows}


def _wilcoxon_thinking(base_row: dict, row: dict, base: list[dict], this: list[dict]) -> dict | None:
    """Wilcoxon on per-problem mean thinking tokens; None when a run's samples predate the split."""
    if base_row["thinking_tokens"] is None or row["thinking_tokens"] is None:
        return None
    test = wilcoxon_signed_rank([p["thinking_tokens"] for p in base], [p["thinking_tokens"] for p in this])
    return {"statistic": test.statistic, "pvalue": test.pvalue, "n_nonzero": test.n_nonzero}
