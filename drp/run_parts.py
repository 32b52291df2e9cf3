"""What a run's config builds before any trace, each once: the policy, the teacher (its endpoints, transport
and usage counter), its price, the token counter and the --reuse runs' stored replies. Each refuses a bad
setting with a RunError (or the policy's own error) before the run is created or changed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from drp.run_config import RunConfig
from drp.run_errors import RunError
from drp.run_place import RunPlace


@dataclass
class RunParts:
    policy: object  # drp.policy.Policy
    teacher: object | None  # drp.teacher.Teacher; None for a policy without an LLM
    price: object | None  # drp.costs.Price; None without a teacher or a known price
    counter: object  # drp.tokens.TokenCounter
    reuse: object | None = None  # drp.reuse's open sources; None without --reuse or a teacher

    def close(self) -> None:
        if self.reuse is not None:
            self.reuse.close()


def load_policy(config: RunConfig):
    from drp.policy import load_policy as load
    from drp.prompting import check_templates

    settings = config.policy
    policy = load(settings.name, [Path(p) for p in settings.prompts_dirs])
    policy = policy.with_overrides(settings.overrides) if settings.overrides else policy
    check_templates(policy)  # an unsafe or broken prompt stops the run before any trace (a PolicyError)
    return policy


def build_teacher(config: RunConfig, policy, place: RunPlace):
    """The teacher the policy needs (None if it needs none), or a RunError saying what is missing."""
    from drp.teacher import Teacher

    settings = config.teacher
    if not policy.uses_llm:
        return None
    if not settings.urls or not settings.model:
        raise RunError(
            f"policy {policy.name!r} needs a teacher LLM. Pass --teacher-url URL --teacher-model NAME "
            "(any OpenAI-compatible endpoint: OpenAI, a `vllm serve` process, or `drp serve MODEL`), "
            "or choose a policy without an LLM: --policy rules (or --policy identity)."
        )
    if settings.mode not in ("online", "batch"):
        raise RunError(f"--teacher-mode is online or batch, not {settings.mode!r}")
    if settings.mode == "batch" and len(settings.urls) > 1:
        raise RunError("batch mode sends its jobs to one endpoint: give one --teacher-url")
    for url in settings.urls:
        check_teacher_url(url)
    client_settings = settings.settings()
    usage_counter = _usage_counter(config)
    if settings.mode == "batch":
        from drp.teacher.batch import BatchTransport

        batch = settings.batch
        transport = BatchTransport(
            client_settings,
            place.folder,
            place.run_id,
            poll_seconds=batch.poll_seconds,
            call_timeout=batch.call_timeout,
            poll_failures=batch.poll_failures,
            job_timeout=batch.job_timeout,
        )
        return Teacher(client_settings, transport, usage_counter=usage_counter)
    return Teacher(client_settings, usage_counter=usage_counter)


def check_teacher_url(url: str) -> None:
    """An http(s) URL with a host, or a RunError before anything is sent (a `file://` URL, a bare host name)."""
    from urllib.parse import urlsplit

    from drp.redaction import redact_url

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises here
        usable = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        usable = False
    if not usable:
        raise RunError(
            f"teacher URL {redact_url(url)!r} is not an http:// or https:// URL with a host "
            "(e.g. http://127.0.0.1:8000/v1)"
        )


def teacher_price(config: RunConfig, teacher):
    """The teacher's price (None without a teacher, or without a price for its model); an unknown name refused."""
    from drp.costs import resolve_price

    if teacher is None:
        return None
    return resolve_price(config.teacher.price, config.teacher.model, config.teacher.prices_file)


def _usage_counter(config: RunConfig):
    """The teacher's tokenizer, to count the calls a server reports no usage for: --teacher-tokenizer, else the
    teacher model's own folder when it is one (a model served from a folder by `drp serve`); else None."""
    from drp.tokens import TokenCounter

    name, model = config.teacher.tokenizer, config.teacher.model
    folder = Path(model or "")
    if name is None and model and any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        name = str(folder)
    return TokenCounter(name) if name else None


def token_counter(config: RunConfig):
    from drp.tokens import TokenCounter

    try:
        return TokenCounter(config.tokenizer)
    except ValueError as exc:  # a tokenizer that cannot be loaded: said before any run exists
        raise RunError(str(exc)) from None


def reuse_sources(config: RunConfig, place: RunPlace, teacher):
    """The stored replies of the --reuse runs (None without any, or without a teacher to stand in for). A run
    never reuses itself: its calls are rewritten as it goes (and replaced whole by --overwrite)."""
    from drp.reuse import open_sources

    if not config.teacher.reuse or teacher is None:
        return None
    for source in config.teacher.reuse:
        if same_file(source, str(place.folder)):
            raise RunError(
                f"--reuse {Path(source).name}: a run cannot reuse its own replies; reuse another run "
                "(copy this one under a new id first to rerun it)"
            )
    return open_sources(list(config.teacher.reuse))


def same_file(a: str, b: str) -> bool:
    try:
        return Path(a).expanduser().samefile(Path(b).expanduser())
    except OSError:
        return False
