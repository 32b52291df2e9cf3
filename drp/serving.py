"""Serving a student behind an OpenAI-compatible API: `vllm serve` on GPU; llama.cpp's `llama-server` on a CPU
(the student converted to GGUF: drp.llama_cpp), else `transformers serve`.

vLLM is never imported: it pins its own torch and transformers, so it usually lives in another environment
and is only ever run as a program (`--vllm-bin`). The server runs in its own process group, so a Ctrl-C in
the terminal reaches `drp serve` first, which then shuts the server down in order (SIGINT, SIGTERM, SIGKILL).
If `drp serve` itself dies (even by SIGKILL), the kernel sends the server SIGTERM (Linux: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from drp.errors import UserError
from drp.parent_death import preexec_die_with_parent

BACKENDS = ("auto", "vllm", "llama.cpp", "transformers")
# Without vLLM, `auto` serves a local model with llama.cpp when its server is built: on 2 busy CPU cores it
# generated 10.6 tokens/s against transformers' 3.3 (8 requests in flight; benchmarks/serve_backends.py, README).
CPU_DEFAULT = "llama.cpp"


class ServeError(UserError):
    """A server that cannot be built or started; the message says why."""

    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def find_vllm(vllm_bin: str | None) -> str | None:
    if vllm_bin:
        path = shutil.which(vllm_bin) or (vllm_bin if Path(vllm_bin).is_file() else None)
        if path is None:
            raise ServeError(f"--vllm-bin {vllm_bin} is not an executable")
        return path
    return shutil.which("vllm")


def choose_backend(backend: str, vllm_bin: str | None, model: str | None = None) -> str:
    """`auto`: vLLM when installed; else llama.cpp for a local model when llama-server is built; else
    transformers."""
    if backend not in BACKENDS:
        raise ServeError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    if find_vllm(vllm_bin):
        return "vllm"
    if CPU_DEFAULT == "llama.cpp" and model is not None and Path(model).exists() and _llama_server_found():
        return "llama.cpp"
    return "transformers"


def llama_threads() -> int:
    """llama.cpp's threads poll for each other: on a busy CPU (load average at least half the cores) one thread
    generated 5x more tokens/s than two here (10.6 vs 1.95 tokens/s, 8 requests in flight); else every core."""
    cores = os.cpu_count() or 1
    return 1 if os.getloadavg()[0] >= cores / 2 else cores


def _llama_server_found() -> bool:
    from drp.llama_cpp import LlamaCppError, find_server

    try:
        find_server()
    except LlamaCppError:
        return False
    return True


def _transformers_cli() -> list[str]:
    # The one installed next to this Python, so the server runs in drp's own environment.
    beside = Path(sys.executable).parent / "transformers"
    if beside.is_file():
        return [str(beside)]
    return [sys.executable, "-m", "transformers.cli.transformers"]


@dataclass(frozen=True)
class ServerCommand:
    backend: str
    argv: list[str]
    base_url: str
    model_name: str  # what requests must put in `model`


def build_command(
    model: str,
    backend: str,
    host: str,
    port: int,
    vllm_bin: str | None = None,
    extra_args: list[str] | None = None,
    gguf_type: str = "q8_0",
) -> ServerCommand:
    """The server's command line; for llama.cpp the model is first found or converted as GGUF (cached)."""
    backend = choose_backend(backend, vllm_bin, model)
    extra = list(extra_args or [])
    client_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    base_url = f"http://{client_host}:{port}/v1"
    if backend == "vllm":
        binary = find_vllm(vllm_bin)
        if binary is None:
            raise ServeError(
                "vllm is not installed here: install it (pip install 'drp[vllm]', best in its own "
                "environment) and pass --vllm-bin PATH/TO/vllm, or use --backend transformers"
            )
        name = _option_value(extra, "--served-model-name") or model
        argv = [binary, "serve", model, "--host", host, "--port", str(port), *extra]
        return ServerCommand("vllm", argv, base_url, name)
    if backend == "llama.cpp":
        from drp.llama_cpp import find_server, gguf_for

        binary = find_server()
        weights, adapter = gguf_for(model, gguf_type)
        # Requests name the model as given, as with transformers; llama-server's defaults: 4 slots sharing one
        # KV cache of the model's full context, the chat template from the GGUF (--jinja).
        name = _option_value(extra, "--alias") or _option_value(extra, "-a")
        alias = [] if name else ["--alias", model]
        threads = [] if {"-t", "--threads"} & set(extra) else ["-t", str(llama_threads())]
        argv = [
            binary,
            "-m",
            str(weights),
            *(["--lora", str(adapter)] if adapter else []),
            "--host",
            host,
            "--port",
            str(port),
            *alias,
            "--jinja",
            *threads,
            *extra,
        ]
        return ServerCommand("llama.cpp", argv, base_url, name or model)
    # The model given on the command line is pinned: it is loaded before the server answers, and requests
    # must name it exactly.
    argv = [*_transformers_cli(), "serve", model, "--host", host, "--port", str(port), *extra]
    return ServerCommand("transformers", argv, base_url, model)


def _option_value(args: list[str], option: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == option and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def hub_cache_env(environ: dict[str, str] | None = None) -> tuple[dict[str, str], str | None]:
    """The backend's environment with a Hugging Face hub cache folder that exists, and a note when it had
    to move. On a bare machine `~/.cache/huggingface/hub` is missing, and some `transformers serve` versions
    then fail every GET /v1/models (CacheNotFound) although the model loaded."""
    env = dict(os.environ if environ is None else environ)
    home = Path(env.get("HOME") or Path.home())
    hf_home = env.get("HF_HOME") or str(Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "huggingface")
    hub = Path(os.path.expanduser(env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or Path(hf_home) / "hub"))
    note = None
    try:
        hub.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from drp.paths import cache_dir

        fallback = cache_dir() / "huggingface" / "hub"
        fallback.mkdir(parents=True, exist_ok=True)
        note = f"the Hugging Face cache {hub} cannot be created ({exc.strerror}); the server uses {fallback}"
        hub = fallback
    env["HF_HUB_CACHE"] = str(hub)
    return env, note


class ManagedServer:
    """A server process: start it, wait until it lists its model, stop it in order."""

    def __init__(self, command: ServerCommand, log_path: Path | None = None):
        self.command = command
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.note: str | None = None  # something the user should know about how the server was started
        self._log = None

    def start(self) -> ManagedServer:
        _check_port_free(self.command.base_url)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")
        env, self.note = hub_cache_env()
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            self.command.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            preexec_fn=preexec_die_with_parent(),
        )
        return self

    def wait_ready(self, timeout: float = 900.0, poll: float = 0.5) -> None:
        """Until GET /v1/models answers; raises ServeError when the process dies, when the server answers with
        an error (at once: waiting would not mend it), or when time runs out."""
        import httpx

        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise ServeError(
                    f"{self.command.backend} server exited with status {code} before it was ready{self._log_tail()}"
                )
            try:
                reply = httpx.get(f"{self.command.base_url}/models", timeout=5)
            except httpx.HTTPError as exc:  # not listening yet
                last = type(exc).__name__
                time.sleep(poll)
                continue
            if reply.status_code in (502, 503, 504):  # still loading
                last = f"HTTP {reply.status_code}"
            elif reply.status_code != 200:
                self._fail(
                    f"the server answers GET /v1/models with HTTP {reply.status_code}: "
                    f"{_short(reply.text) or '(empty body)'}"
                )
            else:
                served = _served_models(reply)
                if served is None:
                    self._fail(f"the server's GET /v1/models reply is not a model list: {_short(reply.text)}")
                # vLLM lists exactly what it serves; transformers serve lists its cache, with or without the
                # pinned model, so an answer at all means it is ready (it loads the model before listening).
                # llama.cpp lists its alias.
                if self.command.backend == "transformers" or self.command.model_name in served or not served:
                    return
                self._fail(f"the server serves {served}, not {self.command.model_name!r}")
            time.sleep(poll)
        self.stop()
        raise ServeError(f"server not ready after {timeout:.0f} s ({last}){self._log_tail()}")

    def _fail(self, problem: str) -> None:
        self.stop()
        raise ServeError(f"{problem}{self._log_tail()}")

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGINT to the server's process group, then SIGTERM, then SIGKILL; returns its exit status."""
        if self.process is None:
            return None
        for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.process.poll()

    def _log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        if self._log is not None:
            self._log.flush()
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n--- server log (last lines) ---\n" + "\n".join(tail) if tail else ""

    def __enter__(self) -> ManagedServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _check_port_free(base_url: str) -> None:
    """Another server on the port would answer the readiness probe in our server's place: refuse at once."""
    from urllib.parse import urlsplit

    address = urlsplit(base_url)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: a TIME_WAIT is no owner
        try:
            probe.bind((address.hostname, address.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServeError(
                    f"port {address.port} is already in use: stop what listens there or choose "
                    "another --port (0 picks a free one)"
                ) from None


def _served_models(reply) -> list[str] | None:
    try:
        return [m.get("id") for m in reply.json().get("data", [])]
    except (ValueError, AttributeError, TypeError):
        return None


def _short(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
