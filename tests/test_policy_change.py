"""Resuming under a changed policy: refused with what changed (prompt texts and settings alike), unless asked
for; then every place that names a policy hash names the one each trace was really made with."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from helpers import EXAMPLES, db_of, drp, one_line_error, pruned_of

from drp.paths import builtin_prompts_dir, run_dir
from drp.testing.scripted_teacher import ScriptedTeacher
from drp.testing.skill_aware_responder import sensible


@pytest.fixture
def policy_dir(tmp_path):
    """A user's own copy of the skill-aware policy, to edit between sessions."""
    root = tmp_path / "policies"
    shutil.copytree(builtin_prompts_dir() / "skill-aware", root / "mine")
    return root


def _start(teacher, policy_dir, run_id: str, *extra: str):
    return drp(
        "run",
        EXAMPLES,
        "--policy",
        "mine",
        "--prompts-dir",
        policy_dir,
        "--teacher-url",
        teacher.url,
        "--teacher-model",
        "m",
        "--run-id",
        run_id,
        "--quiet",
        *extra,
    )


def _digests(run_id: str) -> dict[str, str]:
    """The run's files (a reader's empty write-ahead log and its index aside: SQLite's, not data)."""
    files = [p for p in run_dir(run_id).iterdir() if p.is_file()]
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files
        if not (p.name.endswith(("-wal", "-shm")) and not Path(f"{p}"[:-4] + "-wal").stat().st_size)
    }


def _edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda d: _edit(d / "mine" / "pruner.yaml", "system:", "# reworded\nsystem:"), "the pruner prompt text"),
        (
            lambda d: _edit(d / "mine" / "policy.yaml", "answer_section: short", "answer_section: keep"),
            'answer_section: "short" → "keep"',
        ),
        (lambda d: _edit(d / "mine" / "policy.yaml", "max_chars: 1 ", "max_chars: 300 "), "units.max_chars: 1 → 300"),
        (lambda d: _edit(d / "mine" / "policy.yaml", "  - hesitation\n", ""), "taxonomy"),
        (
            lambda d: (d / "mine" / "policy.yaml").write_text(
                (d / "mine" / "policy.yaml").read_text() + "verify: {shorter: false}\n"
            ),
            "verify.shorter: true → false",
        ),
    ],
)
def test_resume_under_a_changed_policy_is_refused_naming_the_change(policy_dir, change, named):
    with ScriptedTeacher(sensible) as teacher:
        assert _start(teacher, policy_dir, "edited", "--limit", "3").exit_code == 0
        before = _digests("edited")
        change(policy_dir)
        refused = drp("run", EXAMPLES, "--run-id", "edited", "--resume", "--quiet")
    assert refused.exit_code == 2 and one_line_error(refused.output), refused.output
    assert named in refused.output and "--allow-policy-change" in refused.output, refused.output
    assert _digests("edited") == before  # refused before anything was written


def test_a_set_on_resume_is_a_policy_change_too(policy_dir):
    with ScriptedTeacher(sensible) as teacher:
        assert _start(teacher, policy_dir, "setting", "--limit", "3").exit_code == 0
        refused = drp("run", EXAMPLES, "--run-id", "setting", "--resume", "--set", "max_retries=0", "--quiet")
        assert refused.exit_code == 2 and "max_retries: 2 → 0" in refused.output, refused.output
    # The same policy resumes without a word, however many times (a new teacher server each time: in one
    # process, langchain-openai ties one HTTP client per URL to the first run's event loop).
    for extra in (("--limit", "5"), ()):
        with ScriptedTeacher(sensible) as teacher:
            resumed = drp("run", EXAMPLES, "--run-id", "setting", "--resume", "--teacher-url", teacher.url, *extra)
            assert resumed.exit_code == 0, resumed.output
    assert len(json.loads(db_of("setting")["runs"].get("setting")["policy_history"])) == 1


def test_an_allowed_change_records_both_policies_and_which_trace_used_which(policy_dir):
    with ScriptedTeacher(sensible) as teacher:
        assert _start(teacher, policy_dir, "both", "--limit", "3").exit_code == 0
    _edit(policy_dir / "mine" / "pruner.yaml", "system:", "# reworded\nsystem:")
    _edit(policy_dir / "mine" / "policy.yaml", "answer_section: short", "answer_section: keep")
    with ScriptedTeacher(sensible) as teacher:
        resumed = drp(
            "run",
            EXAMPLES,
            "--run-id",
            "both",
            "--resume",
            "--allow-policy-change",
            "--quiet",
            "--teacher-url",
            teacher.url,
        )
        assert resumed.exit_code == 0, resumed.output

    config = json.loads((run_dir("both") / "config.json").read_text())
    first, second = config["policy_history"]
    assert first["hash"] != second["hash"] == config["policy_hash"]
    assert "the pruner prompt text" in second["changes"] and 'answer_section: "short" → "keep"' in second["changes"]
    assert first["snapshot"]["answer_section"] == "short" and config["policy"]["answer_section"] == "keep"
    assert first["prompt_hashes"]["pruner"] != second["prompt_hashes"]["pruner"]
    assert first["prompt_hashes"]["segmenter"] == second["prompt_hashes"]["segmenter"]

    db = db_of("both")
    row = db["runs"].get("both")
    assert [entry["hash"] for entry in json.loads(row["policy_history"])] == [first["hash"], second["hash"]]
    assert row["policy_hash"] == second["hash"]
    made_with = {r["id"]: r["policy_hash"] for r in db.query("select id, line, policy_hash from traces order by line")}
    lines = list(made_with.values())
    assert lines[:3] == [first["hash"]] * 3 and lines[3:] == [second["hash"]] * 5
    for call in db.query(
        "select c.policy_hash, c.prompt_name, c.prompt_hash, t.policy_hash as trace_hash "
        "from calls c join traces t on t.id = c.trace_id"
    ):
        assert call["policy_hash"] == call["trace_hash"]
        if call["prompt_name"] == "pruner.yaml":
            entry = first if call["policy_hash"] == first["hash"] else second
            assert call["prompt_hash"] == entry["prompt_hashes"]["pruner"]
    records = pruned_of("both")
    assert records and {r["policy_hash"] for r in records} == {first["hash"], second["hash"]}
    for record in records:
        assert record["policy_hash"] == made_with[record["id"]]
        entry = first if record["policy_hash"] == first["hash"] else second
        assert record["prompt_hashes"] == entry["prompt_hashes"]
