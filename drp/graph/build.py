"""Graph wiring and routing: prepare → segment → classify → prune → verify, where the verifier accepts,
sends the pruner back with feedback (up to the policy's max_retries), falls back, or rejects.
The nodes' bodies are agents (drp/agents/); this module only wires them."""

from __future__ import annotations

from typing import Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from drp.agents import classifier, pruner, segmenter, verifier
from drp.agents.fallback import fallback
from drp.agents.prepare import prepare
from drp.agents.state import TraceState
from drp.outcomes import FAILED, TEACHER_ERROR, reason
from drp.run_context import RunContext
from drp.teacher import TeacherError


def _teacher_node(agent_function):
    """A teacher fault ends the trace as `failed` with its transcript, instead of escaping the graph (and says
    whether no endpoint could be reached at all: the runner then leaves the trace pending)."""

    async def node(state: TraceState, runtime: Runtime[RunContext]) -> dict:
        try:
            return await agent_function(state, runtime.context)
        except TeacherError as exc:
            return {
                "status": FAILED,
                "reason": reason(TEACHER_ERROR, exc),
                "calls": getattr(exc, "calls", []),
                "teacher_unreachable": exc.unreachable,
            }

    node.__name__ = agent_function.__name__
    return node


_segment = _teacher_node(segmenter.segment)
_classify = _teacher_node(classifier.classify)
_prune = _teacher_node(pruner.prune)
_verify = _teacher_node(verifier.verify)  # the optional LLM judge is a teacher call too
_fallback = _teacher_node(fallback)  # so is the judge of its rule-based attempt


# Deterministic nodes are declared async so LangGraph runs them inline on the event loop: they are short,
# and a hop through its thread pool per node costs more than the work itself.
async def _prepare(state: TraceState, runtime: Runtime[RunContext]) -> dict:
    return prepare(state, runtime.context)


class Routing(TypedDict, total=False):
    """What the routing functions read: LangGraph hands them only these keys of the state."""

    status: str | None
    attempt: int


# Routing functions are async too: LangGraph runs a plain function in its thread pool, one hop per edge taken.
def _continue_unless_done(next_node: str):
    async def route(state: Routing) -> str:
        return END if state.get("status") else next_node

    return route


async def route_after_verify(state: Routing, runtime: Runtime[RunContext]) -> Literal["prune", "fallback", "__end__"]:
    if state.get("status"):  # accepted, or nothing to prune
        return END
    if state["attempt"] <= runtime.context.policy.max_retries:
        return "prune"
    return "fallback"


def build_graph():
    graph = StateGraph(TraceState, context_schema=RunContext)
    graph.add_node("prepare", _prepare)
    graph.add_node("segment", _segment)
    graph.add_node("classify", _classify)
    graph.add_node("prune", _prune)
    graph.add_node("verify", _verify)
    graph.add_node("fallback", _fallback)
    graph.add_edge(START, "prepare")
    graph.add_conditional_edges("prepare", _continue_unless_done("segment"), ["segment", END])
    graph.add_conditional_edges("segment", _continue_unless_done("classify"), ["classify", END])
    graph.add_conditional_edges("classify", _continue_unless_done("prune"), ["prune", END])
    graph.add_conditional_edges("prune", _continue_unless_done("verify"), ["verify", END])
    graph.add_conditional_edges("verify", route_after_verify, ["prune", "fallback", END])
    graph.add_edge("fallback", END)
    return graph.compile()
