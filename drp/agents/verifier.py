"""Verifier: deterministic checks that the pruned reasoning is still the same solution.

1. it reaches the original final answer (math-verify equivalence) and commits to no other answer;
2. it introduces no number that is in neither the question nor the original response;
3. the pruned response (thinking + answer section) is shorter than the original, in the run's tokenizer.
(The original answer is checked against gold before any teacher call: see agents/prepare.py.)
A failure produces a concrete feedback message for the pruner's next attempt. When the pruner worked in windows
(long traces), the verdict also says which windows broke and what to tell each, so that the retry prunes those
again and keeps the rest."""

from __future__ import annotations

from drp.agents.calls import deterministic
from drp.agents.context import RunContext
from drp.agents.state import TraceState
from drp.answers import equivalent, extract_answer, last_boxed, numbers_in
from drp.layout import join_response
from drp.text import paragraphs


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


def verify(state: TraceState, ctx: RunContext) -> dict:
    settings = ctx.policy.verify
    attempt = state.get("attempt", 1)
    trace, answer = state["trace"], state["original_answer"]
    pruned = state.get("pruned_thinking", "")
    checks, failures = {}, []
    blame: dict[str, str] = {}  # check → its failure message (for the windows)

    if settings.same_answer:
        # When the original thinking stops short of the answer (it is derived after </think>), the pruned
        # response as a whole must reach it; otherwise the pruned thinking must.
        if state.get("thinking_reaches_answer", True):
            reached, other = reaches_answer(pruned, answer)
        else:
            reached, other = reaches_answer(f"{pruned}\n\n{state.get('pruned_answer_section', '')}", answer)
        checks["same_answer"] = reached
        if not reached:
            seen = f" (it ends at {other})" if other else ""
            failures.append(blame.setdefault(
                "same_answer",
                f"The pruned reasoning no longer reaches the final answer {answer}{seen}. Keep the steps that compute it."
            ))
    allowed: set[str] = set()
    if settings.no_new_numbers:
        allowed = numbers_in(trace["question"]) | numbers_in(trace["response"])
        new = sorted(numbers_in(pruned) - allowed)
        checks["no_new_numbers"] = not new
        if new:
            failures.append(blame.setdefault("no_new_numbers", _new_numbers_message(new)))
    # "Shorter" is judged on the whole response the student will learn, thinking plus answer section.
    before = state.get("response_tokens_before") or ctx.counter.count(trace["response"])
    after = ctx.counter.count(join_response(pruned, state.get("pruned_answer_section", "")))
    if settings.shorter:
        checks["shorter"] = after < before
        if after >= before:
            failures.append(blame.setdefault(
                "shorter", f"The pruned response is not shorter ({after} tokens vs {before}). Delete or compress more."))
    if not pruned.strip():
        checks["not_empty"] = False
        failures.append(blame.setdefault("not_empty", "The pruned reasoning is empty."))

    verdict = {
        "passed": not failures, "checks": checks, "failures": failures, "attempt": attempt,
        "response_tokens_before": before, "response_tokens_after": after,
        "feedback": " ".join(failures) or None,
    }
    windows = state.get("prune_windows") or []
    if failures and len(windows) > 1:
        verdict["windows"] = window_feedback(state, windows, blame, allowed)
    call = deterministic("verifier", attempt, ctx, {"original_answer": answer}, verdict)
    update = {"verdict": verdict, "calls": [call]}
    if verdict["passed"]:
        update.update(status="accepted", reason="verified", pruned_answer=answer)
    else:
        update["feedback"] = verdict["feedback"]
    return update


def _new_numbers_message(new: list[str]) -> str:
    return (f"The pruned reasoning contains numbers that appear in neither the question nor the original: "
            f"{', '.join(new[:10])}. Use only numbers from the original steps.")


def window_feedback(state: TraceState, windows: list[dict], blame: dict[str, str], allowed: set[str]) -> list[dict]:
    """Which windows broke and what to tell each: new numbers where they appear, a lost answer where the
    original derives it, length and emptiness everywhere (a failure no window can be tied to: every window)."""
    messages: list[list[str]] = [[] for _ in windows]
    if "same_answer" in blame:
        messages[_answer_window(state, windows)].append(blame["same_answer"])
    if "no_new_numbers" in blame:
        found = [sorted(numbers_in(window.get("thinking") or "") - allowed) for window in windows]
        for index, new in enumerate(found):
            if new:
                messages[index].append(_new_numbers_message(new))
        if not any(found):
            for window_messages in messages:
                window_messages.append(blame["no_new_numbers"])
    for check in ("shorter", "not_empty"):
        if check in blame:
            for window_messages in messages:
                window_messages.append(blame[check])
    return [{"window": index, "steps": [window["first"], window["last"]], "feedback": " ".join(said)}
            for index, (window, said) in enumerate(zip(windows, messages)) if said]


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
