"""`drp serve` with the real `transformers serve` and SmolLM2 on a bare machine: a HOME with no caches at all,
then a SIGKILL of `drp serve` itself, which must take the model server down with it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

pytestmark = pytest.mark.slow


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_serve_on_a_bare_home_then_sigkill(smollm2, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME")
    }
    env["HOME"] = str(home)
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "drp.cli",
            "serve",
            str(smollm2),
            "--backend",
            "transformers",
            "--port",
            "0",
            "--log",
            str(tmp_path / "server.log"),
            "--ready-timeout",
            "300",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = [serve.stdout.readline().strip() for _ in range(2)]
        assert lines[0].startswith("ready: "), (lines, serve.stderr.read() if serve.poll() is not None else "")
        url = lines[0].removeprefix("ready: ")
        assert (home / ".cache" / "huggingface" / "hub").is_dir()
        assert httpx.get(f"{url}/models", timeout=30).status_code == 200
        reply = httpx.post(
            f"{url}/chat/completions",
            timeout=120,
            json={"model": str(smollm2), "max_tokens": 4, "messages": [{"role": "user", "content": "Say hi."}]},
        )
        assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
        backends = children_of(serve.pid)
        assert len(backends) == 1
    finally:
        serve.kill()  # SIGKILL: drp serve cannot stop the server itself
        serve.wait()
    port = urlparse(url).port
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (listening(port) or Path(f"/proc/{backends[0]}").exists()):
        time.sleep(0.5)
    assert not listening(port) and not Path(f"/proc/{backends[0]}").exists()
