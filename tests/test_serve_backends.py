"""`drp serve` backend choice, commands, and start-up faults with real processes (vLLM never imported)."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drp.cli import app
from drp.serving import ManagedServer, ServeError, build_command, choose_backend


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
    assert command.argv[-8:] == ["serve", "/models/student", "--host", "0.0.0.0", "--port", "8123",
                                 "--dtype", "bfloat16"]
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
    command = build_command("org/model", "auto", "127.0.0.1", 9000, vllm_bin=str(vllm),
                            extra_args=["--served-model-name", "student", "--tensor-parallel-size", "2"])
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
    slow = executable(tmp_path / "vllm", f'echo $$ > {marker}; exec sleep 60')
    command = build_command("m", "vllm", "127.0.0.1", 1, vllm_bin=str(slow))
    server = ManagedServer(command, tmp_path / "log").start()
    with pytest.raises(ServeError, match="not ready after 1 s"):
        server.wait_ready(timeout=1, poll=0.1)
    assert server.process.poll() is not None  # stopped, not left behind
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
