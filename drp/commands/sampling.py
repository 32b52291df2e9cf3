"""What `drp eval` and `drp generate` share: their option declarations (typer `Annotated` types, declared
once on both commands by `@sampling_command`), the settings built from them, and how they exit."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Annotated

import typer

from drp.commands.option_checks import above_zero
from drp.endpoint import RETRY_POLICY
from drp.errors import EXIT_FAILURES, EXIT_INTERRUPTED, UserError

ModelUrl = Annotated[
    str,
    typer.Option(
        "--model-url", envvar="DRP_MODEL_URL", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."
    ),
]
ModelName = Annotated[
    str,
    typer.Option(
        "--model", envvar="DRP_MODEL", help="Model name the server expects (for transformers serve: its path)."
    ),
]
Limit = Annotated[int | None, typer.Option(min=1, help="First N problems (of each benchmark).")]
DataDir = Annotated[Path | None, typer.Option(help="Local benchmark files (default: ../shared/data).")]
Source = Annotated[str, typer.Option(help="For benchmark names: auto (local file if present, else hub), local or hub.")]
PromptTemplate = Annotated[
    str | None,
    typer.Option(help="Student family (r1-distill-qwen, qwen-math, plain), a file, or a template with {problem}."),
]
Tokenizer = Annotated[
    str | None,
    typer.Option(help="Tokenizer that counts response tokens (default: the model folder's, else R1-Distill-Qwen)."),
]
# The defaults (0.6, 0.95) are what DeepSeek recommends for R1 and its distilled students, drp's students.
Temperature = Annotated[
    float,
    typer.Option(
        min=0.0, help="Sampling temperature (0.6 with top-p 0.95: DeepSeek's recommendation for R1-style students)."
    ),
]
TopP = Annotated[float, typer.Option(min=0.0, max=1.0, help="Nucleus sampling top-p.")]
MaxTokens = Annotated[int, typer.Option(min=1, help="Generation cap (reported with how often it is hit).")]
Concurrency = Annotated[int, typer.Option(min=1, help="Requests in flight.")]
Timeout = Annotated[float, typer.Option(help="Seconds per request.", callback=above_zero)]
Retries = Annotated[int, typer.Option(min=0, help=f"Retries per request: {RETRY_POLICY}.")]
ApiKeyEnv = Annotated[
    str, typer.Option(help="Environment variable holding the API key (the key itself is never a flag).")
]
ExtraBody = Annotated[str | None, typer.Option(help="JSON merged into every request body.")]
MaxConsecutiveErrors = Annotated[int, typer.Option(min=0, help="Stop after this many failures in a row (0: never).")]
Overwrite = Annotated[bool, typer.Option(help="Delete earlier samples at --out first (default: resume).")]
Quiet = Annotated[bool, typer.Option(help="No progress bar.")]

EXIT_STATUS_HELP = (
    "Exit status: 0 done; 1 some samples failed (rerun to retry only those); 2 bad input; "
    "3 endpoint down; 130 interrupted (rerun to resume)."
)


SHARED_OPTIONS = (  # name, declaration, default
    ("model_url", ModelUrl, inspect.Parameter.empty),
    ("model", ModelName, inspect.Parameter.empty),
    ("limit", Limit, None),
    ("data_dir", DataDir, None),
    ("source", Source, "auto"),
    ("prompt_template", PromptTemplate, None),
    ("tokenizer", Tokenizer, None),
    ("temperature", Temperature, 0.6),
    ("top_p", TopP, 0.95),
    ("max_tokens", MaxTokens, 16384),
    ("concurrency", Concurrency, 8),
    ("timeout", Timeout, 1800.0),
    ("retries", Retries, 2),
    ("api_key_env", ApiKeyEnv, "OPENAI_API_KEY"),
    ("extra_body", ExtraBody, None),
    ("max_consecutive_errors", MaxConsecutiveErrors, 20),
    ("overwrite", Overwrite, False),
    ("quiet", Quiet, False),
)


def sampling_command(command):
    """Add SHARED_OPTIONS to a command's own options; it receives them as `common`: the SamplingSettings
    fields they set (endpoint, decoding, problems' source, how requests run)."""
    own = inspect.signature(command, eval_str=True)
    shared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=declaration, default=default)
        for name, declaration, default in SHARED_OPTIONS
    ]

    @functools.wraps(command)
    def with_shared_options(**options):
        common = _settings_fields(**{name: options.pop(name) for name, _, _ in SHARED_OPTIONS})
        return command(common=common, **options)

    # The endpoint options first, then the command's own, then the rest (the order `--help` lists them in).
    mine = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own.parameters.values() if p.name != "common"]
    with_shared_options.__signature__ = own.replace(parameters=[*shared[:2], *mine, *shared[2:]])
    return with_shared_options


def _settings_fields(
    model_url: str,
    model: str,
    limit: int | None,
    data_dir: Path | None,
    source: str,
    prompt_template: str | None,
    tokenizer: str | None,
    temperature: float,
    top_p: float,
    max_tokens: int,
    concurrency: int,
    timeout: float,
    retries: int,
    api_key_env: str,
    extra_body: str | None,
    max_consecutive_errors: int,
    overwrite: bool,
    quiet: bool,
) -> dict:
    from drp.endpoint import EndpointSettings
    from drp.paths import shared_dir
    from drp.sampling.client import Decoding

    if data_dir is None and shared_dir() is not None:
        data_dir = shared_dir() / "data"
    return {
        "endpoint": EndpointSettings(model_url, model, api_key_env=api_key_env, timeout=timeout, max_retries=retries),
        "decoding": Decoding(temperature, top_p, max_tokens, parse_extra_body(extra_body)),
        "limit": limit,
        "data_dir": data_dir,
        "source": source,
        "prompt_template": prompt_template,
        "tokenizer": tokenizer,
        "concurrency": concurrency,
        "max_consecutive_errors": max_consecutive_errors,
        "progress": not quiet,
        "overwrite": overwrite,
    }


def parse_extra_body(text: str | None) -> dict:
    import json

    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--extra-body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UserError("--extra-body must be a JSON object")
    return value


def echo_progress(line: str) -> None:
    from drp.terminal import echo

    echo(line, err=True)  # lines quote benchmark names and endpoint errors


def exit_for(failed: int, aborted: str | None, interrupted: bool, what: str) -> None:
    if interrupted:
        typer.echo(f"interrupted: finished samples are saved; rerun the same {what} command to resume", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    if aborted:
        typer.echo(f"stopped early: {aborted}; rerun the same {what} command to retry", err=True)
        raise typer.Exit(EXIT_FAILURES)
    if failed:
        typer.echo(
            f"{failed} samples failed (recorded with their error); rerun the same {what} command to retry them",
            err=True,
        )
        raise typer.Exit(EXIT_FAILURES)
