"""Long reasoning traces for the windowing tests, built at test time (never stored in the repository).

The shared traces are short GSM8K ones (about 680 thinking tokens), and the hidden checks use real MATH traces of
5–16k tokens, so long traces are made by joining real text into one problem with sub-problems:

- `joined_gsm8k`: real R1-Distill-Qwen-1.5B traces of GSM8K problems (../shared/data/traces), each complete and
  correct, their thinking concatenated as "Problem i." sections of one question that asks for the sum of the
  answers; the thinking ends by adding the sub-answers up (boxed), the answer section states the sum.
- `joined_math`: the same with MATH-500 reference solutions (../shared/data/math500: real, LaTeX-heavy text with
  \\frac, \\sqrt, aligned equations and [asy] blocks) as the sub-problems' reasoning, integer answers only.
- `synthetic_latex`: generated here, for machines without ../shared: LaTeX-heavy sub-problems with the hesitation,
  re-checking and second methods real traces have, so pruning has something to remove.
- `one_display_block`: generated here: a sum whose terms are tabulated in one aligned display block, a single
  paragraph with no sentence end, longer than a small teacher's whole context.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from drp.answers import equivalent, extract_answer
from drp.layout import split_response


def _joined(parts: list[tuple[str, str, int]], trace_id: str) -> dict:
    """(question, thinking, integer answer) per sub-problem → one trace record."""
    total = sum(answer for _, _, answer in parts)
    question = f"Solve each of the following {len(parts)} problems, then add up their answers.\n\n" + "\n\n".join(
        f"Problem {n}: {q.strip()}" for n, (q, _, _) in enumerate(parts, start=1)
    )
    sums = " + ".join(str(answer) for _, _, answer in parts)
    thinking = "\n\n".join(f"Problem {n}.\n\n{t.strip()}" for n, (_, t, _) in enumerate(parts, start=1))
    thinking += f"\n\nNow I add up the answers: {sums} = {total}. So the answer is \\boxed{{{total}}}."
    response = f"{thinking}\n</think>\n\nThe answers add up to $\\boxed{{{total}}}$."
    return {"id": trace_id, "question": question, "response": response, "gold_answer": str(total)}


def _until(candidates, counter, tokens: int) -> list[tuple[str, str, int]]:
    parts, used = [], 0
    for part in candidates:
        if used >= tokens:
            break
        parts.append(part)
        used += counter.count(part[1])
    return parts


def joined_gsm8k(shared: Path, counter, tokens: int = 16_500) -> dict:
    rows = [json.loads(line) for line in (shared / "data" / "traces" / "r1-distill-qwen-1.5b.e2h-gsm8k.jsonl").open()]
    candidates = []
    for row in rows:
        split = split_response(row["response"])
        answer = extract_answer(split.answer_section)
        if (
            split.complete
            and answer
            and str(row["gold_answer"]).isdigit()
            and equivalent(str(row["gold_answer"]), answer)
        ):
            candidates.append((row["question"], split.thinking, int(row["gold_answer"])))
    return _joined(_until(candidates, counter, tokens), "long-gsm8k")


def joined_math(shared: Path, counter, tokens: int = 9_000) -> dict:
    rows = [json.loads(line) for line in (shared / "data" / "math500" / "test.jsonl").open()]
    candidates = [
        (row["problem"], row["solution"], int(row["answer"]))
        for row in rows
        if row["answer"].isdigit() and len(row["answer"]) < 6
    ]
    return _joined(_until(candidates, counter, tokens), "long-math")


def synthetic_latex(counter, tokens: int = 16_500, seed: int = 7) -> dict:
    rng = random.Random(seed)
    parts = []
    while sum(counter.count(t) for _, t, _ in parts) < tokens:
        a, b, c = rng.randint(2, 9), rng.randint(11, 40), rng.randint(3, 12)
        total, area = a * b + c, (a * b) ** 2
        question = f"A rectangle has sides ${a}$ and ${b}$. What is its area plus ${c}$?"
        thinking = "\n\n".join(
            [
                f"Okay, so I need to find the area of a rectangle with sides ${a}$ and ${b}$, and then add ${c}$.",
                f"The area is $A = {a} \\times {b} = {a * b}$, since for a rectangle $A = \\ell \\cdot w$ with "
                f"$\\ell = {a}$ and $w = {b}$.",
                f"Wait, let me double-check that: $\\frac{{{a * b}}}{{{a}}} = {b}$, and $\\sqrt{{{area}}} = {a * b}$, "
                f"so $A = {a * b}$ is right.",
                "Hmm, maybe I should make sure the sides are not a diagonal: the problem says sides, so "
                "$\\ell \\neq \\sqrt{\\ell^2 + w^2}$ does not matter here.",
                f"Adding ${c}$ gives $A + {c} = {a * b} + {c} = {total}$.",
                f"Alternatively, I could write it as $\\left({a} \\cdot {b}\\right) + {c} = "
                f"\\sum_{{k=1}}^{{{a}}} {b} + {c} "
                f"= {total}$, which matches.",
                f"So the answer to this one is ${total}$.",
            ]
        )
        parts.append((question, thinking, total))
    return _joined(parts, "long-synthetic")


def one_display_block(counter, tokens: int = 9_000, seed: int = 11) -> tuple[dict, str]:
    """(trace, its display block)."""
    rng = random.Random(seed)
    lines, terms, used = [], [], 0
    while used < tokens:
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        lines.append(f"t_{{{len(lines) + 1}}} &= {a} \\cdot {b} = {a * b} \\\\")
        terms.append(a * b)
        used += counter.count(lines[-1]) + 1
    total = sum(terms)
    block = "\\[\n\\begin{aligned}\n" + "\n".join(lines) + "\n\\end{aligned}\n\\]"
    thinking = (
        f"Okay, so I need to add up the {len(terms)} products listed in the problem.\n\n"
        f"Let me tabulate every term first:\n{block}\n\n"
        "Hmm, wait, is the table complete? Yes, every product is in it once.\n\n"
        f"Adding all the terms gives {total}. So the answer is \\boxed{{{total}}}."
    )
    response = f"{thinking}\n</think>\n\nThe sum is $\\boxed{{{total}}}$."
    question = f"Find the sum of the {len(terms)} products $t_k$ listed in the table."
    return {"id": "long-block", "question": question, "response": response, "gold_answer": str(total)}, block
