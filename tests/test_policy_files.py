"""A policy folder names its files, but never reads past itself: a prompt path that climbs out (`../`, an
absolute path, a link out of the folder), a FIFO, a device or an oversized file ends as a one-line policy
error, before any trace, without the outside file's content in the output, the run or the report.
Each hostile file runs in a real process with a time and memory bound, so a FIFO that blocks or a device
that never ends fails the test instead of hanging or exhausting the machine."""

from __future__ import annotations

import os
import resource
import subprocess

import pytest
from helpers import DRP, EXAMPLES, drp, one_line_error

from drp.paths import run_dir
from drp.policy import MAX_POLICY_FILE_BYTES
from drp.testing.scripted_teacher import ScriptedTeacher
from drp.testing.skill_aware_responder import sensible

SECRET = "TOP-SECRET-OUTSIDE-FILE"
PRUNER = (EXAMPLES.parents[1] / "prompts" / "skill-aware" / "pruner.yaml").read_text()


def _outside(tmp_path):
    """A valid prompt file outside the policy folder, carrying a secret line."""
    secret = tmp_path / "outside" / "secret.yaml"
    secret.parent.mkdir(exist_ok=True)
    system, user = PRUNER.split("\nuser: |\n")
    secret.write_text(system + f"\n  {SECRET}\nuser: |\n" + user)
    return secret


def _hostile_prompt(kind: str, folder, tmp_path) -> str:
    """Make the hostile prompt file of one kind in `folder`; return the name policy.yaml gives it."""
    secret = _outside(tmp_path)
    if kind == "dotdot":
        return os.path.relpath(secret, folder)
    if kind == "absolute":
        return str(secret)
    if kind == "link-out":
        (folder / "pruner.yaml").symlink_to(secret)
    elif kind == "link-dir-out":  # a folder inside that is a link to one outside
        (folder / "sub").symlink_to(secret.parent)
        return "sub/secret.yaml"
    elif kind == "dev-zero":
        (folder / "pruner.yaml").symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(folder / "pruner.yaml")
    elif kind == "folder":
        (folder / "pruner.yaml").mkdir()
    elif kind == "huge":
        system, user = PRUNER.split("\nuser: |\n")
        filler = "  " + "x" * 100 + "\n"
        (folder / "pruner.yaml").write_text(
            system + "\n" + filler * (MAX_POLICY_FILE_BYTES // 100) + "user: |\n" + user
        )
    return "pruner.yaml"


PROMPT_KINDS = ["dotdot", "absolute", "link-out", "link-dir-out", "dev-zero", "fifo", "folder", "huge"]


def _policy(tmp_path, kind: str):
    folder = tmp_path / "policies" / "evil"
    folder.mkdir(parents=True)
    name = _hostile_prompt(kind, folder, tmp_path)
    (folder / "policy.yaml").write_text(
        f"inherits: skill-aware\nagents:\n  pruner:\n    kind: llm-actions\n    prompt: {name!r}\n"
    )
    return folder.parent


def _bounded(*args, timeout: float = 60, memory: bool = True) -> subprocess.CompletedProcess:
    """The CLI as a real process, with at most 1 GiB of address space (a read of /dev/zero would take all the
    memory there is; `drp run` maps more than that for its tokenizer libraries, so it goes without)."""

    def limit():
        if memory:
            resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run(
        [*DRP, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
        preexec_fn=limit,
    )


def _refused(result: subprocess.CompletedProcess) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert one_line_error(result.stderr) and not result.stdout.strip(), output
    assert SECRET not in output and "policy 'evil'" in output and "prompt file" in output


@pytest.mark.parametrize("kind", PROMPT_KINDS)
def test_prompts_show_refuses_a_prompt_file_outside_or_not_regular(kind, tmp_path):
    policies = _policy(tmp_path, kind)
    _refused(_bounded("prompts", "show", "evil", "pruner", "--prompts-dir", policies))
    _refused(_bounded("prompts", "show", "evil", "--prompts-dir", policies))  # the prompt hashes read it too


@pytest.mark.parametrize("kind", ["dotdot", "link-out", "fifo", "huge"])
def test_run_refuses_a_hostile_prompt_file_before_any_trace(kind, tmp_path):
    policies = _policy(tmp_path, kind)
    with ScriptedTeacher(sensible) as teacher:
        result = _bounded(
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
            memory=False,
        )
    _refused(result)
    assert teacher.requests == [] and not run_dir("evil").exists()


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "huge", "folder"])
def test_a_hostile_policy_file_is_refused(kind, tmp_path):
    folder = tmp_path / "policies" / "evil"
    folder.mkdir(parents=True)
    target = folder / "policy.yaml"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "dev-zero":
        target.symlink_to("/dev/zero")
    elif kind == "folder":
        target.mkdir()
    else:
        target.write_text("inherits: skill-aware\n" + "#" * (MAX_POLICY_FILE_BYTES + 1) + "\n")
    result = _bounded("prompts", "show", str(folder))
    output = result.stdout + result.stderr
    assert result.returncode == 2 and one_line_error(result.stderr), output
    assert "policy.yaml" in output


def test_links_inside_the_policy_folder_and_inherited_prompts_still_work(tmp_path):
    folder = tmp_path / "policies" / "linked"
    folder.mkdir(parents=True)
    (folder / "mine.yaml").write_text(PRUNER)
    (folder / "pruner.yaml").symlink_to("mine.yaml")
    (folder / "policy.yaml").write_text("inherits: skill-aware\n")
    result = drp("prompts", "show", "linked", "pruner", "--prompts-dir", folder.parent)
    assert result.exit_code == 0 and "user:" in result.output, result.output
    classifier = drp("prompts", "show", "linked", "classifier", "--prompts-dir", folder.parent)  # the parent's file
    assert classifier.exit_code == 0 and "skill-aware" in classifier.output.splitlines()[0], classifier.output


def test_an_eval_template_file_is_read_only_when_regular_and_small(tmp_path):
    from drp.evals.templates import MAX_TEMPLATE_BYTES, TemplateError, resolve_template

    huge = tmp_path / "huge.txt"
    huge.write_text("{problem}\n" + "x" * MAX_TEMPLATE_BYTES)
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    for path, words in ((huge, "bytes"), (fifo, "FIFO")):
        with pytest.raises(TemplateError, match=words):
            resolve_template(str(path))
    small = tmp_path / "small.txt"
    small.write_text("Solve: {problem}")
    assert resolve_template(str(small)) == (str(small), "Solve: {problem}")


def test_a_policy_file_linked_out_of_its_folder_is_refused(tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text(f"inherits: skill-aware\ndescription: {SECRET}\n")
    folder = tmp_path / "policies" / "evil"
    folder.mkdir(parents=True)
    (folder / "policy.yaml").symlink_to(outside)
    result = drp("prompts", "show", str(folder))
    assert result.exit_code == 2 and one_line_error(result.output) and SECRET not in result.output, result.output
