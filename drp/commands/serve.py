"""`drp serve`: an OpenAI-compatible server for a student (vLLM on GPU; llama.cpp or transformers on CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drp.errors import EXIT_FAILURES


def serve(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model folder, hub id, or a pulled model's short name.")],
    backend: Annotated[
        str,
        typer.Option(
            help="auto (vLLM when installed, else llama.cpp for a local model when llama-server is built, else "
            "transformers), vllm, llama.cpp, transformers."
        ),
    ] = "auto",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8000,
    vllm_bin: Annotated[str | None, typer.Option(help="The `vllm` program, e.g. from its own virtualenv.")] = None,
    gguf_type: Annotated[
        str,
        typer.Option(
            help="llama.cpp: the GGUF type a model folder is converted to (q8_0, f16, bf16, f32); cached in its gguf/."
        ),
    ] = "q8_0",
    log: Annotated[Path | None, typer.Option(help="Write the server's output here instead of the terminal.")] = None,
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for the model to load.")] = 900.0,
) -> None:
    """Start the server, wait until it answers, print its base URL; Ctrl-C stops it cleanly.

    Arguments after `--` go to the backend as they are, e.g. `drp serve M -- --tensor-parallel-size 2`.
    """
    import signal

    from drp.models import resolve
    from drp.outputs import check_output
    from drp.serving import ManagedServer, ServeError, build_command, free_port

    if log is not None:
        check_output(log, "serve-log", flag="--log")

    command = build_command(resolve(model), backend, host, port or free_port(host), vllm_bin, ctx.args, gguf_type)
    server = ManagedServer(command, log)

    def terminate(signum, frame):  # `kill PID` shuts down as politely as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    # Started with `&` from a script, SIGINT arrives ignored; Ctrl-C / kill -INT must still stop us cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    typer.echo(f"starting {command.backend}: {' '.join(command.argv)}", err=True)
    try:
        server.start()
        if server.note:
            typer.echo(f"note: {server.note}", err=True)
        server.wait_ready(ready_timeout)
        typer.echo(f"ready: {command.base_url}")
        typer.echo(f"model: {command.model_name}")
        typer.echo(f"  export DRP_MODEL_URL={command.base_url} DRP_MODEL={command.model_name}")
        typer.echo("Ctrl-C to stop", err=True)
        code = server.process.wait()
    except ServeError as exc:  # the server itself failed: not the user's input
        server.stop()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURES) from None
    except KeyboardInterrupt:
        typer.echo("stopping the server...", err=True)
        code = server.stop()
        typer.echo(f"stopped (server exit status {code})", err=True)
        return
    typer.echo(f"error: the server exited on its own with status {code}", err=True)
    raise typer.Exit(EXIT_FAILURES)


def register(app: typer.Typer) -> None:
    app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(serve)
