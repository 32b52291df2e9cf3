"""`make test` runs under pytest-xdist with --dist loadgroup: the tests of one xdist_group must all run on one
worker, or each worker builds the group's expensive module fixtures (a model server, a training run) again."""

from __future__ import annotations

import subprocess
import sys

GROUPED = """
import os

import pytest

pytestmark = pytest.mark.xdist_group("one")


@pytest.fixture(scope="module")
def built():
    with open("built.log", "a") as log:
        log.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")


@pytest.mark.parametrize("n", range(6))
def test_grouped(built, n):
    pass
"""


def test_an_xdist_group_runs_on_one_worker_and_builds_its_module_fixture_once(tmp_path):
    (tmp_path / "test_grouped.py").write_text(GROUPED, encoding="utf-8")
    (tmp_path / "test_other.py").write_text("def test_other():\n    pass\n", encoding="utf-8")
    result = subprocess.run(
        # The plugins as the suite loads them (pyproject.toml's addopts): xdist only.
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--disable-plugin-autoload",
            "-p",
            "xdist.plugin",
        ]
        + ["-n", "2", "--dist", "loadgroup"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len((tmp_path / "built.log").read_text().splitlines()) == 1
