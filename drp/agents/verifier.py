"""Verifier: checks that the pruned reasoning is still the same solution.

Deterministic checks (CHECKS: named functions, each registered under the name of the policy's `verify:` setting
that gates it), every one computed and recorded for every trace (a measurement); the policy's `verify` settings
say which of them gate acceptance:
1. same_answer: it reaches the original final answer (math-verify equivalence) and commits to no other;
2. derivation: it still carries the computation that yields the answer (drp/derivation.py): every operand of
   the computation whose result is the answer is followed back to the question's numbers, so a bare assertion
   ("the result is $168"), an answer written only as an operand ("$1 less"), or a path that lost the step
   computing an operand (28 in "28 / 2 = 14") fails, and the feedback names the missing link;
3. no_new_numbers: it introduces no number that is in neither the question nor the original response;
4. shorter: the pruned response (thinking + answer section) is shorter, in the run's tokenizer;
5. actions_agree (policies whose pruner writes its own path): KEEP steps are in it, DELETE steps are not.
(The original answer is checked against gold before any teacher call: see agents/prepare.py.)
Then, optionally, an LLM judge (agent `judge`, off by default) reads the pruned reasoning; its verdict is a
recorded call like any other.
A pruning that changed nothing (every step kept, not shorter) ends as `nothing_to_prune`, not as a failure.
A failure produces a concrete feedback message for the pruner's next attempt. When the pruner worked in windows
(long traces), the verdict also says which windows broke and what to tell each, so that the retry prunes those
again and keeps the rest."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from drp.agent_kinds import agent_for, implements, writes_own_path
from drp.agents.asking import ask
from drp.agents.calls import deterministic
from drp.agents.state import TraceState
from drp.answers import equivalent, extract_answer, last_boxed, numbers_in
from drp.derivation import Derivation, check, own_derivation
from drp.echo import action_agreement
from drp.layout import join_response
from drp.outcomes import ACCEPTED, NOTHING_TO_PRUNE, RECORDED, REJECTED, VERIFIED, reason
from drp.registry import Registry
from drp.run_context import RunContext
from drp.schemas import JudgeVerdict
from drp.text import paragraphs

_ANSWER_LINE = re.compile(r"\bthe (?:final )?answer is\b", re.I)


def reaches_answer(pruned_thinking: str, answer: str) -> tuple[bool, str | None]:
    """(reaches the answer, the answer it commits to when that differs)."""
    committed = last_boxed(pruned_thinking)
    if committed is not None and not equivalent(answer, committed):
        return False, committed
    tail = "\n\n".join(paragraphs(pruned_thinking)[-2:])
    if committed is not None or any(equivalent(answer, number) for number in sorted(numbers_in(tail))):
        return True, None
    stated = extract_answer(tail)
    return equivalent(answer, stated), stated


def derivation_of(
    pruned_thinking: str,
    pruned_answer_section: str,
    answer: str,
    question: str,
    original_thinking: str,
    original_answer_section: str = "",
) -> tuple[Derivation, list[str]] | None:
    """The derivation check of a pruned trace against its original: the pruned text's derivation and the
    numbers of the original's computation it no longer writes. None when the original's own derivation
    cannot be read (then there is nothing to hold the pruned text to). When the original thinking stops
    short of the answer, the answer sections count too."""
    if reaches_answer(original_thinking, answer)[0]:
        pruned, original = pruned_thinking, original_thinking
    else:
        pruned = f"{pruned_thinking}\n\n{pruned_answer_section}"
        original = f"{original_thinking}\n\n{original_answer_section}"
    source = own_derivation(original, answer, question)
    if not source.answer_derived:
        return None
    return check(pruned, answer, question, original), source.lost_in(pruned)


@dataclass(frozen=True)
class Pruning:
    """What the checks read: the trace's state, the pruned response, and the measures more than one check (or
    the verdict) needs."""

    state: TraceState
    ctx: RunContext
    thinking: str  # the pruned thinking
    answer_section: str  # the pruned answer section
    answer: str  # the original's final answer
    allowed: set[str]  # the numbers of the question and of the original response
    before: int  # tokens of the original response
    after: int  # tokens of the pruned response


# A check: (the value recorded under its name, the feedback when it fails, else None); None: not recorded.
Check = Callable[[Pruning], "tuple[object, str | None] | None"]

# The deterministic checks, in the order they are recorded (and their feedback given), each named like the
# policy's `verify:` setting that gates it; a check with no such setting is recorded only (a measurement),
# except those registered with `always_gates`.
CHECKS: Registry[Check] = Registry("verifier check", owner=__name__)


@CHECKS.register("same_answer")
def _same_answer(p: Pruning) -> tuple[object, str | None]:
    # When the original thinking stops short of the answer (it is derived after </think>), the pruned
    # response as a whole must reach it; otherwise the pruned thinking must.
    if p.ctx.policy.answer_section == "from_path":  # the path's closing sentence moved to the answer section
        reached, other = reaches_answer(f"{p.thinking}\n\n{p.answer_section}".strip(), p.answer)
    elif p.state.get("thinking_reaches_answer", True):
        reached, other = reaches_answer(p.thinking, p.answer)
    else:
        reached, other = reaches_answer(f"{p.thinking}\n\n{p.answer_section}", p.answer)
    if reached:
        return True, None
    seen = f" (it ends at {other})" if other else ""
    return False, (
        f"The pruned reasoning no longer reaches the final answer {p.answer}{seen}. Keep the steps that compute it."
    )


@CHECKS.register("derivation")
def _derivation(p: Pruning) -> tuple[object, str | None]:
    state = p.state
    found = derivation_of(
        p.thinking,
        p.answer_section,
        p.answer,
        state["trace"]["question"],
        state.get("thinking", ""),
        state.get("answer_section", ""),
    )
    if found is None:
        return None, None
    derivation, lost = found
    if derivation.answer_derived:
        return True, None
    missing = f"; it no longer writes {', '.join(lost[:4])}" if lost else ""
    return False, (
        f"The pruned reasoning no longer carries the computation of the answer {p.answer}: "
        f"{derivation.explain(p.answer)}{missing}."
    )


@CHECKS.register("no_new_numbers")
def _no_new_numbers(p: Pruning) -> tuple[object, str | None]:
    new = sorted(numbers_in(p.thinking) - p.allowed)
    return not new, _new_numbers_message(new) if new else None


@CHECKS.register("shorter")
def _shorter(p: Pruning) -> tuple[object, str | None]:
    # "Shorter" is judged on the whole response the student will learn, thinking plus answer section.
    if p.after < p.before:
        return True, None
    return False, f"The pruned response is not shorter ({p.after} tokens vs {p.before}). Delete or compress more."


@CHECKS.register("actions_agree")
def _actions_agree(p: Pruning) -> tuple[object, str | None] | None:
    if not writes_own_path(p.ctx.policy.agents["pruner"].kind):
        return None  # a path built from the actions agrees with them by construction
    steps = p.state["steps"]
    problems = action_agreement([s["text"] for s in steps], [s.get("action") for s in steps], p.thinking)
    if not problems:
        return True, None
    return False, (
        "Your actions and your pruned reasoning disagree: "
        + "; ".join(problems[:4])
        + ". Write the pruned reasoning that your actions describe."
    )


@CHECKS.register("answer_line")
def _answer_line(p: Pruning) -> tuple[object, str | None]:
    if p.ctx.policy.answer_section == "from_path":
        closing = p.answer_section
    else:
        closing = paragraphs(p.thinking)[-1] if p.thinking.strip() else ""
    return bool(_ANSWER_LINE.search(closing)), None


@CHECKS.register("actions_complete")
def _actions_complete(p: Pruning) -> tuple[object, str | None] | None:
    gaps = p.state.get("reply_gaps")
    if gaps is None:
        return None
    if not gaps["steps_without_action"] and not gaps["unknown_actions"]:
        return True, None
    return False, (
        f"Give every step one of the four actions (steps without one: {gaps['steps_without_action'][:8]}; "
        f"unknown: {gaps['unknown_actions'][:4]})."
    )


@CHECKS.register("original_correct")
def _original_correct(p: Pruning) -> tuple[object, str | None] | None:
    correct = p.state.get("original_correct")
    return None if correct is None else (correct, None)


@CHECKS.register("not_empty", always_gates=True)
def _not_empty(p: Pruning) -> tuple[object, str | None] | None:
    return None if p.thinking.strip() else (False, "The pruned reasoning is empty.")


@CHECKS.register("echo_coverage")
def _echo_coverage(p: Pruning) -> tuple[object, str | None] | None:
    coverage = p.state.get("echo_coverage")
    return None if coverage is None else (round(coverage, 4), None)


def _gates(name: str, settings) -> bool:
    return bool(CHECKS.meta(name).get("always_gates")) or getattr(settings, name, False)


async def verify(state: TraceState, ctx: RunContext) -> dict:
    settings = ctx.policy.verify
    attempt = state.get("attempt", 1)
    trace, answer = state["trace"], state["original_answer"]
    pruned = state.get("pruned_thinking", "")
    answer_section = state.get("pruned_answer_section", "")
    before = state.get("response_tokens_before") or ctx.counter.count(trace["response"])
    after = ctx.counter.count(join_response(pruned, answer_section))
    allowed = numbers_in(trace["question"]) | numbers_in(trace["response"])
    pruning = Pruning(state, ctx, pruned, answer_section, answer, allowed, before, after)
    checks: dict[str, object] = {}
    failures: dict[str, str] = {}  # check → feedback, for every check that fails (gated or not)
    for name, run_check in CHECKS.items():
        result = run_check(pruning)
        if result is None:
            continue
        checks[name], failure = result
        if failure is not None:
            failures[name] = failure

    gated = {name: message for name, message in failures.items() if _gates(name, settings)}
    unchanged = _squash(pruned) == _squash(state.get("thinking", ""))
    calls: list[dict] = []
    if not gated and settings.judge:
        verdict, calls = await agent_for("judge", ctx.policy.agents["judge"].kind)(state, ctx, attempt, pruned, answer)
        checks["judge"] = verdict.derives_answer if verdict else None
        if verdict is None or not verdict.derives_answer:
            gated["judge"] = failures["judge"] = (
                f"A reviewer found that the pruned reasoning does not derive the answer: "
                f"{(verdict.problem if verdict else '') or 'no usable verdict'}. Keep the calculations it needs."
            )

    verdict = {
        "passed": not gated,
        "checks": checks,
        "gated": sorted(name for name, on in settings.model_dump().items() if on is True and name in checks),
        "failures": list(gated.values()),
        "measured_failures": sorted(set(failures) - set(gated)),
        "attempt": attempt,
        "response_tokens_before": before,
        "response_tokens_after": after,
        "feedback": " ".join(gated.values()) or None,
    }
    windows = state.get("prune_windows") or []
    if gated and len(windows) > 1:
        verdict["windows"] = window_feedback(state, windows, gated, allowed)
    call = deterministic("verifier", attempt, ctx, {"original_answer": answer}, verdict)
    update = {"verdict": verdict, "calls": [call, *calls]}
    if verdict["passed"]:
        # A policy that gates nothing (the paper's) accepts unverified: its checks are on record, not passed.
        why = reason(VERIFIED) if verdict["gated"] or settings.judge else reason(RECORDED, "no check gates this policy")
        update.update(status=ACCEPTED, reason=why, pruned_answer=answer)
    elif unchanged and set(gated) <= {"shorter"}:
        # The teacher kept every step: a legitimate outcome on short thinking, not a failed pruning.
        update.update(
            status=REJECTED,
            reason=reason(
                NOTHING_TO_PRUNE, f"the teacher kept all {len(state['steps'])} steps ({after} tokens vs {before})"
            ),
        )
    else:
        update["feedback"] = verdict["feedback"]
    return update


@implements("judge", "llm-judge")
async def _judge_by_teacher(state: TraceState, ctx: RunContext, attempt: int, pruned: str, answer: str):
    """The optional LLM judge: (its verdict, or None when its reply was unusable; its calls)."""
    verdict, calls, _ = await ask(
        ctx,
        "judge",
        attempt,
        JudgeVerdict,
        lambda r: None,
        max_tokens=160,
        question=state["trace"]["question"],
        pruned_reasoning=pruned,
        original_answer=answer,
    )
    return verdict, calls


def _squash(text: str) -> str:
    return " ".join((text or "").split())


def _new_numbers_message(new: list[str]) -> str:
    return (
        f"The pruned reasoning contains numbers that appear in neither the question nor the original: "
        f"{', '.join(new[:10])}. Use only numbers from the original steps."
    )


def window_feedback(state: TraceState, windows: list[dict], blame: dict[str, str], allowed: set[str]) -> list[dict]:
    """Which windows broke and what to tell each: new numbers where they appear, a lost answer where the
    original derives it, length and emptiness everywhere (a failure no window can be tied to: every window)."""
    messages: list[list[str]] = [[] for _ in windows]
    for name in ("same_answer", "derivation"):
        if name in blame:
            messages[_answer_window(state, windows)].append(blame[name])
    if "no_new_numbers" in blame:
        found = [sorted(numbers_in(window.get("thinking") or "") - allowed) for window in windows]
        for index, new in enumerate(found):
            if new:
                messages[index].append(_new_numbers_message(new))
        if not any(found):
            for window_messages in messages:
                window_messages.append(blame["no_new_numbers"])
    for name, message in blame.items():  # shorter, not_empty, the judge's, actions_agree: every window
        if name not in ("same_answer", "derivation", "no_new_numbers"):
            for window_messages in messages:
                window_messages.append(message)
    return [
        {"window": index, "steps": [window["first"], window["last"]], "feedback": " ".join(said)}
        for index, (window, said) in enumerate(zip(windows, messages))
        if said
    ]


def _answer_window(state: TraceState, windows: list[dict]) -> int:
    """The last window whose original steps state the final answer (where the original derives it)."""
    answer = state.get("original_answer") or ""
    steps = state.get("steps") or []
    for index in range(len(windows) - 1, -1, -1):
        window = windows[index]
        text = "\n\n".join(step.get("text") or "" for step in steps[window["first"] - 1 : window["last"]])
        if answer and (answer.replace(",", "") in numbers_in(text) or answer in text):
            return index
    return len(windows) - 1
