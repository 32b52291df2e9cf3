"""A run's settings, typed: built once by `drp run` from its options and passed down whole.

On disk (config.json's `options`, the runs table's `config`) a run's settings stay one flat mapping named like
the command's options, which stats, reports and older drp versions read; `OPTIONS` maps each of those names to
its typed place, and `RunConfig.from_options` reads any run's mapping back, the keys of older runs included.
`RESUMABLE` names what `drp run --resume` may change: every other setting is the run's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace

from drp.input_traces import DEFAULT_MAX_RECORD_CHARS

DEFAULT_POLICY = "skill-aware"


@dataclass(frozen=True)
class SourceConfig:
    """What is read: the input, how its fields map to ours, how much of it."""

    path: str
    field_map: dict[str, str] = field(default_factory=dict)
    split: str = "train"
    limit: int | None = None
    max_record_chars: int = DEFAULT_MAX_RECORD_CHARS


@dataclass(frozen=True)
class PolicyConfig:
    name: str | None = None  # None: skill-aware for a new run, the run's own policy on --resume
    prompts_dirs: tuple[str, ...] = ()
    overrides: dict[str, object] = field(default_factory=dict)
    allow_change: bool = False  # resume under a policy that differs from the run's (both are recorded)


@dataclass(frozen=True)
class BatchConfig:
    """The OpenAI Batch API's settings (drp.teacher.batch), for --teacher-mode batch."""

    poll_seconds: float = 30.0
    call_timeout: float | None = None  # total deadline per Files/Batches API call (None: drp.teacher.batch's)
    poll_failures: int = 10  # failed polls in a row that end a batch job
    job_timeout: float = 26 * 3600.0  # seconds a batch job may take from its submission


@dataclass(frozen=True)
class TeacherConfig:
    """The teacher LLM: its endpoints, how it is asked, what it costs, and the runs whose replies stand in."""

    urls: tuple[str, ...] = ()  # one or more endpoints (requests go to the least busy)
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    structured_output: str = "json_schema"
    timeout: float | None = None  # total deadline per request; None: sized from the request's max_tokens
    max_retries: int = 2
    mode: str = "online"  # or "batch"
    batch: BatchConfig = field(default_factory=BatchConfig)
    price: str | None = None  # IN,OUT per million tokens or a price table name (drp.costs)
    prices_file: str | None = None
    tokenizer: str | None = None  # counts teacher calls that come without usage (None: the model's folder)
    reuse: tuple[str, ...] = ()  # run folders whose stored teacher replies answer equal requests

    def settings(self):
        """The client's settings (drp.teacher); call it only with endpoints."""
        from drp.teacher import TeacherSettings

        first, *others = self.urls
        return TeacherSettings(
            url=first,
            extra_urls=tuple(others),
            model=self.model,
            api_key_env=self.api_key_env,
            structured_output=self.structured_output,
            timeout=self.timeout,
            max_retries=self.max_retries,
        )


@dataclass(frozen=True)
class ExecutionConfig:
    """How this invocation runs the traces, and what it does with a run already there."""

    concurrency: int = 8
    workers: int = 1
    resume: bool = False
    overwrite: bool = False
    retry_failed: bool = True  # on resume, traces that failed on a teacher error are tried again


@dataclass(frozen=True)
class RunConfig:
    source: SourceConfig
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    tokenizer: str | None = None  # counts the traces' tokens (path or hub id; None: the R1-Distill-Qwen one)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    def to_options(self, run_id: str) -> dict:
        """The flat mapping stored in config.json (URLs as given: the writer masks their credentials)."""
        options = {"run_id": run_id}
        for key, (part, name) in OPTIONS.items():
            value = getattr(getattr(self, part) if part else self, name)
            options[key] = list(value) if isinstance(value, tuple) else value
        for key, name in BATCH_OPTIONS.items():
            options[key] = getattr(self.teacher.batch, name)
        return options

    @classmethod
    def from_options(cls, options: dict) -> RunConfig:
        """A config from a flat mapping (a run's stored options, or a script's own): keys it lacks take their
        defaults, keys it does not know are left out, and older runs' keys are read as today's."""
        options = dict(options)
        legacy_url = options.pop("teacher_url", None)  # runs stored before several endpoints were possible
        if "teacher_urls" not in options:
            options["teacher_urls"] = [legacy_url] if legacy_url else []
        parts: dict[str, dict] = {"source": {}, "policy": {}, "teacher": {}, "execution": {}, "": {}}
        for key, (part, name) in OPTIONS.items():
            if key in options:
                value = options[key]
                parts[part][name] = tuple(value) if _is_tuple(part, name) and value is not None else value
        batch = {name: options[key] for key, name in BATCH_OPTIONS.items() if key in options}
        return cls(
            source=SourceConfig(**parts["source"]),
            policy=PolicyConfig(**parts["policy"]),
            teacher=TeacherConfig(**parts["teacher"], batch=BatchConfig(**batch)),
            execution=ExecutionConfig(**parts["execution"]),
            **parts[""],
        )

    def with_options(self, **changes) -> RunConfig:
        """This config with some settings changed, named as stored (`limit=3`, `teacher_mode="online"`)."""
        return RunConfig.from_options({**self.to_options(""), **changes})


# Stored option name → (part of RunConfig, field there); "" is RunConfig itself.
OPTIONS: dict[str, tuple[str, str]] = {
    "source": ("source", "path"),
    "policy": ("policy", "name"),
    "teacher_urls": ("teacher", "urls"),
    "teacher_model": ("teacher", "model"),
    "teacher_api_key_env": ("teacher", "api_key_env"),
    "structured_output": ("teacher", "structured_output"),
    "teacher_timeout": ("teacher", "timeout"),
    "teacher_max_retries": ("teacher", "max_retries"),
    "teacher_mode": ("teacher", "mode"),
    "teacher_price": ("teacher", "price"),
    "prices_file": ("teacher", "prices_file"),
    "limit": ("source", "limit"),
    "concurrency": ("execution", "concurrency"),
    "workers": ("execution", "workers"),
    "resume": ("execution", "resume"),
    "overwrite": ("execution", "overwrite"),
    "tokenizer": ("", "tokenizer"),
    "field_map": ("source", "field_map"),
    "split": ("source", "split"),
    "prompts_dirs": ("policy", "prompts_dirs"),
    "policy_overrides": ("policy", "overrides"),
    "allow_policy_change": ("policy", "allow_change"),
    "retry_failed": ("execution", "retry_failed"),
    "max_record_chars": ("source", "max_record_chars"),
    "teacher_tokenizer": ("teacher", "tokenizer"),
    "reuse": ("teacher", "reuse"),
}
BATCH_OPTIONS: dict[str, str] = {  # stored option name → BatchConfig field
    "batch_poll_seconds": "poll_seconds",
    "batch_call_timeout": "call_timeout",
    "batch_poll_failures": "poll_failures",
    "batch_job_timeout": "job_timeout",
}
_PARTS = {"source": SourceConfig, "policy": PolicyConfig, "teacher": TeacherConfig, "execution": ExecutionConfig}


def _is_tuple(part: str, name: str) -> bool:
    kind = {f.name: f.type for f in fields(_PARTS.get(part, RunConfig))}.get(name)
    return isinstance(kind, str) and kind.startswith("tuple")


# What `drp run --resume` may change, and how; every other setting is the run's own, from its config.json.
GIVEN = "as given"  # this invocation's value, always
IF_GIVEN = "when given"  # this invocation's value when it gives one, else the run's
MERGED = "merged"  # the run's mapping, updated with this invocation's
IF_MOVED = "when moved"  # the run's own, unless it is gone: then the one given (checked by the caller)
RESUMABLE: dict[str, str] = {
    "concurrency": GIVEN,
    "workers": GIVEN,
    "limit": GIVEN,
    "retry_failed": GIVEN,
    "allow_policy_change": GIVEN,
    "reuse": GIVEN,
    "teacher_urls": IF_GIVEN,  # credentials are never stored: a URL that had some must be given again
    "teacher_price": IF_GIVEN,
    "policy_overrides": MERGED,  # --set: a policy change, refused unless allowed
    "source": IF_MOVED,
}


def resumed(saved: RunConfig, given: RunConfig, moved_source: Callable[[str, str], str]) -> RunConfig:
    """The config a resume runs with: the run's own but for what RESUMABLE lets this invocation change.
    `moved_source(saved, given)` says which input the run reads now."""
    before, now = saved.to_options(""), given.to_options("")
    options = {**before, "resume": True, "overwrite": False}
    for key, how in RESUMABLE.items():
        if how == GIVEN or (how == IF_GIVEN and now[key]):
            options[key] = now[key]
        elif how == MERGED:
            options[key] = {**(before[key] or {}), **now[key]}
        elif how == IF_MOVED:
            options[key] = moved_source(before[key], now[key])
    return RunConfig.from_options(options)


def with_default_policy(config: RunConfig) -> RunConfig:
    """A new run's config: skill-aware unless a policy was named."""
    if config.policy.name is not None:
        return config
    return replace(config, policy=replace(config.policy, name=DEFAULT_POLICY))
