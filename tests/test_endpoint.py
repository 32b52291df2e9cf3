"""The teacher client (langchain-openai, async) and the student client (openai SDK) share one endpoint
settings type and describe the same transport fault in the same words."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from drp.endpoint import EndpointSettings
from drp.policy import AgentSettings
from drp.sampling.client import Decoding, Endpoint
from drp.teacher import Teacher, TeacherError, TeacherSettings
from drp.testing.scripted_teacher import Error, Hang, ScriptedTeacher, Text, refused_url


class Answer(BaseModel):
    ok: bool


def _both_clients(url: str) -> tuple[str | None, str | None]:
    """(the teacher's TeacherError text, the student's per-sample error) for one request to `url`."""
    settings = dict(url=url, model="m", timeout=0.5, max_retries=0)

    async def ask_once():
        client = Teacher(TeacherSettings(**settings))
        try:
            await client.ask(AgentSettings(kind="llm"), [{"role": "user", "content": "x"}], Answer)
        finally:
            await client.aclose()

    try:
        asyncio.run(ask_once())
        teacher = None
    except TeacherError as exc:
        teacher = str(exc)
    student = (
        Endpoint(EndpointSettings(**settings))
        .complete([{"role": "user", "content": "x"}], Decoding(0.0, 1.0, 8), seed=None)
        .error
    )
    return teacher, student


@pytest.mark.parametrize(
    "reply, start, detail",
    [
        (Hang(2.0, then=Text('{"ok": true}')), "timeout after 0.5s", ""),
        (Error(503, {"error": {"message": "overloaded"}}), "HTTP 503: ", "overloaded"),
    ],
)
def test_teacher_and_student_describe_a_fault_alike(reply, start, detail):
    with ScriptedTeacher(lambda request: reply) as server:
        teacher, student = _both_clients(server.url)
    assert teacher == student and teacher.startswith(start) and detail in teacher


def test_a_refused_connection_reads_alike_from_both_clients():
    # The transport's own words differ (async and sync httpx), the line around them does not.
    for message in _both_clients(refused_url()):
        assert message.startswith("connection failed: ") and message != "connection failed: Connection error."


def test_teacher_settings_are_endpoint_settings_plus_the_structured_output_method():
    settings = TeacherSettings("http://x/v1", "m", api_key_env="MY_KEY", structured_output="prompt")
    assert isinstance(settings, EndpointSettings)
    # the teacher's deadline is sized per request unless given, and it retries only quick refusals
    assert settings.public() == {
        "url": "http://x/v1",
        "model": "m",
        "api_key_env": "MY_KEY",
        "timeout": None,
        "max_retries": 2,
        "structured_output": "prompt",
    }
