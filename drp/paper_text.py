"""The `paper` policy's free-text replies, read back into the steps and actions drp stores.

The paper's teacher answers in plain text, not JSON. Our prompts (prompts/paper/) ask for these layouts:

    call 1, segmentation            call 2, compression
    Step 1 [<skill>]: <text>        Step 1 [KEEP]: <the step as it will read>
    Step 2 [<skill>]: <text>        Step 2 [DELETE]:
    ...                             Step 3 [SINGLE-STEP COMPRESS]: <shorter text>
                                    === PRUNED REASONING ===
                                    <one fluent path, ending "The answer is N.">

A step's text runs to the next step header (it may span lines). Reading is lenient about markdown emphasis,
brackets or parentheses around the label, and case; what cannot be read is an error string (the call's
record keeps the raw reply), never an exception. A schema class here has `from_text` instead of a JSON schema:
the teacher client sends no response_format for it (drp/teacher/client.py)."""

from __future__ import annotations

import re

from pydantic import BaseModel

from drp.schemas import PAPER_ACTIONS, EchoStep, _paper_action

# "Step 3 [skill]:", "**Step 3 (skill):**", "Step 3 - [KEEP]:" at the start of a line
_HEADER = re.compile(r"^[ \t*#>-]*Step\s+(\d+)\s*[*:.\-–]*\s*[\[(]([^\]\n)]*)[\])]\s*\**\s*:?\**[ \t]*", re.I | re.M)
# the separator line before the pruned path: "=== PRUNED REASONING ===", "### Pruned reasoning:", ...
_SEPARATOR = re.compile(r"^[ \t=#*_-]*pruned reasoning[ \t=#*_:-]*$", re.I | re.M)
# the path's closing sentence, which becomes the answer section
_CLOSING = re.compile(
    r"(?:^|(?<=[.!?)\]$])\s+|\n)((?:So |Therefore,? |Thus,? )?The (?:final )?answer is [^\n]*?\.?)\s*$", re.I
)


def _blocks(text: str) -> list[tuple[int, str, str]]:
    """(number, label, text) for every step header in `text`, in order."""
    headers = list(_HEADER.finditer(text))
    blocks = []
    for index, header in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(text)
        blocks.append((int(header.group(1)), header.group(2).strip(), text[header.end() : end].strip()))
    return blocks


class EchoText(BaseModel):
    """Call 1 read back: the steps as re-typed, each with its skill."""

    steps: list[EchoStep]

    @classmethod
    def from_text(cls, text: str) -> tuple[EchoText | None, str | None]:
        blocks = [(label, body) for _, label, body in _blocks(text or "") if body]
        if not blocks:
            return None, "the reply has no 'Step N [skill]: text' lines"
        return cls(steps=[EchoStep(skill=label, text=body) for label, body in blocks]), None


class StepAction(BaseModel):
    number: int
    action: str  # one of PAPER_ACTIONS when recognised, else what the teacher wrote (upper-cased)
    text: str


class CompressText(BaseModel):
    """Call 2 read back: the action and rewritten text per step, and the path after the separator."""

    steps: list[StepAction]
    path: str

    @classmethod
    def from_text(cls, text: str) -> tuple[CompressText | None, str | None]:
        text = text or ""
        # The last one: a step's own text may mention the words.
        separator = next(reversed(list(_SEPARATOR.finditer(text))), None)
        if separator is None:
            return None, "the reply has no '=== PRUNED REASONING ===' line before the pruned path"
        path = text[separator.end() :].strip()
        if not path:
            return None, "nothing follows the '=== PRUNED REASONING ===' line"
        steps = [
            StepAction(number=number, action=_paper_action(label), text=body)
            for number, label, body in _blocks(text[: separator.start()])
        ]
        return cls(steps=steps, path=path), None

    def actions_for(self, step_count: int) -> list[StepAction | None]:
        """The first action stated for each step 1..step_count (None where the reply states none)."""
        found: dict[int, StepAction] = {}
        for step in self.steps:
            found.setdefault(step.number, step)
        return [found.get(number) for number in range(1, step_count + 1)]

    def unknown_actions(self) -> list[str]:
        return sorted({step.action for step in self.steps if step.action not in PAPER_ACTIONS})


def split_closing_answer(path: str) -> tuple[str, str]:
    """(the path without its closing answer sentence, that sentence); ("path", "") when it has none."""
    found = _CLOSING.search(path.rstrip())
    if not found:
        return path.strip(), ""
    return path[: found.start(1)].rstrip(), found.group(1).strip()
