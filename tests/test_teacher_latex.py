"""LaTeX inside teacher JSON (issue 8, part 4): `"\frac"` is a form feed and `rac` to JSON, `\theta` a tab and
`heta`, `\boxed` a backspace and `oxed`. Every reply is repaired or retried, never accepted with control
characters, and the real LaTeX of the shared traces survives a sloppy teacher byte for byte, through a real
HTTP teacher, a real run and a real export."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from helpers import drp

from drp.layout import split_response
from drp.reply_json import ReplyJSONError, decode, strings_in
from drp.schemas import PrunePlan
from drp.teacher.replies import parse_json_reply
from drp.testing.scripted_teacher import ScriptedTeacher, Sequence, Text, ToolCall
from drp.testing.skill_aware_responder import agent_of, label, segment
from drp.text import atomic_units, join_units, unit_layout

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def sloppy_json(value) -> str:
    """JSON the way a teacher that does not escape its LaTeX writes it: quotes and line breaks escaped,
    backslashes left single (`\\frac`, `\\(`)."""
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {sloppy_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(sloppy_json(v) for v in value) + "]"
    return json.dumps(value)


def shared_traces(shared) -> list[dict]:
    path = shared / "data" / "traces" / "r1-distill-qwen-1.5b.e2h-gsm8k.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def latex_lines(traces: list[dict]) -> list[str]:
    """Every line of the traces' responses (thinking and answer sections) that holds a backslash."""
    return sorted({line.strip() for t in traces for line in t["response"].splitlines() if "\\" in line})


# ── the reply decoder, on hand-picked cases ───────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "meant",
    [
        r"\frac{a}{b} and \theta and \boxed{12}",
        r"\right) \rho \beta \forall \neq \nabla \times \text{km} \tau \tfrac{1}{2}",
        r"\sqrt{2} \cdot \( x \) \[ y \] \{ \} \, \% \$ \underline{u} \uparrow \alpha",
        "two lines\nThe second one\tand a tab",
        "a line break\nnext to words that begin with n or t\ttoo",
    ],
)
def test_single_backslash_latex_decodes_to_what_was_meant(meant):
    assert decode(sloppy_json({"text": meant})) == {"text": meant}
    assert decode(json.dumps({"text": meant})) == {"text": meant}  # a teacher that escapes properly: untouched


def test_control_characters_are_never_accepted():
    for reply in (r'{"text": "a \b b"}', r'{"text": "x \u000c y"}', r'{"text": "x \u0000"}', r'{"text": "a\r b"}'):
        with pytest.raises(ReplyJSONError, match="control characters"):
            decode(reply)
    assert decode('{"text": "windows\\r\\nline"}') == {"text": "windows\nline"}


def test_commands_that_are_also_a_line_break_before_a_word_follow_the_reply():
    # `\ni` is a LaTeX command, and a line break before the variable i.
    assert decode(r'{"text": "\frac{1}{2} and x \ni y"}') == {"text": r"\frac{1}{2} and x \ni y"}  # sloppy
    assert decode(r'{"text": "\\frac{1}{2}\ni = 3"}') == {"text": "\\frac{1}{2}\ni = 3"}  # escapes properly
    with pytest.raises(ReplyJSONError, match="LaTeX command or a line break"):
        decode(r'{"text": "Let\ni = 3"}')  # no way to tell: asked again


def test_parse_json_reply_repairs_and_explains():
    plan, error = parse_json_reply(
        sloppy_json({"delete": [], "compress": [{"step": 1, "text": r"\frac{1}{2}"}]}), PrunePlan
    )
    assert error is None and plan.compress[0].text == r"\frac{1}{2}"
    plan, error = parse_json_reply(r'{"delete": [], "compress": [{"step": 1, "text": "x \b y"}]}', PrunePlan)
    assert plan is None and "control characters" in error and "doubled" in error


# ── the real LaTeX of the shared traces ───────────────────────────────────────────────────────────────────────


def test_every_latex_line_of_the_shared_traces_survives_a_sloppy_teacher(shared):
    lines = latex_lines(shared_traces(shared))
    commands = {c for line in lines for c in re.findall(r"\\([A-Za-z]+)", line)}
    assert {"frac", "theta", "boxed", "text", "times", "right"} & commands >= {
        "frac",
        "boxed",
        "text",
        "times",
        "right",
    }
    for line in lines:
        reply = sloppy_json({"delete": [], "compress": [{"step": 1, "text": line}]})
        plan, error = parse_json_reply(f"Here is the plan:\n```json\n{reply}\n```", PrunePlan)
        assert error is None, (line, error)
        assert plan.compress[0].text == line  # byte for byte
    # ...and every command on its own, where no other LaTeX in the reply gives the teacher's habit away
    for command in sorted(commands):
        meant = f"so we use \\{command}{{3}} here"
        plan, error = parse_json_reply(sloppy_json({"delete": [], "compress": [{"step": 1, "text": meant}]}), PrunePlan)
        assert error is None and plan.compress[0].text == meant, command


def _covering_traces(traces: list[dict]) -> list[dict]:
    """A few correct, complete traces whose thinking holds every LaTeX command and escape the thinking of the
    shared traces holds (the ones a pruner rewrites)."""
    from drp.answers import equivalent, extract_answer

    def commands(trace):
        thinking = split_response(trace["response"]).thinking or ""
        return set(re.findall(r"\\([A-Za-z]+|[^A-Za-z])", thinking))

    usable = []
    for trace in traces:
        split = split_response(trace["response"])
        answer = extract_answer(split.answer_section or "")
        if (
            split.complete
            and answer
            and trace.get("gold_answer")
            and equivalent(trace["gold_answer"], answer)
            and commands(trace)
        ):
            usable.append(trace)
    wanted = set().union(*(commands(t) for t in usable))
    chosen: list[dict] = []
    while wanted:  # greedy cover: each pick adds the most commands not yet covered
        best = max(usable, key=lambda t: len(commands(t) & wanted))
        chosen.append(best)
        wanted -= commands(best)
    return chosen


def _latex_pruner(sloppy: bool):
    """Segments one step per unit, labels by rules, and rewrites (COMPRESS) every step that holds LaTeX with its
    own text: the LaTeX of the pruned thinking reaches the training text only through the teacher's JSON."""

    def respond(request: dict):
        agent = agent_of(request)
        if agent == "segmenter":
            return Text(segment(request))
        if agent == "classifier":
            return Text(label(request))
        plan = {
            "delete": [],
            "compress": [
                {"step": number, "text": unit}
                for number, unit in enumerate(request["drp_units"], start=1)
                if "\\" in unit
            ],
        }
        return Text(sloppy_json(plan) if sloppy else json.dumps(plan))

    return respond


def _with_units(responder, traces: list[dict]):
    """The responder, told the units of the trace each pruner request is about (found by its question)."""
    # the skill-aware policy's units (units.max_chars: 1, every sentence)
    units = {t["question"].strip(): atomic_units(split_response(t["response"]).thinking, 1) for t in traces}

    def respond(request: dict):
        prompt = [m for m in request["messages"] if m["role"] == "user"][0]["content"]
        question = next(q for q in units if q in prompt)
        return responder({**request, "drp_units": units[question]})

    return respond


def test_exported_training_text_is_byte_identical_to_what_a_careful_teacher_gives(shared, tmp_path):
    traces = _covering_traces(shared_traces(shared))
    source = tmp_path / "latex.jsonl"
    source.write_text("".join(json.dumps(t) + "\n" for t in traces), encoding="utf-8")
    exported = {}
    for name, sloppy in (("careful", False), ("sloppy", True)):
        with ScriptedTeacher(_with_units(_latex_pruner(sloppy), traces)) as teacher:
            # verbatim rewrites are no shorter: the length check is off, every other check of the verifier is on
            result = drp(
                "run",
                source,
                "--policy",
                "skill-aware",
                "--teacher-url",
                teacher.url,
                "--teacher-model",
                "m",
                "--run-id",
                name,
                "--quiet",
                "--teacher-max-retries",
                "0",
                "--set",
                "verify.shorter=false",
            )
        assert result.exit_code == 0, result.output
        assert drp("export", name, "--out", tmp_path / f"export-{name}").exit_code == 0
        exported[name] = (tmp_path / f"export-{name}" / "train.jsonl").read_bytes()
    rows = [json.loads(line) for line in exported["sloppy"].decode().splitlines()]
    assert len(rows) == len(traces)  # every one accepted
    # byte-identical to the careful teacher's export, the run's name aside
    assert exported["sloppy"].replace(b'"run": "sloppy"', b'"run": "careful"') == exported["careful"]
    meant = {t["id"]: join_units(*unit_layout(split_response(t["response"]).thinking, 1)) for t in traces}
    for row in rows:  # and to what the teacher meant: the steps it rewrote, verbatim
        assert row["thinking"] == meant[row["trace_id"]]
        assert f"<think>\n{row['thinking']}\n</think>" in row["completion"][0]["content"]
    text = "\n".join(strings_in(rows))
    assert not CONTROL.search(text)
    thinking_commands = {
        c for t in traces for c in re.findall(r"\\([A-Za-z]+)", split_response(t["response"]).thinking)
    }
    assert {"frac", "boxed", "times", "text"} <= thinking_commands
    for command in thinking_commands:
        assert f"\\{command}" in text, command


def test_function_calling_replies_are_repaired_too():
    from drp.policy import AgentSettings
    from drp.teacher import Teacher, TeacherSettings

    meant = r"\frac{1}{2} \theta \sqrt{3}"
    swallowed = '{"delete": [], "compress": [{"step": 1, "text": "\\frac{1}{2} \\theta"}]}'
    refused_by_json = sloppy_json({"delete": [], "compress": [{"step": 1, "text": meant}]})
    replies = Sequence(
        ToolCall("PrunePlan", swallowed),
        ToolCall("PrunePlan", refused_by_json),
        ToolCall("PrunePlan", '{"delete": [], "compress": [{"step": 1, "text": "a \\b b"}]}'),
    )
    agent = AgentSettings(kind="llm-actions", structured_output="function_calling")

    async def three_calls(url: str):
        teacher = Teacher(TeacherSettings(url=url, model="m", max_retries=0))
        try:
            return [await teacher.ask(agent, [{"role": "user", "content": "prune"}], PrunePlan) for _ in range(3)]
        finally:
            await teacher.aclose()

    with ScriptedTeacher(replies) as server:
        first, second, third = asyncio.run(three_calls(server.url))
    assert first.error is None and first.parsed.compress[0].text == r"\frac{1}{2} \theta"
    assert second.error is None and second.parsed.compress[0].text == meant
    assert third.parsed is None and "control characters" in third.error
