"""The dataset card (README.md) and the machine-readable manifest of an export."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime

from drp.export.sources import TOKEN_KEYS, AcceptedRun, token_column
from drp.layout import sft_completion


def token_stats(records: list[dict]) -> dict[str, dict]:
    """Mean / median / total per token column, over the records that have a count."""
    stats = {}
    for key in TOKEN_KEYS:
        values = [r[token_column(key)] for r in records]
        values = [v for v in values if v is not None]
        if values:
            stats[key] = {
                "n": len(values),
                "mean": round(statistics.fmean(values), 1),
                "median": statistics.median(values),
                "total": sum(values),
            }
    for part in ("thinking", "response"):
        before, after = stats.get(f"{part}_before"), stats.get(f"{part}_after")
        if before and after and before["total"]:
            stats[f"{part}_reduction"] = round(1 - after["total"] / before["total"], 4)
    return stats


def manifest(
    sources: list[AcceptedRun],
    records: list[dict],
    per_run_kept: dict[str, int],
    options: dict,
) -> dict:
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "format": "sft",
        "examples": len(records),
        "options": options,
        "runs": [
            {
                "run": s.name,
                "path": s.path,
                "policy": s.policy,
                "prompt_hashes": s.prompt_hashes,
                "input": s.input,
                "teacher_model": s.teacher_model,
                "tokenizer": s.tokenizer,
                "status_counts": s.status_counts,
                "accepted": len(s.traces),
                "exported": per_run_kept.get(s.name, 0),
            }
            for s in sources
        ],
        "tokens": token_stats(records),
    }


def render_card(info: dict, questions: list[str] | None = None) -> str:
    """Markdown card; its YAML header lets `load_dataset(DIR)` read the JSONL splits too."""
    splits = info.get("splits") or {"train": info["examples"]}
    lines = [
        "---",
        "pretty_name: DRP pruned reasoning traces (SFT)",
        "tags: [reasoning, chain-of-thought, distillation, drp, sft]",
        "configs:",
        "- config_name: default",
        "  data_files:",
        *[line for name in splits for line in (f"  - split: {name}", f"    path: {name}.jsonl")],
        "---",
        "",
        "# DRP pruned reasoning traces",
        "",
        "Accepted traces of Distilled Reasoning Pruning runs, as a prompt–completion chat dataset for a student. "
        "Written by `drp export` on " + info["created_at"] + ".",
        "",
        "- Load: `datasets.load_from_disk(DIR)` (split `train`), or `train.jsonl` (one example a line).",
        "- Train: `drp distill --recipe RECIPE --dataset_name DIR`. The completion is rendered as a string "
        "after the chat-template prompt, so the `<think>` content is trained on (R1-style chat templates drop it "
        "from conversational assistant turns).",
        "",
        "## Format",
        "",
        "- `prompt`: chat messages (optional system, then user: question + instruction).",
        f"- `completion`: one assistant message, `{_escaped(sft_completion('{pruned thinking}', '{answer}'))}`.",
        "- Also: `id`, `run`, `trace_id`, `question`, `thinking`, `answer_section`, `answer`, `gold_answer`, "
        "`answer_style`, token counts before/after pruning.",
        "",
        "Export options:",
        "",
        *[f"- {key}: `{value}`" for key, value in info["options"].items()],
        "",
        "## Source runs",
        "",
        "| run | policy | prompt hashes | statuses | exported |",
        "|---|---|---|---|---|",
    ]
    for run in info["runs"]:
        hashes = ", ".join(f"{agent}: `{digest}`" for agent, digest in sorted(run["prompt_hashes"].items())) or "–"
        statuses = ", ".join(f"{count} {status}" for status, count in sorted(run["status_counts"].items()))
        lines.append(f"| {run['run']} | {run['policy'] or '–'} | {hashes} | {statuses} | {run['exported']} |")
    lines += [
        "",
        f"Examples in total: **{info['examples']}**"
        + (
            f" ({splits['train']} train, {splits['validation']} validation, held out by question)."
            if "validation" in splits
            else "."
        ),
        "",
    ]
    lines += _hygiene(info, questions or [])
    lines += ["## Tokens (before → after pruning)", ""]
    tokens = info["tokens"]
    if not any(key in tokens for key in ("thinking_before", "response_before")):
        lines.append("No token counts were recorded by the source runs.")
    else:
        lines += [
            "| part | mean before | mean after | median before | median after | total before | total after "
            "| reduction |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for part in ("thinking", "response"):
            before, after = tokens.get(f"{part}_before"), tokens.get(f"{part}_after")
            if before and after:
                # from the totals, not the rounded figure: 0.66354 rounded twice would show 66.3%
                shown = f"{1 - after['total'] / before['total']:.1%}" if before["total"] else "–"
                lines.append(
                    f"| {part} | {before['mean']} | {after['mean']} | {before['median']} | {after['median']} "
                    f"| {before['total']} | {after['total']} | {shown} |"
                )
    return "\n".join(lines) + "\n"


def _escaped(text: str) -> str:
    return text.replace("\n", "\\n")


def _hygiene(info: dict, questions: list[str]) -> list[str]:
    """What was left out for contamination, and the fingerprint of every training question."""
    lines = ["## Training questions and contamination", ""]
    excluded = info.get("excluded") or {}
    per_benchmark = excluded.get("per_benchmark") or {}
    if per_benchmark:
        left_out = ", ".join(f"{name}: {count}" for name, count in per_benchmark.items())
        lines.append(
            f"Examples left out because their question is in an evaluation benchmark: "
            f"**{excluded['examples']}** ({left_out})."
        )
    else:
        lines.append("No benchmark was excluded (`drp export --exclude-benchmarks gsm8k,math500,...` does that).")
    sidecar = (info.get("train_questions") or {}).get("file", "train_questions.txt")
    lines += [
        "",
        f"The {len(questions)} distinct training questions are listed below (and in `{sidecar}`) as the first 16 "
        "hex digits of the SHA-256 of the normalised question (NFKC, lower case, whitespace collapsed). "
        "`drp distill` keeps the list with the model, and `drp eval` counts the evaluated problems in it.",
        "",
        "<details><summary>training-question fingerprints</summary>",
        "",
        "```",
        *questions,
        "```",
        "",
        "</details>",
        "",
    ]
    return lines
