"""Rendering a comparison: Markdown, a self-contained HTML page (jinja2) and an accuracy-vs-tokens PNG."""

from __future__ import annotations

import base64
import json
from pathlib import Path

TEMPLATE = Path(__file__).with_name("compare_report.html.j2")
PLOT = "accuracy_vs_tokens.png"

NOTES = [
    "accuracy and tokens: mean ± sample sd over seeds; 95% CI: percentile bootstrap over problems "
    "(per-problem mean over seeds).",
    "token reduction: 1 − mean tokens / baseline mean tokens (tokens counted with each run's tokenizer).",
    "McNemar: exact two-sided binomial test on discordant problems (a problem counts as solved when it is "
    "solved in more than half of its seeds); base✓/this✓ = problems only the baseline / only this run solves.",
    "Wilcoxon: two-sided signed-rank test on per-problem mean tokens (zero differences dropped); "
    "thinking: the same on per-problem mean thinking tokens.",
    "avg@k: share of a problem's samples that are correct, averaged over problems (= pass@1); pass@k: Chen et al. "
    "2021's unbiased estimator; maj@k: the most common answer among a problem's first k samples (math-verify "
    "equivalence groups answers; a tie counts the share of tied answers that are correct). k is the fewest "
    "samples any run has on a problem; ± is the standard error over problems.",
    "Δ 95% CI: paired bootstrap over problems of the per-problem accuracy difference; sign-flip: two-sided paired "
    "permutation test on it (exact up to 13 problems).",
    "thinking: tokens up to and including </think>; answer: the rest. A response without </think> counts as "
    "thinking and under no </think>. ✓ / ✗: mean tokens of correct / incorrect samples. The plot puts accuracy "
    "against mean thinking tokens.",
]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def score_text(score: dict | None) -> str:
    """A score over problems with its standard error."""
    return "–" if not score or score.get("value") is None else f"{score['value']:.1%} ± {score['se']:.1%}"


def count_text(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def rate_text(endings: dict | None, key: str) -> str:
    return _pct(((endings or {}).get(key) or {}).get("rate"))


def _k_and_split(row: dict) -> dict:
    """The k-sample scores, the paired accuracy tests and the token split of one run."""
    split, paired = row.get("token_split") or {}, row.get("accuracy_paired")
    thinking = split.get("thinking") or {}
    wilcoxon = row.get("wilcoxon_thinking")
    return {
        "avg_k": "–" if not row.get("avg@k") else f"@{row['avg@k']['k']} {score_text(row['avg@k'])}",
        "pass_k": "–" if not row.get("pass@k") else f"@{row['pass@k']['k']} {score_text(row['pass@k'])}",
        "maj_k": "–" if not row.get("maj@k") else f"@{row['maj@k']['k']} {score_text(row['maj@k'])}",
        "delta_ci": "–" if not paired else f"[{paired['ci95'][0] * 100:+.1f}, {paired['ci95'][1] * 100:+.1f}] pp",
        "sign_flip": "–" if not paired else f"p={_p(paired['sign_flip_pvalue'])}",
        "thinking": " / ".join(count_text(thinking.get(key)) for key in ("mean", "median", "p90")),
        "answer": count_text((split.get("answer") or {}).get("mean")),
        "by_outcome": f"{count_text(((split.get('correct') or {}).get('tokens') or {}).get('mean'))} / "
        f"{count_text(((split.get('incorrect') or {}).get('tokens') or {}).get('mean'))}",
        "wilcoxon_thinking": "–" if not wilcoxon else f"p={_p(wilcoxon['pvalue'])}",
        "stopped": rate_text(row.get("endings"), "stopped"),
        "no_think_close": rate_text(row.get("endings"), "no_think_close"),
        "no_answer_rate": rate_text(row.get("endings"), "no_answer"),
    }


def table_rows(benchmark: dict) -> list[dict]:
    """Display strings per run, shared by the Markdown and HTML renderings."""
    rows = []
    for row in benchmark["rows"]:
        acc, tok = row["accuracy"], row["tokens"]
        mcnemar, wilcoxon = row.get("mcnemar"), row.get("wilcoxon_tokens")
        rows.append(
            {
                **_k_and_split(row),
                "label": row["label"],
                "size": f"{row['n_problems']} × {row['seeds']}",
                "accuracy": f"{acc['mean']:.1%} ± {acc['std']:.1%}",
                "accuracy_ci": f"[{acc['ci95'][0]:.1%}, {acc['ci95'][1]:.1%}]",
                "accuracy_delta": "baseline"
                if "accuracy_delta" not in row
                else f"{row['accuracy_delta'] * 100:+.1f} pp",
                "tokens": f"{tok['mean']:.0f} ± {tok['std']:.0f}",
                "tokens_ci": f"[{tok['ci95'][0]:.0f}, {tok['ci95'][1]:.0f}]",
                "token_reduction": "baseline" if "accuracy_delta" not in row else _pct(row["token_reduction"]),
                "mcnemar": "–"
                if not mcnemar
                else f"{mcnemar['only_baseline']}/{mcnemar['only_this']}, p={_p(mcnemar['pvalue'])}",
                "wilcoxon": "–" if not wilcoxon else f"p={_p(wilcoxon['pvalue'])}",
                "capped": _pct(row["length_capped_rate"]),
                "trained_on": _trained_on(row.get("contamination")),
            }
        )
    return rows


def _trained_on(contamination: dict | None) -> str:
    """Evaluated problems the run's student trained on: a number, with a warning sign when above zero."""
    if not contamination or not contamination.get("checked"):
        return "unknown"
    count = contamination["trained_on"]
    return f"{count} ⚠" if count else "0"


def contamination_warnings(comparison: dict) -> list[str]:
    return [
        f"WARNING: {name}: {row['label']}'s student trained on {row['contamination']['trained_on']} of the "
        f"{row['n_problems']} evaluated problems: not a held-out score"
        for name, benchmark in comparison["benchmarks"].items()
        for row in benchmark["rows"]
        if (row.get("contamination") or {}).get("trained_on")
    ]


# Two tables per benchmark: accuracy, then tokens.
ACCURACY_COLUMNS = [
    ("label", "run"),
    ("size", "problems × seeds"),
    ("accuracy", "accuracy"),
    ("accuracy_ci", "95% CI"),
    ("accuracy_delta", "Δ accuracy"),
    ("delta_ci", "Δ 95% CI"),
    ("sign_flip", "sign-flip"),
    ("mcnemar", "McNemar base✓/this✓"),
    ("avg_k", "avg@k"),
    ("pass_k", "pass@k"),
    ("maj_k", "maj@k"),
    ("trained_on", "trained on"),
]
TOKEN_COLUMNS = [
    ("label", "run"),
    ("tokens", "tokens"),
    ("tokens_ci", "95% CI"),
    ("token_reduction", "token reduction"),
    ("wilcoxon", "Wilcoxon (tokens)"),
    ("thinking", "thinking mean / median / p90"),
    ("wilcoxon_thinking", "Wilcoxon (thinking)"),
    ("answer", "answer mean"),
    ("by_outcome", "tokens ✓ / ✗"),
    ("stopped", "stopped"),
    ("capped", "hit cap"),
    ("no_think_close", "no </think>"),
    ("no_answer_rate", "no answer"),
]
TABLES = [ACCURACY_COLUMNS, TOKEN_COLUMNS]


def markdown(comparison: dict) -> str:
    lines = [
        "# drp compare",
        "",
        f"Baseline: **{comparison['baseline']}**; protocol: **{comparison.get('protocol', 'default')}**",
        "",
    ]
    for run in comparison["runs"]:
        decoding = run.get("decoding") or {}
        lines.append(
            f"- **{run['label']}**: `{run['path']}`, model `{run.get('model')}`, "
            f"T={decoding.get('temperature')}, top_p={decoding.get('top_p')}, "
            f"max_tokens={decoding.get('max_tokens')}, prompt {run.get('prompt_template')}"
        )
    for name, benchmark in comparison["benchmarks"].items():
        lines += ["", f"## {name} ({benchmark['n_problems']} problems)"]
        rows = table_rows(benchmark)
        for columns in TABLES:
            lines += ["", "| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(row[key] for key, _ in columns) + " |" for row in rows]
    warnings = contamination_warnings(comparison)
    if warnings:
        lines += [""] + [f"**{warning}**" for warning in warnings]
    if comparison["skipped_benchmarks"]:
        lines += [
            "",
            "Not in every run (left out): "
            + "; ".join(f"{b} ({', '.join(labels)})" for b, labels in comparison["skipped_benchmarks"].items()),
        ]
    lines += ["", f"![accuracy vs thinking tokens]({PLOT})", "", "Notes:", ""] + [f"- {note}" for note in NOTES]
    return "\n".join(lines) + "\n"


def plot(comparison: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(comparison["benchmarks"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 4), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, name in zip(axes[0], names):
        rows = comparison["benchmarks"][name]["rows"]
        # Thinking tokens when every run has the split; runs sampled before it only have whole responses.
        split = all((row.get("thinking_tokens") or {}).get("mean") is not None for row in rows)
        for index, row in enumerate(rows):
            acc, tok = row["accuracy"], row["thinking_tokens"] if split else row["tokens"]
            x, y = tok["mean"], acc["mean"] * 100
            axis.errorbar(
                x,
                y,
                xerr=[[x - tok["ci95"][0]], [tok["ci95"][1] - x]],
                yerr=[[y - acc["ci95"][0] * 100], [acc["ci95"][1] * 100 - y]],
                fmt="o",
                capsize=3,
                color=colours[index % len(colours)],
                label=row["label"],
            )
        axis.set_title(name)
        axis.set_xlabel("mean thinking tokens" if split else "mean response tokens")
        axis.set_ylabel("accuracy (%)")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.suptitle("accuracy vs thinking tokens (95% bootstrap CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def html(comparison: dict, png: Path) -> str:
    from jinja2 import Environment, select_autoescape

    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    image = base64.b64encode(png.read_bytes()).decode() if png.exists() else None
    return template.render(
        comparison=comparison,
        tables_columns=TABLES,
        notes=NOTES,
        image=image,
        warnings=contamination_warnings(comparison),
        tables={name: table_rows(b) for name, b in comparison["benchmarks"].items()},
    )


def write_report(comparison: dict, out: Path) -> dict[str, Path]:
    from drp.outputs import check_output

    check_output(out, "compare")
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "comparison.json",
        "markdown": out / "report.md",
        "png": out / PLOT,
        "html": out / "report.html",
    }
    paths["json"].write_text(json.dumps(comparison, indent=2) + "\n")
    paths["markdown"].write_text(markdown(comparison))
    plot(comparison, paths["png"])
    paths["html"].write_text(html(comparison, paths["png"]))
    return paths
