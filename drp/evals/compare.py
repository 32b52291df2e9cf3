"""`drp compare`: eval folders side by side, paired on the same problems, with the tests reviewers ask for.

The first folder is the baseline. Per benchmark and run: accuracy and tokens (mean ± sd over seeds, 95%
bootstrap CI over problems), token reduction, and against the baseline an exact McNemar test on accuracy
(per problem: correct in most of its seeds) and a Wilcoxon signed-rank test on tokens (per-problem mean over
seeds). Runs on different problem sets are refused, naming the difference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from drp.errors import UserError
from drp.evals.evaluation import CONFIG, SAMPLES, load_samples
from drp.evals.metrics import benchmark_metrics, per_problem
from drp.evals.protocols import DEFAULT_PROTOCOL
from drp.evals.stats import mcnemar_exact, wilcoxon_signed_rank


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
    config = json.loads((path / CONFIG).read_text()) if (path / CONFIG).is_file() else {}
    samples = load_samples(path)
    if not samples:
        raise CompareError(f"{path}: {SAMPLES} holds no samples")
    return EvalRun(path.name, path, config, samples)


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
    skipped = {b: [r.label for r in runs if b in r.samples]
               for b in sorted(set().union(*present) - set(common))}
    if not common:
        raise CompareError("no benchmark is in every run: " +
                           "; ".join(f"{r.label}: {', '.join(sorted(r.samples))}" for r in runs))
    benchmarks = {}
    for name in common:
        _same_problems(name, runs)
        benchmarks[name] = _compare_benchmark(name, runs)
    return {
        "baseline": runs[0].label,
        "protocol": _protocol(runs[0]),
        "runs": [{"label": r.label, "path": str(r.path), "model": r.config.get("model"),
                  "decoding": r.config.get("decoding"),
                  "prompt_template": (r.config.get("prompt_template") or {}).get("label")} for r in runs],
        "benchmarks": benchmarks,
        "skipped_benchmarks": skipped,
    }


def _protocol(run: EvalRun) -> str:
    return run.config.get("protocol") or DEFAULT_PROTOCOL  # runs from before protocols were all `default`


def _same_protocol(runs: list[EvalRun]) -> None:
    """Different requests, caps and scoring: their numbers cannot stand side by side."""
    protocols = {_protocol(run) for run in runs}
    if len(protocols) > 1:
        raise CompareError("these runs were evaluated under different protocols ("
                           + ", ".join(f"{run.label}: {_protocol(run)}" for run in runs)
                           + "); evaluate them all with the same `drp eval --protocol`")
    scores = {run.config.get("score") for run in runs}  # paper protocol: the headline each folder was scored by
    if len(scores) > 1:
        raise CompareError("these runs have different headline scores ("
                           + ", ".join(f"{run.label}: {run.config.get('score')}" for run in runs)
                           + "); rerun `drp eval` on each folder with the same --score (no new sampling)")


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
            raise CompareError(f"{name}: {base.label} and {other.label} are on different problems: "
                               f"{'; '.join(parts)}{hint}")
        changed = sorted(pid for pid in problems
                         if problems[pid]["question_sha"] != base_problems[pid]["question_sha"])
        if changed:
            raise CompareError(f"{name}: {base.label} and {other.label} asked different questions under the same "
                               f"ids ({len(changed)}: {_few(changed)}): the data files differ")


def _error_hint(name: str, runs: list[EvalRun], ids: list[str]) -> str:
    failed = [r.label for r in runs
              if any(rec.get("error") and rec["problem_id"] in ids for rec in r.samples[name])]
    return f" ({', '.join(failed)} has failed samples there: rerun its drp eval to finish it)" if failed else ""


def _few(ids: list[str], shown: int = 5) -> str:
    return ", ".join(ids[:shown]) + (", ..." if len(ids) > shown else "")


def _compare_benchmark(name: str, runs: list[EvalRun]) -> dict:
    base_problems = per_problem(runs[0].samples[name])
    ids = sorted(base_problems)
    rows = []
    for run in runs:
        cap = (run.config.get("paper_caps") or {}).get(name) or (run.config.get("decoding") or {}).get("max_tokens")
        metrics = benchmark_metrics(run.samples[name], cap)
        problems = per_problem(run.samples[name])
        row = {
            "label": run.label,
            "n_problems": metrics["n_problems"],
            "seeds": len(metrics["seeds"]),
            "accuracy": metrics["accuracy"],
            "tokens": metrics["tokens"],
            "length_capped_rate": metrics["length_capped"]["rate"],
            "no_answer": len(metrics["no_answer"]),
            "errors": len(metrics["errors"]),
            "contamination": metrics["contamination"],
            **({"lm_eval": metrics["lm_eval"]} if "lm_eval" in metrics else {}),
        }
        if run is not runs[0]:
            base_tokens = rows[0]["tokens"]["mean"]
            mcnemar = mcnemar_exact([base_problems[i]["accuracy"] > 0.5 for i in ids],
                                    [problems[i]["accuracy"] > 0.5 for i in ids])
            wilcoxon = wilcoxon_signed_rank([base_problems[i]["tokens"] for i in ids],
                                            [problems[i]["tokens"] for i in ids])
            row.update(
                accuracy_delta=metrics["accuracy"]["mean"] - rows[0]["accuracy"]["mean"],
                token_reduction=(1 - metrics["tokens"]["mean"] / base_tokens) if base_tokens else None,
                mcnemar={"only_baseline": mcnemar.only_a, "only_this": mcnemar.only_b, "pvalue": mcnemar.pvalue},
                wilcoxon_tokens={"statistic": wilcoxon.statistic, "pvalue": wilcoxon.pvalue,
                                 "n_nonzero": wilcoxon.n_nonzero},
            )
        rows.append(row)
    return {"n_problems": len(ids), "rows": rows}
