"""What each agent must return (pydantic), built for each shape of call so the JSON schema a server sees carries
the counts and bounds of *this* trace: unit numbers bounded by the last unit, exactly one skill per step from the
policy's taxonomy, exactly one action per step. Servers that enforce schemas (llama.cpp grammars, vLLM,
OpenAI) then cannot produce the usual small-model failures (unit 8 of 7, 19 labels for 1 step, endless lists);
for the others, a reply that does not fit becomes a retry whose feedback names the exact fix.

Building a pydantic model costs about a millisecond, more than the rest of a call's client work: each schema is
built once per shape (its bounds and counts) and reused, so a model and its `context` never change once built.

Parsing is lenient about case, spacing and extra keys, strict about structure."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

PAPER_ACTIONS = ("KEEP", "DELETE", "SINGLE-STEP COMPRESS", "MULTI-STEP COMPRESS")


class CallSchema(BaseModel):
    """Base of every agent reply: ignores extra keys and turns validation errors into exact instructions."""

    model_config = ConfigDict(extra="ignore")
    context: ClassVar[dict[str, Any]] = {}

    @classmethod
    def explain(cls, exc: ValidationError) -> str:
        """The first few problems of a reply, each as the fix the teacher should make."""
        problems = []
        for error in exc.errors()[:4]:
            problems.append(cls.explain_one(error) or _generic(error))
        return "; ".join(dict.fromkeys(problems))

    @classmethod
    def explain_one(cls, error: dict) -> str | None:
        return None


def _generic(error: dict) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "the reply"
    return f"{where}: {error['msg']}"


def _count_problem(error: dict, count: int, what: str, per: str) -> str | None:
    if error["type"] in ("too_long", "too_short") and len(error["loc"]) == 1:
        given = len(error.get("input") or [])
        return f"there are {count} {per}s: give exactly {count} {what}, one per {per} in order (you gave {given})"
    return None


# ---------------------------------------------------------------- segmenter (by reference)


class Segmentation(CallSchema):
    """Segmenter: the unit numbers where each step starts. Steps run from one start to the unit before the next,
    so every unit belongs to exactly one step by construction."""

    starts: list[int]

    @field_validator("starts")
    @classmethod
    def _in_order(cls, starts: list[int]) -> list[int]:
        return sorted(set(starts))  # the same boundaries, however they were listed

    @classmethod
    def explain_one(cls, error: dict) -> str | None:
        first, last = cls.context["first"], cls.context["last"]
        if error["type"] in ("less_than_equal", "greater_than_equal") and len(error["loc"]) == 2:
            unit = error["input"]
            bound = f"the last unit is {last}" if unit > last else f"the first unit here is {first}"
            return f"unit {unit} does not exist; {bound}"
        return (
            _count_problem(error, last - first + 1, "start numbers at most", "unit")
            if error["type"] == "too_long"
            else None
        )


@lru_cache(maxsize=1024)
def segmentation_schema(first: int, last: int) -> type[Segmentation]:
    """Starts within units first..last; at most one step per unit."""
    unit = int
    model = create_model(
        f"Segmentation_{first}_{last}",
        __base__=Segmentation,
        starts=(
            list[_bounded(unit, first, last)],
            Field(
                min_length=1,
                max_length=last - first + 1,
                description=f"unit numbers ({first}-{last}) where a step starts",
            ),
        ),
    )
    model.context = {"first": first, "last": last}
    return model


def steps_from_starts(starts: list[int], first: int, last: int) -> list[tuple[int, int]]:
    """(start, end) unit ranges; the window's first unit always starts a step."""
    starts = sorted({first, *(s for s in starts if first <= s <= last)})
    return [(start, (starts[i + 1] - 1) if i + 1 < len(starts) else last) for i, start in enumerate(starts)]


# ---------------------------------------------------------------- skill-classifier


class SkillLabels(CallSchema):
    """Skill-classifier: one skill per step, in step order."""

    skills: list[str]

    @field_validator("skills", mode="before")
    @classmethod
    def _canonical(cls, skills):
        canonical = cls.context.get("canonical", {})
        if not isinstance(skills, list):
            return skills
        return [canonical.get(_norm(s), s) if isinstance(s, str) else s for s in skills]

    @classmethod
    def explain_one(cls, error: dict) -> str | None:
        count, taxonomy = cls.context["steps"], cls.context["taxonomy"]
        if error["type"] == "literal_error" and len(error["loc"]) == 2:
            return f"step {error['loc'][1] + 1}: {error['input']!r} is not a skill; use one of {', '.join(taxonomy)}"
        return _count_problem(error, count, "skills", "step")


def labels_schema(step_count: int, taxonomy: list[str] | tuple[str, ...]) -> type[SkillLabels]:
    return _labels_schema(step_count, tuple(taxonomy))


@lru_cache(maxsize=1024)
def _labels_schema(step_count: int, taxonomy: tuple[str, ...]) -> type[SkillLabels]:
    skill = Literal[tuple(taxonomy)]  # type: ignore[valid-type]
    model = create_model(
        f"SkillLabels_{step_count}",
        __base__=SkillLabels,
        skills=(
            list[skill],
            Field(
                min_length=step_count,
                max_length=step_count,
                description=f"exactly {step_count} skills, one per step, in step order",
            ),
        ),
    )
    model.context = {"steps": step_count, "taxonomy": list(taxonomy), "canonical": {_norm(t): t for t in taxonomy}}
    return model


# ---------------------------------------------------------------- pruner


class Rewrite(CallSchema):
    step: int
    text: str = Field(min_length=1, description="the step, shorter, in the same voice, with all its numbers")


class MergeRun(CallSchema):
    first: int
    last: int
    text: str = Field(min_length=1, description="steps first..last as one shorter step")


class PrunePlan(CallSchema):
    """Pruner: which steps go, which are rewritten shorter, which runs are merged; every other step is kept.
    (Asked this way, small teachers prune; asked for one action per step, they keep everything.)"""

    # The schema asks for both lists (possibly empty) and leaves merging optional; parsing takes what comes.
    model_config = ConfigDict(extra="ignore", json_schema_extra={"required": ["delete", "compress"]})

    delete: list[int] = Field(default_factory=list)
    compress: list[Rewrite] = Field(default_factory=list)
    merge: list[MergeRun] = Field(default_factory=list)

    @classmethod
    def explain_one(cls, error: dict) -> str | None:
        first, count, protected = cls.context.get("first", 1), cls.context["steps"], cls.context["protected"]
        loc = error["loc"]
        if (
            loc[:1] == ("delete",)
            and len(loc) == 2
            and error["type"] in ("literal_error", "less_than_equal", "greater_than_equal")
        ):
            step = error["input"]
            if step in protected:
                return f"step {step} computes a number the answer needs ({protected[step]}): do not delete it"
            return f"step {step} does not exist; the steps are numbered {first} to {count}"
        if error["type"] in ("less_than_equal", "greater_than_equal") and len(loc) == 3:
            return f"step {error['input']} does not exist; the steps are numbered {first} to {count}"
        if error["type"] == "too_long" and len(loc) == 1:
            if loc[0] == "delete" and cls.context.get("keep_one"):
                return "delete lists every step: keep at least the steps that reach the answer"
            return f"{loc[0]} lists more steps than there are ({count - first + 1})"
        return None


def plan_schema(
    last: int, protected: dict[int, str] | None = None, first: int = 1, keep_one: bool = False
) -> type[PrunePlan]:
    """Step numbers bounded by the window first..last (the whole trace: 1..count); steps in `protected`
    (step → what it computes) cannot be deleted; `keep_one` (the window is the whole thinking): not every step
    can be deleted either."""
    notes = tuple(sorted((n, note) for n, note in (protected or {}).items() if first <= n <= last))
    return _plan_schema(first, last, notes, keep_one)


@lru_cache(maxsize=1024)
def _plan_schema(first: int, last: int, notes: tuple[tuple[int, str], ...], keep_one: bool) -> type[PrunePlan]:
    protected = dict(notes)
    count = last - first + 1
    deletable = tuple(n for n in range(first, last + 1) if n not in protected)
    most_deleted = len(deletable) - 1 if keep_one and len(deletable) == count else len(deletable)
    step = _bounded(int, first, last)
    name = f"{last}" if first == 1 else f"{first}_{last}"
    rewrite, run = _plan_items(first, last)
    model = create_model(
        f"PrunePlan_{name}",
        __base__=PrunePlan,
        delete=(
            list[Literal[deletable]] if deletable else list[step],  # type: ignore[valid-type]
            Field(default_factory=list, max_length=most_deleted, description="numbers of the steps to delete"),
        ),
        compress=(list[rewrite], Field(default_factory=list, max_length=count)),
        merge=(list[run], Field(default_factory=list, max_length=max(count // 2, 1))),
    )
    model.context = {"first": first, "steps": last, "protected": protected, "keep_one": keep_one}
    return model


@lru_cache(maxsize=1024)
def _plan_items(first: int, last: int) -> tuple[type[Rewrite], type[MergeRun]]:
    """A window's rewrite and merge items: the same whichever of its steps are protected."""
    step = _bounded(int, first, last)
    name = f"{last}" if first == 1 else f"{first}_{last}"
    rewrite = create_model(f"Rewrite_{name}", __base__=Rewrite, step=(step, ...))
    run = create_model(f"MergeRun_{name}", __base__=MergeRun, first=(step, ...), last=(step, ...))
    return rewrite, run


# ---------------------------------------------------------------- the paper's two calls


class EchoStep(CallSchema):
    skill: str = Field(description="the atomic math skill this step uses, in a few words")
    text: str = Field(description="the step's text, copied exactly")


class EchoSegmentation(CallSchema):
    """The paper's first call: the trace re-typed as skill-labelled steps."""

    steps: list[EchoStep]


@lru_cache(maxsize=1024)
def echo_schema(max_steps: int) -> type[EchoSegmentation]:
    model = create_model(
        f"EchoSegmentation_{max_steps}",
        __base__=EchoSegmentation,
        steps=(list[EchoStep], Field(min_length=1, max_length=max_steps)),
    )
    return model


class PaperPrune(CallSchema):
    """The paper's second call: an action per step and one fluent pruned reasoning path."""

    actions: list[str]
    pruned_reasoning: str

    @field_validator("actions", mode="before")
    @classmethod
    def _normalise(cls, values):
        if not isinstance(values, list):
            return values
        return [_paper_action(v) if isinstance(v, str) else v for v in values]

    @classmethod
    def explain_one(cls, error: dict) -> str | None:
        if error["type"] == "literal_error" and len(error["loc"]) == 2:
            return f"step {error['loc'][1] + 1}: {error['input']!r} is not an action; use {', '.join(PAPER_ACTIONS)}"
        return _count_problem(error, cls.context["steps"], "actions", "step")


@lru_cache(maxsize=1024)
def paper_prune_schema(step_count: int) -> type[PaperPrune]:
    action = Literal[PAPER_ACTIONS]  # type: ignore[valid-type]
    model = create_model(
        f"PaperPrune_{step_count}",
        __base__=PaperPrune,
        actions=(list[action], Field(min_length=step_count, max_length=step_count)),
    )
    model.context = {"steps": step_count}
    return model


class JudgeVerdict(CallSchema):
    """The optional LLM judge: does the pruned reasoning still derive its answer?"""

    derives_answer: bool
    problem: str = Field(default="", description="when it does not: what is missing, in one sentence")


# ---------------------------------------------------------------- helpers


def _bounded(kind: type, low: int, high: int):
    from typing import Annotated

    return Annotated[kind, Field(ge=low, le=high)]


def _norm(text: str) -> str:
    return " ".join(text.strip().lower().replace("_", " ").replace("-", " ").split())


def _paper_action(value: str) -> str:
    text = value.strip().upper().replace("_", "-")
    for name in PAPER_ACTIONS:
        if text.replace("-", " ") == name.replace("-", " "):
            return name
    return text
