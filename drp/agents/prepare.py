"""First node: split the response, find the original answer, check it against gold, cut the units.
Traces that cannot be pruned honestly end here, before any teacher call is spent on them."""

from __future__ import annotations

from drp.agents import rules
from drp.agents.calls import deterministic
from drp.agents.state import TraceState
from drp.agents.verifier import reaches_answer
from drp.answers import equivalent, extract_answer
from drp.layout import answer_line, short_answer, split_response
from drp.outcomes import EMPTY_THINKING, INCOMPLETE_TRACE, NO_FINAL_ANSWER, REJECTED, TOO_LONG, WRONG_ORIGINAL, reason
from drp.run_context import RunContext
from drp.text import paragraphs, unit_layout


def prepare(state: TraceState, ctx: RunContext) -> dict:
    policy, trace = ctx.policy, state["trace"]
    size = len(trace["question"] or "") + len(trace["response"] or "")
    if ctx.max_record_chars is not None and size > ctx.max_record_chars:
        return _too_long(trace, size, ctx)
    split = split_response(trace["response"])
    update: dict = {"thinking": split.thinking, "answer_section": split.answer_section, "attempt": 0}
    answer = extract_answer(split.answer_section) or extract_answer("\n\n".join(paragraphs(split.thinking)[-1:]))
    units, joins = unit_layout(split.thinking, policy.units.max_chars, policy.units.longest)
    gold = trace.get("gold_answer")
    verdict = {"complete": split.complete, "original_answer": answer, "gold_answer": gold, "units": len(units)}
    original_correct = None if answer is None or gold in (None, "") else equivalent(str(gold), answer)
    if original_correct is not None:  # recorded always; it rejects the trace only under verify.check_gold
        verdict["original_correct"] = update["original_correct"] = original_correct

    if not split.complete:
        update.update(status=REJECTED, reason=reason(INCOMPLETE_TRACE, "the thinking never closes (no </think>)"))
    elif not split.thinking:
        update.update(status=REJECTED, reason=reason(EMPTY_THINKING, "nothing between <think> and </think>"))
    elif answer is None:
        update.update(status=REJECTED, reason=reason(NO_FINAL_ANSWER, "no answer found in the response"))
    elif policy.verify.check_gold and original_correct is False:
        update.update(status=REJECTED, reason=reason(WRONG_ORIGINAL, f"the trace answers {answer}, gold is {gold}"))
    elif policy.uses_llm and len(units) > policy.units.max_units:
        update.update(
            status=REJECTED,
            reason=reason(TOO_LONG, f"{len(units)} units exceed the policy's max_units {policy.units.max_units}"),
        )
    update["original_answer"] = answer
    update["units"] = units
    update["unit_joins"] = joins
    if answer is not None:
        # `short`: the boxed answer alone when the thinking derives it; otherwise the derivation lives in the
        # answer section and stays, minus lines that only restate the question.
        thinking_reaches = reaches_answer(split.thinking, answer)[0]
        if policy.answer_section == "keep":
            update["pruned_answer_section"] = split.answer_section
        elif policy.answer_section == "answer_line":
            update["pruned_answer_section"] = answer_line(answer)
        elif policy.answer_section == "from_path":
            update["pruned_answer_section"] = ""  # the pruner's path brings its own closing sentence
        elif thinking_reaches:
            update["pruned_answer_section"] = short_answer(answer)
        else:
            update["pruned_answer_section"] = rules.shorten_answer_section(split.answer_section, trace["question"])
        verdict["thinking_reaches_answer"] = update["thinking_reaches_answer"] = thinking_reaches
        update["response_tokens_before"] = ctx.counter.count(trace["response"])
    verdict["status"] = update.get("status")
    verdict["reason"] = update.get("reason")
    update["calls"] = [deterministic("prepare", 0, ctx, {"trace_id": trace["id"]}, verdict)]
    return update


def _too_long(trace: dict, size: int, ctx: RunContext) -> dict:
    """A record above the size cap ends here, unsplit and untokenized: a runaway input costs nothing."""
    why = reason(
        TOO_LONG,
        f"the record holds {size:,} characters (question and response), above the cap of "
        f"{ctx.max_record_chars:,} (--max-record-chars)",
    )
    verdict = {"characters": size, "max_record_chars": ctx.max_record_chars, "status": REJECTED, "reason": why}
    return {
        "status": REJECTED,
        "reason": why,
        "attempt": 0,
        "response_tokens_before": None,
        "calls": [deterministic("prepare", 0, ctx, {"trace_id": trace["id"]}, verdict)],
    }
