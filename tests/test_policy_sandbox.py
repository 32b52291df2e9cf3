"""A policy folder is untrusted: its prompt templates are rendered in a sandbox and never run code.

Each template below is a known Jinja escape or resource attack. Through `drp prompts render` and `drp run
--prompts-dir` it must end as a clear policy error, and its payload (creating a marker file) must never run.
"""

from __future__ import annotations

import time

import pytest
from helpers import EXAMPLES, drp, traces_of

from drp.paths import run_dir
from drp.testing.scripted_teacher import ScriptedTeacher
from drp.testing.skill_aware_responder import sensible

PRUNER = (EXAMPLES.parents[1] / "prompts" / "skill-aware" / "pruner.yaml").read_text()

ATTACKS = {
    "cycler-globals-os": "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "class-mro-subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "template-reference-context": "{{ self._TemplateReference__context }}",
    "lipsum-globals": "{{ lipsum.__globals__['os'].popen('touch MARKER').read() }}",
    "namespace-init-globals": "{{ namespace.__init__.__globals__ }}",
    "attr-filter": "{{ (question|attr('__class__')) }}",
    "map-attribute": "{{ steps|map(attribute='__class__')|list }}",
    "sort-dotted-attribute": "{{ steps|sort(attribute='0.__class__.__mro__')|list }}",
    "getitem-dunder": "{{ question['__class__'] }}",
    "flask-config": "{{ config.items() }}",
    "flask-request": "{{ request.application.__globals__ }}",
    "huge-range": "{% for i in range(10**9) %}x{% endfor %}",
    "huge-power": "{{ 7 ** 999999999 }}",
    "huge-repeat": "{{ 'x' * 10**10 }}",
    "nested-loops": "{% for i in range(99999) %}{% for j in range(99999) %}xxxx{% endfor %}{% endfor %}",
    "mutating-method": "{{ steps.append(1) }}",
    "include-a-file": "{% include '/etc/passwd' %}",
    "syntax-error": "{% for %}",
}


def evil_policy(root, first_line: str, name: str = "evil"):
    """A policy that inherits skill-aware and puts one line in front of the pruner's user template."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "policy.yaml").write_text("inherits: skill-aware\n")
    system, user = PRUNER.split("\nuser: |\n")
    (folder / "pruner.yaml").write_text(system + "\nuser: |\n  " + first_line + "\n" + user)
    return root


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_prompts_render_refuses_template_escapes(attack, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `touch MARKER` would land here
    policies = evil_policy(tmp_path / "policies", ATTACKS[attack])
    started = time.monotonic()
    result = drp("prompts", "render", "evil", "pruner", "--trace", f"{EXAMPLES}:demo-001", "--prompts-dir", policies)
    assert time.monotonic() - started < 30
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: policy 'evil', pruner prompt ") and "pruner.yaml" in result.output
    assert "Traceback" not in result.output and "uid=" not in result.output
    assert not (tmp_path / "MARKER").exists()


def test_run_refuses_an_unsafe_policy_before_any_trace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    policies = evil_policy(tmp_path / "policies", ATTACKS["cycler-globals-os"])
    with ScriptedTeacher(sensible) as teacher:
        result = drp(
            "run",
            EXAMPLES,
            "--policy",
            "evil",
            "--prompts-dir",
            policies,
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            "scripted",
            "--run-id",
            "evil",
            "--quiet",
        )
    assert result.exit_code == 2
    assert result.output.startswith("error: policy 'evil', pruner prompt ") and "not allowed" in result.output
    assert teacher.requests == [] and not run_dir("evil").exists()
    assert not (tmp_path / "MARKER").exists()


def test_an_escape_reached_on_some_traces_fails_those_traces_only(tmp_path, monkeypatch):
    """Built at render time, out of the static check's sight: the sandbox stops it on the traces that reach it."""
    monkeypatch.chdir(tmp_path)
    hidden = "{% if 'Maya' in question %}{{ question|attr('__cla' ~ 'ss__') }}{% endif %}"
    policies = evil_policy(tmp_path / "policies", hidden)
    with ScriptedTeacher(sensible) as teacher:
        result = drp(
            "run",
            EXAMPLES,
            "--policy",
            "evil",
            "--prompts-dir",
            policies,
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            "scripted",
            "--run-id",
            "hidden",
            "--quiet",
            "--teacher-max-retries",
            "0",
        )
    assert result.exit_code == 1, result.output  # failed traces: the run itself completed
    traces = traces_of("hidden")
    maya = traces["demo-001"]
    assert maya["status"] == "failed" and maya["reason"].startswith("policy_error: policy 'evil', pruner prompt ")
    assert "SecurityError" in maya["reason"] and "__class__" in maya["reason"]
    others = [t for trace_id, t in traces.items() if trace_id != "demo-001"]
    assert sum(t["status"] == "accepted" for t in others) >= 5


def test_unknown_template_variables_are_refused_up_front(tmp_path):
    policies = evil_policy(tmp_path / "policies", "{{ secret_settings }}")
    result = drp("prompts", "render", "evil", "pruner", "--trace", f"{EXAMPLES}:demo-001", "--prompts-dir", policies)
    assert result.exit_code == 2 and "unknown variable(s) ['secret_settings']" in result.output


def test_builtin_policies_render_in_the_sandbox():
    for policy, agent in [
        ("skill-aware", "segmenter"),
        ("skill-aware", "classifier"),
        ("skill-aware", "pruner"),
        ("paper", "segmenter"),
        ("paper", "pruner"),
    ]:
        result = drp("prompts", "render", policy, agent, "--trace", f"{EXAMPLES}:demo-001")
        assert result.exit_code == 0, (policy, agent, result.output)
        assert "Maya" in result.output
