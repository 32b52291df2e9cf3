"""After the last retry: reject the trace, or (policy `fallback: rules`) try the rule-based pruning once,
verified like any other attempt."""

from __future__ import annotations

from drp.agents import rules, verifier
from drp.agents.pruner import apply_plan
from drp.agents.state import TraceState
from drp.outcomes import ACCEPTED, FALLBACK_RULES, REJECTED, VERIFICATION_FAILED, reason
from drp.run_context import RunContext
from drp.teacher import TeacherError


async def fallback(state: TraceState, ctx: RunContext) -> dict:
    failures = "; ".join(state["verdict"]["failures"])
    attempts = f"after {state['attempt']} attempts: {failures}"
    rejected = {"status": REJECTED, "reason": reason(VERIFICATION_FAILED, attempts)}
    if ctx.policy.fallback != "rules":
        return rejected
    steps = rules.label_steps(rules.unit_steps(state["units"], state.get("unit_joins")))
    actions = rules.plan(steps, state["original_answer"], ctx.policy.rules, state["trace"]["question"])
    annotated, thinking = apply_plan(steps, actions)
    trial = {**state, "steps": annotated, "pruned_thinking": thinking, "attempt": state["attempt"] + 1}
    try:
        result = await verifier.verify(trial, ctx)  # the optional LLM judge may call the teacher
    except TeacherError as exc:
        if exc.unreachable:  # not the trace's fault: the graph leaves it for a later session
            raise
        return {**rejected, "calls": getattr(exc, "calls", [])}
    if result.get("status") != ACCEPTED:
        return {**rejected, "calls": result["calls"], "verdict": result["verdict"]}
    return {
        **result,
        "reason": reason(FALLBACK_RULES),
        "steps": annotated,
        "pruned_thinking": thinking,
        "attempt": trial["attempt"],
    }
