"""`drp serve` backend choice, commands, and start-up faults with real processes (vLLM never imported)."""

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import gone
from typer.testing import CliRunner

from drp.cli import app
from drp.serving import ManagedServer, ServeError, build_command, choose_backend, hub_cache_env


def executable(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def no_vllm_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


def test_vllm_is_never_imported():
    code = "import drp.cli, drp.serving, drp.commands.serve, sys; print('vllm' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_transformers_command(no_vllm_on_path):
    command = build_command("/models/student", "auto", "0.0.0.0", 8123, extra_args=["--dtype", "bfloat16"])
    assert command.backend == "transformers" and command.model_name == "/models/student"
    assert command.base_url == "http://127.0.0.1:8123/v1"  # 0.0.0.0 listens everywhere; clients use loopback
    assert command.argv[-8:] == [
        "serve",
        "/models/student",
        "--host",
        "0.0.0.0",
        "--port",
        "8123",
        "--dtype",
        "bfloat16",
    ]
    assert Path(command.argv[0]).parent == Path(sys.executable).parent  # drp's own environment


def test_vllm_choice(tmp_path, monkeypatch, no_vllm_on_path):
    assert choose_backend("auto", None) == "transformers"
    with pytest.raises(ServeError, match="vllm is not installed here.*--vllm-bin"):
        build_command("m", "vllm", "127.0.0.1", 8000)
    with pytest.raises(ServeError, match="not an executable"):
        build_command("m", "vllm", "127.0.0.1", 8000, vllm_bin=str(tmp_path / "missing"))
    with pytest.raises(ServeError, match="unknown backend"):
        choose_backend("llamacpp", None)
    bin_dir = tmp_path / "venv-vllm" / "bin"
    bin_dir.mkdir(parents=True)
    vllm = executable(bin_dir / "vllm", "exit 0")
    command = build_command(
        "org/model",
        "auto",
        "127.0.0.1",
        9000,
        vllm_bin=str(vllm),
        extra_args=["--served-model-name", "student", "--tensor-parallel-size", "2"],
    )
    assert command.backend == "vllm" and command.model_name == "student"
    assert command.argv[:3] == [str(vllm), "serve", "org/model"] and command.argv[-1] == "2"
    monkeypatch.setenv("PATH", str(bin_dir))
    assert choose_backend("auto", None) == "vllm"  # found on PATH


def test_cli_without_vllm_exits_2(no_vllm_on_path):
    result = CliRunner().invoke(app, ["serve", "m", "--backend", "vllm"])
    assert result.exit_code == 2 and "vllm is not installed here" in result.output


def test_server_that_dies_at_start_is_reported_with_its_log(tmp_path):
    fake = executable(tmp_path / "vllm", 'echo "CUDA error: no device" >&2; exit 7')
    log = tmp_path / "server.log"
    result = CliRunner().invoke(app, ["serve", "m", "--vllm-bin", str(fake), "--port", "0", "--log", str(log)])
    assert result.exit_code == 1
    assert "exited with status 7 before it was ready" in result.output
    assert "CUDA error: no device" in result.output  # the log tail is shown


def test_server_that_never_gets_ready_is_stopped(tmp_path):
    marker = tmp_path / "pid"
    slow = executable(tmp_path / "vllm", f"echo $$ > {marker}; exec sleep 60")
    command = build_command("m", "vllm", "127.0.0.1", 1, vllm_bin=str(slow))
    server = ManagedServer(command, tmp_path / "log").start()
    with pytest.raises(ServeError, match="not ready after 1 s"):
        server.wait_ready(timeout=1, poll=0.1)
    assert server.process.poll() is not None  # stopped, not left behind
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# A real HTTP server standing in for a backend: `vllm serve MODEL --host H --port P` as vLLM is called. It
# writes its pid next to itself and answers GET /v1/models with the status and body given in its name's file.
FAKE_BACKEND = """#!{python}
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

here = Path(__file__).parent
(here / "backend.pid").write_text(str(os.getpid()))
status, body = json.loads((here / "answer.json").read_text())
port = int(sys.argv[sys.argv.index("--port") + 1])

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
    def log_message(self, *args):
        sys.stderr.write("GET /v1/models %d\\n" % status)

HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def fake_backend(folder: Path, status: int, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "answer.json").write_text(json.dumps([status, body]))
    script = folder / "vllm"
    script.write_text(FAKE_BACKEND.format(python=sys.executable))
    script.chmod(0o755)
    return script


def test_an_error_answer_from_the_backend_stops_serve_at_once(tmp_path):
    """transformers 5.17 on a bare machine: the model loads, then every GET /v1/models is a 500."""
    backend = fake_backend(
        tmp_path / "bin", 500, "CacheNotFound: Cache directory not found: /root/.cache/huggingface/hub"
    )
    started = time.monotonic()
    result = CliRunner().invoke(
        app,
        [
            "serve",
            "student",
            "--vllm-bin",
            str(backend),
            "--port",
            "0",
            "--log",
            str(tmp_path / "server.log"),
            "--ready-timeout",
            "120",
        ],
    )
    assert time.monotonic() - started < 20  # not the 120 s timeout
    assert result.exit_code == 1
    assert "answers GET /v1/models with HTTP 500: CacheNotFound: Cache directory not found" in result.output
    assert "GET /v1/models 500" in result.output  # the server's log tail comes with it
    assert gone(int((tmp_path / "bin" / "backend.pid").read_text()), within=10)


def test_a_vllm_serving_another_model_is_reported_at_once(tmp_path):
    listing = json.dumps({"object": "list", "data": [{"id": "someone-else", "object": "model"}]})
    backend = fake_backend(tmp_path / "bin", 200, listing)
    result = CliRunner().invoke(
        app,
        [
            "serve",
            "student",
            "--vllm-bin",
            str(backend),
            "--port",
            "0",
            "--log",
            str(tmp_path / "server.log"),
            "--ready-timeout",
            "120",
        ],
    )
    assert result.exit_code == 1 and "serves ['someone-else'], not 'student'" in result.output


def test_the_backend_dies_with_a_killed_drp_serve(tmp_path):
    listing = json.dumps({"object": "list", "data": [{"id": "student", "object": "model"}]})
    backend = fake_backend(tmp_path / "bin", 200, listing)
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "drp.cli",
            "serve",
            "student",
            "--vllm-bin",
            str(backend),
            "--port",
            "0",
            "--log",
            str(tmp_path / "server.log"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert serve.stdout.readline().startswith("ready: http://127.0.0.1:")
        pid = int((tmp_path / "bin" / "backend.pid").read_text())
        os.kill(pid, 0)  # serving
    finally:
        serve.kill()  # SIGKILL: drp serve gets no chance to stop it
        serve.wait()
    assert gone(pid, within=10)


def test_the_hub_cache_folder_is_made_for_the_backend(tmp_path, monkeypatch):
    env, note = hub_cache_env({"HOME": str(tmp_path / "home")})
    assert env["HF_HUB_CACHE"] == str(tmp_path / "home" / ".cache" / "huggingface" / "hub") and note is None
    assert Path(env["HF_HUB_CACHE"]).is_dir()
    env, _ = hub_cache_env({"HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf")})
    assert env["HF_HUB_CACHE"] == str(tmp_path / "hf" / "hub") and (tmp_path / "hf" / "hub").is_dir()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("DRP_CACHE_DIR", str(tmp_path / "drp-cache"))
    env, note = hub_cache_env({"HOME": str(tmp_path / "home"), "HF_HUB_CACHE": str(blocked / "hub")})
    assert env["HF_HUB_CACHE"] == str(tmp_path / "drp-cache" / "huggingface" / "hub")
    assert "cannot be created" in note and Path(env["HF_HUB_CACHE"]).is_dir()
