"""A run's settings as one typed config (drp.run_config) and its place as a value (drp.run_place): stored and
read back whole, old runs' keys read as today's, a resume changing only what RESUMABLE names, a run put
wherever its place says (never where the environment says, below the CLI), each costly part built once."""

from __future__ import annotations

import json
import os

import pytest
from helpers import EXAMPLES, drp, traces_of

from drp.run_config import RESUMABLE, BatchConfig, RunConfig, SourceConfig, TeacherConfig, resumed
from drp.run_place import RunPlace
from drp.testing.scripted_teacher import ScriptedTeacher
from drp.testing.skill_aware_responder import sensible


def full_config() -> RunConfig:
    return RunConfig.from_options(
        {
            "source": "in.jsonl",
            "policy": "skill-aware",
            "teacher_urls": ["http://a/v1", "http://b/v1"],
            "teacher_model": "m",
            "teacher_mode": "batch",
            "batch_poll_seconds": 5.0,
            "teacher_price": "1,2",
            "limit": 3,
            "concurrency": 4,
            "field_map": {"question": "problem"},
            "prompts_dirs": ["p"],
            "policy_overrides": {"max_retries": 4},
            "teacher_tokenizer": "t",
            "reuse": ["/r"],
            "tokenizer": "tok",
        }
    )


def test_a_config_reads_back_whole_from_what_it_stores():
    config = full_config()
    assert config.teacher.urls == ("http://a/v1", "http://b/v1") and config.teacher.batch.poll_seconds == 5.0
    assert config.source == SourceConfig(path="in.jsonl", field_map={"question": "problem"}, limit=3)
    stored = json.loads(json.dumps(config.to_options("x")))
    assert stored["run_id"] == "x" and stored["teacher_urls"] == ["http://a/v1", "http://b/v1"]
    assert RunConfig.from_options(stored) == config


def test_an_old_runs_single_url_and_unknown_keys_are_read_as_todays():
    old = {"source": "in.jsonl", "policy": "rules", "teacher_url": "http://old/v1", "gone_option": 1}
    config = RunConfig.from_options(old)
    assert config.teacher.urls == ("http://old/v1",) and config.teacher.batch == BatchConfig()
    assert RunConfig.from_options({"source": "s", "teacher_url": None}).teacher.urls == ()


def test_a_resume_changes_only_what_resumable_names():
    saved = full_config()
    given = RunConfig.from_options(
        {
            "source": "in.jsonl",
            "teacher_model": "other",  # not resumable: the run's own stays
            "tokenizer": "other",
            "teacher_mode": "online",
            "concurrency": 9,
            "limit": None,
            "teacher_price": None,  # not given: the run's own stays
            "policy_overrides": {"answer_section": "keep"},
        }
    )
    config = resumed(saved, given, lambda own, _given: own)
    assert config.teacher.model == "m" and config.tokenizer == "tok" and config.teacher.mode == "batch"
    assert config.teacher.urls == saved.teacher.urls and config.teacher.price == "1,2"
    assert config.execution.concurrency == 9 and config.source.limit is None and config.teacher.reuse == ()
    assert config.policy.overrides == {"max_retries": 4, "answer_section": "keep"}
    assert config.execution.resume and not config.execution.overwrite
    assert set(RESUMABLE) == {
        "concurrency",
        "workers",
        "limit",
        "retry_failed",
        "allow_policy_change",
        "reuse",
        "teacher_urls",
        "teacher_price",
        "policy_overrides",
        "source",
    }
    moved = resumed(saved, given, lambda own, given: f"{own}->{given}")
    assert moved.source.path == "in.jsonl->in.jsonl"


def test_teacher_settings_are_built_from_the_config():
    settings = TeacherConfig(urls=("http://a/v1", "http://b/v1"), model="m", timeout=3.0).settings()
    assert settings.urls == ("http://a/v1", "http://b/v1") and settings.timeout == 3.0 and settings.model == "m"


def test_a_run_lives_where_its_place_says_not_where_the_environment_does(tmp_path, hermetic_runs):
    from drp.runner import run

    place = RunPlace.under(tmp_path / "elsewhere", "here")
    summary = run(RunConfig.from_options({"source": str(EXAMPLES), "policy": "rules", "limit": 2}), place, False)
    assert summary.path == place.folder and (place.folder / "config.json").is_file()
    assert summary.processed == 2 and not hermetic_runs.exists()
    assert os.environ["DRP_RUNS_DIR"] == str(hermetic_runs)


def test_a_place_names_its_folder_lock_and_work_corner(tmp_path):
    place = RunPlace.under(tmp_path, "a.b")
    assert place.folder == tmp_path / "a.b" and place.lock_path == tmp_path / ".drp" / "a.b.lock"
    assert RunPlace.of_folder(place.folder) == place and place.sibling("c").folder == tmp_path / "c"
    from drp.paths import InvalidRunId

    with pytest.raises(InvalidRunId):
        RunPlace.under(tmp_path, "../up")


def test_the_estimate_leaves_the_environment_alone(monkeypatch, hermetic_runs):
    from drp.estimate import estimate

    seen = []
    monkeypatch.setattr(os.environ.__class__, "__setitem__", lambda self, key, value: seen.append(key))
    result = estimate(RunConfig.from_options({"source": str(EXAMPLES), "policy": "rules"}), 3, seed=1)
    assert len(result.sample_ids) == 3 and sum(result.statuses.values()) == 3
    assert "DRP_RUNS_DIR" not in seen and not hermetic_runs.exists()


@pytest.mark.parametrize("resume", [False, True])
def test_a_run_opens_its_store_and_builds_its_counter_and_price_once(monkeypatch, resume):
    from drp import costs, run_prepare, run_traces, runner, store

    with ScriptedTeacher(sensible) as teacher:
        args = ["--teacher-url", teacher.url, "--teacher-model", "m", "--teacher-price", "1,2", "--quiet"]
        if resume:
            assert drp("run", EXAMPLES, "--run-id", "once", "--limit", "1", *args).exit_code == 0
        opened, counters, prices = [], [], []
        real_open, real_counter, real_price = store.open_run, runner.token_counter, costs.resolve_price

        def open_run(path, write=False):
            opened.append((str(path), write))
            return real_open(path, write)

        for module in (run_prepare, run_traces):
            monkeypatch.setattr(module, "open_run", open_run)
        monkeypatch.setattr(runner, "token_counter", lambda config: counters.append(1) or real_counter(config))
        monkeypatch.setattr(costs, "resolve_price", lambda *a: prices.append(a) or real_price(*a))
        result = drp("run", EXAMPLES, "--run-id", "once", "--limit", "2", *args, *(["--resume"] if resume else []))
    assert result.exit_code == 0, result.output
    assert traces_of("once")["demo-002"]["status"] != "pending"
    writes = [path for path, write in opened if write]
    # a new run: the one it builds aside, then the published one; a resume: a read-only look, then the run
    assert len(writes) == (1 if resume else 2) and len(opened) == 2, opened
    assert len(counters) == 1 and prices == [("1,2", "m", None)]
