"""What each agent must return (pydantic). Parsing is lenient about case and extra keys, strict about
structure: a reply that does not fit becomes a retry with the validation error as feedback."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Action = Literal["KEEP", "DELETE", "COMPRESS", "MERGE"]
PaperAction = Literal["KEEP", "DELETE", "SINGLE-STEP COMPRESS", "MULTI-STEP COMPRESS"]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StepRange(_Lenient):
    start: int = Field(description="first unit number of the step (inclusive)")
    end: int = Field(description="last unit number of the step (inclusive)")


class Segmentation(_Lenient):
    """Segmenter: consecutive unit ranges covering every unit exactly once."""

    steps: list[StepRange]


class StepSkill(_Lenient):
    step: int
    skill: str


class SkillLabels(_Lenient):
    """Skill-classifier: one skill per step."""

    labels: list[StepSkill]


class StepAction(_Lenient):
    step: int
    action: Action
    text: str | None = Field(default=None, description="the rewritten step (COMPRESS) or merged group (MERGE)")
    group: int | None = Field(default=None, description="MERGE only: steps sharing a group are merged")

    @field_validator("action", mode="before")
    @classmethod
    def _upper(cls, value):
        return value.strip().upper() if isinstance(value, str) else value


class PrunePlan(_Lenient):
    """Pruner: one action per step."""

    actions: list[StepAction]


class EchoStep(_Lenient):
    skill: str
    text: str


class EchoSegmentation(_Lenient):
    """The paper's first call: the trace re-typed as skill-labelled steps."""

    steps: list[EchoStep]


class PaperStepAction(_Lenient):
    step: int
    action: PaperAction

    @field_validator("action", mode="before")
    @classmethod
    def _normalise(cls, value):
        if not isinstance(value, str):
            return value
        return value.strip().upper().replace("_", "-").replace("SINGLE STEP", "SINGLE-STEP").replace(
            "MULTI STEP", "MULTI-STEP"
        )


class PaperPrune(_Lenient):
    """The paper's second call: an action per step and one fluent pruned reasoning path."""

    actions: list[PaperStepAction]
    pruned_reasoning: str
