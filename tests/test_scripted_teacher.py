"""The scripted teacher is a real HTTP server: check it against the real openai and langchain clients."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ValidationError

from drp.testing.scripted_teacher import (
    Drop,
    Error,
    Hang,
    Raw,
    ScriptedTeacher,
    Sequence,
    Text,
    ToolCall,
    free_port,
    refused_url,
)


class Verdict(BaseModel):
    accept: bool
    reason: str


def client(teacher: ScriptedTeacher, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=teacher.url, api_key="test-key", **kw)


def chat(url: str, **kw) -> ChatOpenAI:
    return ChatOpenAI(base_url=url, api_key="test-key", model="teacher-x", **kw)


def test_text_reply_with_usage_and_recorded_request():
    with ScriptedTeacher(lambda req: Text(f"echo {req['messages'][-1]['content']}")) as teacher:
        out = client(teacher).chat.completions.create(
            model="teacher-x", messages=[{"role": "user", "content": "one two three"}], temperature=0.3, max_tokens=50
        )
    assert out.choices[0].message.content == "echo one two three"
    assert out.choices[0].finish_reason == "stop"
    assert out.model == "teacher-x"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (3, 4, 7)
    assert teacher.requests == [
        {
            "model": "teacher-x",
            "messages": [{"role": "user", "content": "one two three"}],
            "temperature": 0.3,
            "max_tokens": 50,
        }
    ]


def test_raw_completion_endpoint_and_a_chat_only_server():
    with ScriptedTeacher(
        lambda req: Text(f" so {len(req['prompt'].split())} words.\n\nQ:", finish_reason="stop")
    ) as teacher:
        out = client(teacher).completions.create(model="m", prompt="Q: two words\nA:", max_tokens=9, stop=["Q:"])
    assert out.object == "text_completion"
    assert out.choices[0].text == " so 4 words.\n\nQ:" and out.choices[0].finish_reason == "stop"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (4, 4)
    assert teacher.requests[0]["stop"] == ["Q:"] and "messages" not in teacher.requests[0]
    with ScriptedTeacher(lambda req: Text("never"), completions=False) as chat_only:
        with pytest.raises(openai.NotFoundError):
            client(chat_only, max_retries=0).completions.create(model="m", prompt="Q: x\nA:", max_tokens=5)
        assert chat_only.requests == []


def test_explicit_token_counts_and_models_route():
    with ScriptedTeacher(lambda req: Text("hi", prompt_tokens=111, completion_tokens=7)) as teacher:
        c = client(teacher)
        out = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert [m.id for m in c.models.list()] == ["scripted-teacher"]
        assert httpx.post(teacher.url + "/nowhere", json={}).status_code == 404
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (111, 7)


def test_langchain_plain_invoke():
    with ScriptedTeacher(lambda req: Text("plain answer")) as teacher:
        msg = chat(teacher.url, max_retries=0).invoke("hello there")
    assert msg.content == "plain answer"
    assert msg.usage_metadata["input_tokens"] == 2
    assert teacher.requests[0]["messages"] == [{"role": "user", "content": "hello there"}]


def test_langchain_structured_output_json_schema():
    reply = Text(json.dumps({"accept": False, "reason": "answer changed"}))
    with ScriptedTeacher(lambda req: reply) as teacher:
        runnable = chat(teacher.url, max_retries=0).with_structured_output(
            Verdict, method="json_schema", include_raw=True
        )
        out = runnable.invoke("verify this")
    assert out["parsing_error"] is None
    assert out["parsed"] == Verdict(accept=False, reason="answer changed")
    sent = teacher.requests[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Verdict"


def test_langchain_structured_output_json_schema_unparseable_raises():
    # Worth knowing for the agents: with method="json_schema" langchain-openai parses inside the openai client,
    # so a non-JSON reply RAISES from invoke() even with include_raw=True (parsing_error stays unused).
    with ScriptedTeacher(lambda req: Text("not json at all")) as teacher:
        runnable = chat(teacher.url, max_retries=0).with_structured_output(
            Verdict, method="json_schema", include_raw=True
        )
        with pytest.raises(ValidationError, match="Invalid JSON"):
            runnable.invoke("verify this")
    assert len(teacher.requests) == 1


def test_langchain_function_calling_tool_call():
    with ScriptedTeacher(lambda req: ToolCall("Verdict", {"accept": True, "reason": "same answer"})) as teacher:
        out = (
            chat(teacher.url, max_retries=0)
            .with_structured_output(Verdict, method="function_calling", include_raw=True)
            .invoke("verify this")
        )
    assert out["parsed"] == Verdict(accept=True, reason="same answer")
    assert out["raw"].response_metadata["finish_reason"] == "tool_calls"
    request = teacher.requests[0]
    assert request["tools"][0]["function"]["name"] == "Verdict"
    assert request["tool_choice"]["function"]["name"] == "Verdict"


def test_rate_limit_retry_after_then_success():
    script = Sequence(Error(429, headers={"Retry-After": "0.2"}), Text("after the wait"))
    with ScriptedTeacher(script) as teacher:
        start = time.perf_counter()
        msg = chat(teacher.url, max_retries=2).invoke("hi")
        waited = time.perf_counter() - start
    assert msg.content == "after the wait"
    assert len(teacher.requests) == 2
    assert waited >= 0.2  # the client honoured Retry-After


def test_server_error_without_retries_raises():
    with ScriptedTeacher(lambda req: Error(500)) as teacher:
        with pytest.raises(openai.InternalServerError) as info:
            chat(teacher.url, max_retries=0).invoke("hi")
    assert info.value.status_code == 500
    assert "scripted error 500" in str(info.value)
    assert len(teacher.requests) == 1


def test_custom_error_body_is_passed_through():
    body = {"error": {"message": "context too long", "type": "invalid_request_error", "code": "ctx"}}
    with ScriptedTeacher(lambda req: Error(400, body=body)) as teacher:
        with pytest.raises(openai.BadRequestError) as info:
            client(teacher, max_retries=0).chat.completions.create(model="m", messages=[])
    assert info.value.code == "ctx"


def test_hang_trips_client_timeout_and_server_survives():
    script = Sequence(Hang(2.0), Text("alive"))
    with ScriptedTeacher(script) as teacher:
        start = time.perf_counter()
        with pytest.raises(openai.APITimeoutError):
            chat(teacher.url, max_retries=0, timeout=0.3).invoke("hi")
        assert time.perf_counter() - start < 1.5
        # the hung handler is still sleeping; the server keeps answering others
        assert chat(teacher.url, max_retries=0).invoke("again").content == "alive"
        stopping = time.perf_counter()
    # stop() returns promptly even though a handler was mid-hang
    assert time.perf_counter() - stopping < 1.0
    assert len(teacher.requests) == 2


def test_drop_and_connection_refused_are_connection_errors():
    with ScriptedTeacher(lambda req: Drop()) as teacher:
        with pytest.raises(openai.APIConnectionError):
            client(teacher, max_retries=0).chat.completions.create(model="m", messages=[])
    with pytest.raises(openai.APIConnectionError):
        openai.OpenAI(base_url=refused_url(), api_key="k", max_retries=0).chat.completions.create(
            model="m", messages=[]
        )
    with socket.socket() as s:
        with pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", int(refused_url().split(":")[2].split("/")[0])))


def test_raw_body_and_responder_exception():
    with ScriptedTeacher(lambda req: Raw("{broken")) as teacher:
        with pytest.raises(json.JSONDecodeError):  # the body reaches the client as sent, unparseable
            client(teacher, max_retries=0).chat.completions.create(model="m", messages=[])

    def broken(req):
        raise KeyError("no script for this")

    with ScriptedTeacher(broken) as teacher:
        with pytest.raises(openai.InternalServerError, match="KeyError"):
            client(teacher, max_retries=0).chat.completions.create(model="m", messages=[])
    assert len(teacher.errors) == 1


def test_sequence_repeats_last_and_is_thread_safe():
    seq = Sequence(Text("a"), Text("b"))
    got = [seq({}).content for _ in range(4)]
    assert got == ["a", "b", "b", "b"]
    counter = Sequence(*[Text(str(i)) for i in range(200)])
    with ThreadPoolExecutor(16) as pool:
        seen = list(pool.map(lambda _: counter({}).content, range(200)))
    assert sorted(seen, key=int) == [str(i) for i in range(200)]  # each reply handed out exactly once


def test_fixed_port_and_restart():
    port = free_port()
    teacher = ScriptedTeacher(lambda req: Text("x"), port=port).start()
    try:
        assert teacher.url == f"http://127.0.0.1:{port}/v1"
    finally:
        teacher.stop()
    with pytest.raises(RuntimeError):
        _ = teacher.url


def test_64_concurrent_requests_overlap():
    latency = 0.1
    with ScriptedTeacher(lambda req: Text(req["messages"][0]["content"]), latency=latency) as teacher:
        c = client(teacher, max_retries=0)

        def ask(i: int) -> str:
            out = c.chat.completions.create(model="m", messages=[{"role": "user", "content": f"q{i}"}])
            return out.choices[0].message.content

        start = time.perf_counter()
        with ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(ask, range(64)))
        elapsed = time.perf_counter() - start
    assert answers == [f"q{i}" for i in range(64)]
    assert len(teacher.requests) == 64
    assert elapsed < 64 * latency / 4, f"64 requests took {elapsed:.2f}s: they were not served concurrently"
