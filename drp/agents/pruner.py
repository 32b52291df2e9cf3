"""Pruner: decides which steps go (DELETE), which are rewritten shorter (COMPRESS) and which runs become one
(MERGE); every other step is kept as written. The pruned thinking is assembled from the original text of kept
steps and the rewrites. On a retry it sees the verifier's feedback.

Steps that compute the answer, or a number it depends on, are found deterministically first (drp/derivation.py)
and marked "needed" in the prompt; the reply's schema does not even allow deleting them.
Kinds (drp/agent_kinds.py): `llm-actions`, `paper`, `rules`, `identity`."""

from __future__ import annotations

from drp.agent_kinds import agent_for, implements
from drp.agents import rules
from drp.agents.asking import ask
from drp.agents.calls import deterministic
from drp.agents.state import TraceState
from drp.agents.windowed import ask_windows, plan_windows
from drp.agents.windows import Window, neighbours
from drp.derivation import needed_passages, states_value
from drp.outcomes import FAILED, PRUNER_UNUSABLE, reason
from drp.paper_text import CompressText, split_closing_answer
from drp.run_context import RunContext
from drp.schemas import Rewrite, paper_prune_schema, plan_schema
from drp.text import PARAGRAPH, join_units

_PAPER_ACTIONS = {
    "KEEP": "KEEP",
    "DELETE": "DELETE",
    "SINGLE-STEP COMPRESS": "COMPRESS",
    "MULTI-STEP COMPRESS": "MERGE",
}


def check_plan(plan, needed: dict[int, tuple[str, list[str]]]) -> str | None:
    """What the schema cannot say: a step in two lists, a merge run backwards or overlapping, a rewrite that
    drops a number its step computes or uses. None when the plan is usable."""
    problems = _plan_problems(plan, needed)
    return problems[0] if problems else None


def repair_plan(plan, needed: dict[int, tuple[str, list[str]]]):
    """The usable reading of a plan that breaks check_plan: a one-step "merge" is that step's rewrite, each
    step keeps its first claim (delete, then compress, then merge), and a rewrite that drops what its step
    computes is not applied (the step is kept as written). Returns the plan and what was left out."""
    kept = plan.model_copy(update={"delete": [], "compress": [], "merge": []})
    one_step = [run for run in plan.merge if run.first == run.last]
    rewrites = [*plan.compress, *(Rewrite(step=run.first, text=run.text) for run in one_step)]
    claims = {"delete": plan.delete, "compress": rewrites, "merge": [r for r in plan.merge if r not in one_step]}
    left_out = []
    for field in ("delete", "compress", "merge"):
        for item in claims[field]:
            trial = kept.model_copy(update={field: [*getattr(kept, field), item]})
            problems = _plan_problems(trial, needed)
            if problems:
                left_out.append(problems[0])
            else:
                kept = trial
    return kept, left_out


def _plan_problems(plan, needed: dict[int, tuple[str, list[str]]]) -> list[str]:
    problems = []
    claimed: dict[int, str] = {}
    for number in plan.delete:
        claimed[number] = "deleted"
    for rewrite in plan.compress:
        if rewrite.step in claimed:
            problems.append(f"step {rewrite.step} is both {claimed[rewrite.step]} and compressed: choose one")
        elif not any(ch.isalnum() for ch in rewrite.text):
            problems.append(f"the rewrite of step {rewrite.step} has no content: give the shorter step itself")
        elif rewrite.step in needed and (dropped := _dropped(rewrite.text, needed[rewrite.step][1])):
            problems.append(
                f"the rewrite of step {rewrite.step} drops {', '.join(dropped)} "
                f"(the step {needed[rewrite.step][0]}): keep it"
            )
        claimed.setdefault(rewrite.step, "compressed")
    for run in plan.merge:
        if run.first >= run.last:
            problems.append(
                f"merge {run.first}-{run.last}: give the first and the last of two or more consecutive steps"
            )
            continue
        for number in range(run.first, run.last + 1):
            if number in claimed:
                problems.append(f"step {number} is both {claimed[number]} and merged: choose one")
            claimed.setdefault(number, "merged")
    return problems


def _dropped(text: str, values: list[str]) -> list[str]:
    return [value for value in values if not states_value(text, value)]


def plan_actions(plan, step_count: int, first: int = 1) -> list[dict]:
    """The plan as one action per step first..step_count, in step order (a rewrite identical to its step is a
    KEEP)."""
    actions = {n: {"step": n, "action": "KEEP", "text": None, "group": None} for n in range(first, step_count + 1)}
    for number in plan.delete:
        actions[number].update(action="DELETE")
    for rewrite in plan.compress:
        actions[rewrite.step].update(action="COMPRESS", text=rewrite.text.strip())
    for group, run in enumerate(plan.merge, start=1):
        for number in range(run.first, run.last + 1):
            actions[number].update(action="MERGE", group=group, text=run.text.strip() if number == run.first else None)
    return [actions[n] for n in range(first, step_count + 1)]


def apply_plan(steps: list[dict], actions: list[dict]) -> tuple[list[dict], str]:
    """Steps annotated with their actions, and the assembled pruned thinking (original paragraphs kept)."""
    annotated, pieces, joins = _planned_pieces(steps, actions)
    return annotated, join_units(pieces, joins)


def _planned_pieces(steps: list[dict], actions: list[dict]) -> tuple[list[dict], list[str], list[str]]:
    """Steps annotated with their actions, the pruned thinking's pieces in order, and what joins each piece to
    the text before it (its step's own join)."""
    annotated, pieces, joins, merged_groups = [], [], [], set()
    by_step = {a["step"]: a for a in actions}
    for number, step in enumerate(steps, start=1):
        action = dict(by_step[number])
        if action["action"] == "COMPRESS" and _same(action.get("text"), step["text"]):
            action.update(action="KEEP", text=None)
        group = action.get("group")
        rewritten = action.get("text")
        piece = None
        if action["action"] == "MERGE":
            group_text = next((a.get("text") for a in actions if a.get("group") == group and a.get("text")), None)
            if group not in merged_groups:
                merged_groups.add(group)
                piece = group_text
            rewritten = group_text
        elif action["action"] == "KEEP":
            piece = step["text"]
        elif action["action"] == "COMPRESS":
            piece = rewritten
        if piece:
            pieces.append(piece)
            joins.append(step.get("joined_by", PARAGRAPH))
        annotated.append({**step, "action": action["action"], "rewritten": rewritten, "merge_group": group})
    return annotated, pieces, joins


async def prune(state: TraceState, ctx: RunContext) -> dict:
    return await agent_for("pruner", ctx.policy.agents["pruner"].kind)(state, ctx, state.get("attempt", 0) + 1)


@implements("pruner", "rules")
async def _by_rules(state: TraceState, ctx: RunContext, attempt: int) -> dict:
    steps = state["steps"]
    return _planned(
        ctx,
        steps,
        attempt,
        rules.plan(steps, state.get("original_answer"), ctx.policy.rules, state["trace"]["question"]),
    )


@implements("pruner", "identity")
async def _keep_all(state: TraceState, ctx: RunContext, attempt: int) -> dict:
    steps = state["steps"]
    return _planned(
        ctx, steps, attempt, [{"step": n, "action": "KEEP", "text": None} for n in range(1, len(steps) + 1)]
    )


def _planned(ctx: RunContext, steps: list[dict], attempt: int, actions: list[dict]) -> dict:
    """A deterministic plan applied and recorded like an agent call."""
    annotated, thinking = apply_plan(steps, actions)
    call = deterministic("pruner", attempt, ctx, {"steps": len(steps)}, {"actions": [a["action"] for a in actions]})
    return {"steps": annotated, "pruned_thinking": thinking, "attempt": attempt, "calls": [call]}


def _request(state: TraceState, ctx: RunContext, attempt: int) -> dict:
    """What every whole-trace LLM pruner call carries (the paper's): the prompt variables, and a retry temperature
    (a verification retry must not be the same question at the same temperature)."""
    steps = state["steps"]
    return dict(
        temperature=_temperature(ctx, attempt),
        question=state["trace"]["question"],
        steps=list(enumerate(steps, start=1)),
        total_steps=len(steps),
        context_before=[],
        context_after=[],
        feedback=state.get("feedback"),
        attempt=attempt,
        original_answer=state.get("original_answer"),
    )


def _temperature(ctx: RunContext, attempt: int) -> float | None:
    return None if attempt == 1 else max(ctx.policy.agents["pruner"].temperature, ctx.policy.retry_temperature)


def _step_tokens(state: TraceState, ctx: RunContext) -> int:
    return sum(ctx.counter.count(step["text"]) for step in state["steps"])


def _window_variables(
    state: TraceState, first: int, last: int, feedback: str | None, attempt: int, protected: dict[int, str]
) -> dict:
    steps = state["steps"]
    before, after = neighbours(first, last, len(steps), steps)
    return dict(
        question=state["trace"]["question"],
        steps=[(n, steps[n - 1]) for n in range(first, last + 1)],
        total_steps=len(steps),
        context_before=before,
        context_after=after,
        feedback=feedback,
        attempt=attempt,
        original_answer=state.get("original_answer"),
        protected={n: note for n, note in protected.items() if first <= n <= last},
    )


FEEDBACK_TOKENS = 256  # room kept in each window's prompt for a retry's feedback (the verifier's stays under it)


def _plan_windows(state: TraceState, ctx: RunContext, attempt: int, protected: dict[int, str]) -> list:
    steps = state["steps"]
    return plan_windows(
        ctx,
        "pruner",
        len(steps),
        lambda first, last: _window_variables(state, first, last, None, attempt, protected),
        _reply_tokens,
        item_text=lambda n: steps[n - 1]["text"],
        reserve=FEEDBACK_TOKENS,
    )


def _reply_tokens(first: int, last: int, size) -> int:
    """The lists' numbers, and at most every step rewritten at its own length (and a tenth more)."""
    return 32 + 6 * (last - first + 1) + int(1.1 * sum(size(n) for n in range(first, last + 1)))


def _to_redo(state: TraceState, windows: list[dict]) -> list[tuple[int, str | None]]:
    """(window, feedback) for each window this attempt prunes: all of them at first, then those the verifier
    blamed (with what it said about each), or all with its message when it blamed none in particular."""
    blamed = (state.get("verdict") or {}).get("windows") if state.get("attempt") else None
    if not blamed:
        return [(index, state.get("feedback")) for index in range(len(windows))]
    return [(entry["window"], entry["feedback"]) for entry in blamed]


@implements("pruner", "paper")
async def _by_paper_method(state: TraceState, ctx: RunContext, attempt: int) -> dict:
    steps = state["steps"]
    if ctx.policy.replies == "text":
        return await _by_paper_text(state, ctx, attempt)
    result, calls, error = await ask(
        ctx,
        "pruner",
        attempt,
        paper_prune_schema(len(steps)),
        _check_paper,
        max_tokens=48 + 8 * len(steps) + int(1.2 * _step_tokens(state, ctx)),
        **_request(state, ctx, attempt),
    )
    if result is None:
        return _failed(calls, error, attempt)
    annotated = [
        {**step, "action": _PAPER_ACTIONS[action], "rewritten": None, "merge_group": None}
        for step, action in zip(steps, result.actions)
    ]
    return {"steps": annotated, "pruned_thinking": result.pruned_reasoning.strip(), "attempt": attempt, "calls": calls}


async def _by_paper_text(state: TraceState, ctx: RunContext, attempt: int) -> dict:
    """The paper's call 2 as it ran: free text at the agent's own output cap, every step's action and rewrite,
    then the path after the separator. The path is the training target as written; what the reply leaves
    unsaid (a step without an action, an action that is none of the four) is recorded, not refused."""
    steps = state["steps"]
    result, calls, error = await ask(
        ctx,
        "pruner",
        attempt,
        CompressText,
        lambda reply: None,
        max_tokens=ctx.policy.agents["pruner"].max_tokens,
        **_request(state, ctx, attempt),
    )
    if result is None:
        return _failed(calls, error, attempt)
    stated = result.actions_for(len(steps))
    annotated = [
        {
            **step,
            "action": _PAPER_ACTIONS.get(said.action, said.action) if said else None,
            "rewritten": (said.text or None) if said else None,
            "merge_group": None,
        }
        for step, said in zip(steps, stated)
    ]
    update = {
        "steps": annotated,
        "attempt": attempt,
        "calls": calls,
        "reply_gaps": {
            "steps_without_action": [n for n, said in enumerate(stated, 1) if said is None],
            "unknown_actions": result.unknown_actions(),
        },
    }
    body, closing = split_closing_answer(result.path)
    if ctx.policy.answer_section == "from_path" and closing and body:
        # the answer is written once: the path's closing sentence becomes the answer section
        return {**update, "pruned_thinking": body, "pruned_answer_section": closing}
    return {**update, "pruned_thinking": result.path.strip()}


@implements("pruner", "llm-actions")
async def _by_teacher_actions(state: TraceState, ctx: RunContext, attempt: int) -> dict:
    # A long trace is pruned a window of steps at a time (each call within the teacher's context, its
    # neighbouring steps shown as context); on a retry only the windows the verifier blamed are pruned again.
    steps = state["steps"]
    needed = _needed(state, steps) if ctx.policy.protect_derivation else {}
    protected = {number: note for number, (note, _) in needed.items()}
    rendered: dict[int, list[dict]] = {}  # first attempt: the prompts planning rendered
    if state.get("prune_windows"):
        windows = [dict(window) for window in state["prune_windows"]]
    else:
        planned = _plan_windows(state, ctx, attempt, protected)
        windows = [{"first": w.first, "last": w.last, "reply_tokens": w.reply_tokens} for w in planned]
        rendered = {index: w.messages for index, w in enumerate(planned) if not state.get("feedback")}
    todo = _to_redo(state, windows)
    # Each window's schema: its own step numbers, its own protected steps.
    schemas = {
        index: plan_schema(windows[index]["last"], protected, windows[index]["first"], keep_one=len(windows) == 1)
        for index, _ in todo
    }
    # A rule the schema cannot express is either asked again or, by default, repaired at once below.
    rule_check = (lambda plan: check_plan(plan, needed)) if ctx.policy.retry_plan_rules else (lambda plan: None)
    feedback_of = dict(todo)
    index_of = {windows[index]["first"]: index for index, _ in todo}
    answers = await ask_windows(
        ctx,
        "pruner",
        attempt,
        [Window(windows[i]["first"], windows[i]["last"], windows[i]["reply_tokens"], rendered.get(i)) for i, _ in todo],
        lambda w: schemas[index_of[w.first]],
        rule_check,
        lambda w: _window_variables(state, w.first, w.last, feedback_of[index_of[w.first]], attempt, protected),
        temperature=_temperature(ctx, attempt),
    )
    calls = [call for _, window_calls, _ in answers for call in window_calls]
    annotated = [dict(step) for step in steps]
    for (index, _), (result, window_calls, error) in zip(todo, answers):
        if result is None and window_calls and isinstance(window_calls[-1]["parsed"], dict):
            result = schemas[index].model_validate(window_calls[-1]["parsed"])  # every try broke a rule
        if result is not None and (problem := check_plan(result, needed)):
            # Use what the plan got right; what it got wrong is left out, and recorded.
            result, left_out = repair_plan(result, needed)
            calls.append(deterministic("pruner", attempt, ctx, {"last_problem": problem}, {"left_out": left_out}))
        if result is None:
            return _failed(calls, error, attempt)
        window = windows[index]
        first, last = window["first"], window["last"]
        local = [{**action, "step": action["step"] - first + 1} for action in plan_actions(result, last, first)]
        annotated[first - 1 : last], pieces, joins = _planned_pieces(steps[first - 1 : last], local)
        window["thinking"] = join_units(pieces, joins)
        window["joined_by"] = joins[0] if joins else PARAGRAPH  # its first kept piece's join
    _number_merge_groups(annotated, windows)
    # Windows are joined as their first kept steps were: a window that starts mid-paragraph stays in it.
    thinking = join_units(
        [window["thinking"] for window in windows], [window.get("joined_by", PARAGRAPH) for window in windows]
    )
    return {
        "steps": annotated,
        "pruned_thinking": thinking,
        "attempt": attempt,
        "calls": calls,
        "prune_windows": windows,
    }


def _number_merge_groups(steps: list[dict], windows: list[dict]) -> None:
    """Merge groups are numbered per window by the teacher: renumber them 1, 2, … across the trace."""
    if len(windows) < 2:
        return
    window_of = {n: index for index, w in enumerate(windows) for n in range(w["first"], w["last"] + 1)}
    numbers: dict[tuple, int] = {}
    for number, step in enumerate(steps, start=1):
        if step.get("merge_group") is not None:
            key = (window_of[number], step["merge_group"])
            step["merge_group"] = numbers.setdefault(key, len(numbers) + 1)


def _needed(state: TraceState, steps: list[dict]) -> dict[int, tuple[str, list[str]]]:
    """Steps on the answer's chain of computations, when the thinking itself derives the answer."""
    answer = state.get("original_answer")
    if answer is None or not state.get("thinking_reaches_answer", True):
        return {}
    return needed_passages([step["text"] for step in steps], state["thinking"], answer, state["trace"]["question"])


def _check_paper(result) -> str | None:
    return None if result.pruned_reasoning.strip() else "pruned_reasoning is empty"


def _same(rewrite: str | None, original: str) -> bool:
    return rewrite is not None and " ".join(rewrite.split()) == " ".join(original.split())


def _failed(calls: list[dict], error: str | None, attempt: int) -> dict:
    return {"calls": calls, "attempt": attempt, "status": FAILED, "reason": reason(PRUNER_UNUSABLE, error)}
