"""The protocols by name. A protocol is an object that says how a problem becomes a request (chat messages or a
raw prompt, its stop strings, its token cap), how a sample is scored, and what the eval folder records of it;
`drp eval` asks the protocol named by `--protocol` and never tests its name. Each one registers itself where it
is defined (`@register`), as lm-eval's registries do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from drp.evals.problems import Benchmark, Problem
    from drp.evals.scoring import Grade

DEFAULT_PROTOCOL = "default"


class ProtocolError(ValueError):
    """A protocol that does not exist, or settings it cannot take."""


@dataclass(frozen=True)
class Request:
    """One request: chat messages, or a raw prompt for /v1/completions (with its stop strings)."""

    messages: tuple[dict, ...] = ()
    prompt: str | None = None
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None  # this request's cap, when it is not the decoding's

    @property
    def raw(self) -> bool:
        return self.prompt is not None

    @property
    def text(self) -> str:
        """What the model is asked, for the sample record."""
        return self.prompt if self.prompt is not None else self.messages[-1]["content"]


@dataclass
class Plan:
    """A protocol's requests for one eval: benchmark → problem id → request."""

    requests: dict[str, dict[str, Request]]
    caps: dict[str, int] | None = None  # the cap per benchmark the metrics report; None: the decoding's
    record: dict | None = None  # what config.json keeps of the plan


class Protocol:
    """The default behaviour of every hook: a protocol overrides what it does differently."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one sentence for `drp eval --help`

    def template(self, prompt_template: str | None) -> tuple[str, str | None]:
        """(label, template) of the user message, from --prompt-template."""
        from drp.evals.templates import resolve_template

        return resolve_template(prompt_template)

    def options(self, common: dict, seeds: int, given: Callable[[str], bool]) -> tuple[dict, int, int | None]:
        """The command's settings under this protocol: (sampling settings, seeds, the protocol's own cap);
        `given(option)` says whether the user set it. Raises UserError for options the protocol refuses."""
        return common, seeds, None

    def settings_record(self, settings: Any) -> dict:
        """Entries of config.json after `protocol` (settings a resumed run must keep or may change)."""
        return {}

    def decoding_record(self, settings: Any) -> dict:
        return settings.decoding.public()

    def plan(
        self,
        benchmarks: list[Benchmark],
        template: str | None,
        settings: Any,
        endpoint: Any,
        counter: Any,
        echo: Callable[[str], None],
    ) -> Plan:
        raise NotImplementedError

    def scores(self, text: str, problem: Problem, verdict: Grade, config: dict) -> dict:
        """Fields a successful sample gets besides math-verify's verdict (`correct` among them replaces it)."""
        return {}

    def with_headline(self, record: dict, config: dict) -> dict:
        """The sample with `correct` set to the folder's headline score (a rerun may rescore it)."""
        return record

    def metrics_notes(self, benchmark: str, config: dict) -> dict:
        """Entries of a benchmark's metrics that say how it was scored."""
        return {}


PROTOCOLS: dict[str, Protocol] = {}


def register(cls: type[Protocol]) -> type[Protocol]:
    """Class decorator: the protocol is known by its `name` from where it is defined."""
    if cls.name in PROTOCOLS:
        raise ProtocolError(f"protocol {cls.name!r} registered twice")
    PROTOCOLS[cls.name] = cls()
    return cls


def protocol_named(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def recorded_protocol(config: dict) -> Protocol:
    """The protocol an eval folder was made with (folders from before protocols, or from elsewhere: the default)."""
    return PROTOCOLS.get(config.get("protocol") or DEFAULT_PROTOCOL) or PROTOCOLS[DEFAULT_PROTOCOL]
