"""`paper`: how the DRP paper measured (lm-eval 0.4.5 on vLLM, greedy). GSM8K is lm-eval's `gsm8k_cot_zeroshot`,
a raw completion (`/v1/completions`, no chat template, no BOS: `add_special_tokens` false, as lm-eval sends it) of
`Q: {question}\\nA: Let's think step by step.`, stopped at the next `Q:` and at lm-eval's end markers (`</s>`,
`<|im_end|>`, the model's EOS), capped at 40,000 tokens, and scored three ways side by side: lm-eval's strict filter
(`The answer is N.`), its flexible filter (the last number), and math-verify; `--score` names the headline.
The other benchmarks are an ASSUMPTION: the paper's lm-eval task files for MATH-500 / AIME24 / AMC23 are not
published (the task names in its scripts do not exist in lm-eval 0.4.5), so drp sends lm-eval's zero-shot MATH
layout `Problem: {problem}\\nAnswer:`, stopped at the next `Problem:` and the same end markers, capped at 130,000
tokens, and scores them by math-verify only (lm-eval's GSM8K filters are not applied to them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from drp.errors import UserError
from drp.evals.protocols.registry import Plan, Protocol, ProtocolError, Request, register

if TYPE_CHECKING:  # `drp eval --help` lists the protocols: nothing more is imported for that
    from drp.evals.problems import Benchmark

# ---------------------------------------------------------------- the paper's requests and caps

GSM8K_COT_ZEROSHOT = "Q: {question}\nA: Let's think step by step."
MATH_ZEROSHOT = "Problem: {question}\nAnswer:"
PAPER_GSM8K_CAP = 40_000
PAPER_OTHER_CAP = 130_000
# Greedy, as in the paper's lm-eval runs (temperature 0, top_p 1, one sample per problem).
PAPER_TEMPERATURE, PAPER_TOP_P = 0.0, 1.0


def is_gsm8k(benchmark: str) -> bool:
    """gsm8k, gsm8k:train, openai/gsm8k... (a problems file is GSM8K-style only when named so)."""
    base = benchmark.partition(":")[0].lower()
    return base.rsplit("/", 1)[-1] == "gsm8k"


# lm-eval 0.4.5 stops every generation at these too, besides the task's own `until` (and the tokenizer's EOS).
LM_EVAL_END_MARKERS = ("</s>", "<|im_end|>")
# The MATH-500 / AIME24 / AMC23 prompts are our assumption (see above): said in every metrics.json they score.
ASSUMED_PROMPT_NOTE = (
    "assumed prompt: the paper's lm-eval task files for this benchmark are unpublished; drp sends "
    "lm-eval's zero-shot MATH layout 'Problem: ...\\nAnswer:' and scores by math-verify only "
    "(lm-eval's GSM8K filters do not apply)"
)


def paper_stops(own: str, eos: str | None = None) -> tuple[str, ...]:
    """The task's own stop string, lm-eval's end markers and the model's EOS, each once, in that order."""
    return tuple(dict.fromkeys(s for s in (own, *LM_EVAL_END_MARKERS, eos) if s))


def paper_request(benchmark: str, question: str, eos: str | None = None) -> Request:
    # Plain replacement, not str.format: problems are full of LaTeX braces.
    if is_gsm8k(benchmark):
        return Request(prompt=GSM8K_COT_ZEROSHOT.replace("{question}", question), stop=paper_stops("Q:", eos))
    return Request(prompt=MATH_ZEROSHOT.replace("{question}", question), stop=paper_stops("Problem:", eos))


def paper_cap(benchmark: str) -> int:
    return PAPER_GSM8K_CAP if is_gsm8k(benchmark) else PAPER_OTHER_CAP


# ---------------------------------------------------------------- the headline score under `paper`

SCORES = ("strict", "flexible", "math-verify")
# The paper reports one accuracy per model from lm-eval's gsm8k_cot_zeroshot, which computes both filters, without
# saying which. Its unpruned baseline (R1-Distill-Qwen-7B, 91.7%) closes with a boxed answer, not "The answer is
# N.", so only the flexible filter (the last number) can give it that score; the same filter must then score the
# pruned students beside it. Hence flexible by default; strict is what the pruned path's closing line targets.
DEFAULT_SCORE = "flexible"


def headline_correct(record: dict, score: str) -> bool:
    """A paper-protocol sample's verdict under `score`; math-verify's where lm-eval's filters were not applied
    (the non-GSM8K benchmarks)."""
    if score != "math-verify" and f"{score}_correct" in record:
        return bool(record[f"{score}_correct"])
    return bool(record.get("math_verify_correct", record.get("correct")))


def check_score(name: str) -> str:
    if name not in SCORES:
        raise ProtocolError(f"unknown score {name!r}; choose one of {', '.join(SCORES)}")
    return name


# ---------------------------------------------------------------- the requests of one eval


def paper_requests(
    benchmarks: list[Benchmark],
    override: int | None,
    context: int | None,
    count_tokens: Callable[[str], int],
    echo: Callable[[str], None],
    eos: str | None = None,
) -> dict[str, dict[str, Request]]:
    """Benchmark → problem id → request with its cap: the paper's (or the user's), clipped to what the served
    model's context leaves after the prompt, with one warning per benchmark (vLLM refuses a request whose
    prompt plus max_tokens exceed the model's context)."""
    requests: dict[str, dict[str, Request]] = {}
    for benchmark in benchmarks:
        wanted = override or paper_cap(benchmark.name)
        per_problem, clipped = {}, []
        for problem in benchmark.problems:
            request = paper_request(benchmark.name, problem.question, eos)
            cap = wanted
            if context is not None:
                room = context - count_tokens(request.prompt)
                if room < wanted:
                    cap = max(1, room)
                    clipped.append(cap)
            per_problem[problem.id] = replace(request, max_tokens=cap)
        if clipped:
            echo(
                f"warning: {benchmark.name}: a cap of {wanted} tokens does not fit the served model's context of "
                f"{context} tokens; clipped to the context left after each prompt ({min(clipped)}–{max(clipped)} "
                f"tokens) for {len(clipped)} of {len(benchmark.problems)} problems"
            )
        requests[benchmark.name] = per_problem
    return requests


@register
class PaperProtocol(Protocol):
    name = "paper"
    summary = (
        "as the DRP paper measured (lm-eval's zero-shot prompts as raw /v1/completions, greedy, GSM8K cut at 'Q:', "
        "caps 40,000 (GSM8K) / 130,000 tokens, or --max-tokens; clipped to the model's context), scored strictly, "
        "flexibly and by math-verify."
    )

    def template(self, prompt_template):
        return "paper", None  # the paper's prompts replace the student family's template

    def options(self, common, seeds, given):
        """The paper's decoding: greedy, one sample per problem, its own caps unless --max-tokens is given."""
        decoding = common["decoding"]
        if (given("temperature") and decoding.temperature != PAPER_TEMPERATURE) or (
            given("top_p") and decoding.top_p != PAPER_TOP_P
        ):
            raise UserError(
                "--protocol paper decodes greedily (temperature 0, top-p 1); leave out --temperature "
                "and --top-p, or use --protocol default"
            )
        if given("prompt_template"):
            raise UserError(
                "--prompt-template does not apply under --protocol paper, which sends lm-eval's own prompts"
            )
        cap = decoding.max_tokens if given("max_tokens") else None
        common = {**common, "decoding": replace(decoding, temperature=PAPER_TEMPERATURE, top_p=PAPER_TOP_P)}
        return common, seeds if given("seeds") else 1, cap

    def settings_record(self, settings):
        return {"score": check_score(settings.score)}

    def decoding_record(self, settings):
        decoding = settings.decoding.public()
        if settings.paper_max_tokens is None:
            decoding["max_tokens"] = None  # the paper's cap per benchmark, in config.json's paper_caps
        return decoding

    def plan(self, benchmarks, template, settings, endpoint, counter, echo) -> Plan:
        endpoint.probe_completions()
        requests = paper_requests(
            benchmarks, settings.paper_max_tokens, endpoint.context_length(), counter.count, echo, eos=counter.eos_token
        )
        caps = {name: max(r.max_tokens for r in per.values()) for name, per in requests.items()}
        return Plan(requests, caps, {"paper_caps": caps})

    def scores(self, text, problem, verdict, config):
        # every score side by side; `correct` is the headline (--score). lm-eval's two filters are GSM8K's own
        # and are not applied to the other benchmarks.
        from drp.evals.protocols.lm_eval_filters import lm_eval_scores

        scores = {"math_verify_correct": verdict.correct}
        if is_gsm8k(problem.benchmark):
            lm_eval = lm_eval_scores(text, problem.gold)
            scores.update(
                strict_answer=lm_eval.strict,
                strict_correct=lm_eval.strict_correct,
                flexible_answer=lm_eval.flexible,
                flexible_correct=lm_eval.flexible_correct,
            )
        scores["correct"] = headline_correct(scores, config["score"])
        return scores

    def with_headline(self, record, config):
        score = config.get("score")
        if score and not record.get("error") and "math_verify_correct" in record:
            record["correct"] = headline_correct(record, score)
        return record

    def metrics_notes(self, benchmark, config):
        """Which score `accuracy` is, and, off GSM8K, that the prompt is an assumption."""
        if is_gsm8k(benchmark):
            return {"score": config.get("score", DEFAULT_SCORE)}
        return {"score": "math-verify", "prompt_note": ASSUMED_PROMPT_NOTE}
