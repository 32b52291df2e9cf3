"""scripts/ensure_browser.py, which `make test` runs first: a Chromium already here, else Playwright's download,
else the distribution's package, else one message naming the command to run.

The fallbacks run for real with PATH and the caches pointed at empty folders, so the machine's own Chromium is
hidden without uninstalling it; Playwright's download host is an unreachable loopback port, so its install
fails here as it does on any machine without that network.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "ensure_browser.py"


def ensure(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def bare(tmp_path) -> dict[str, str]:
    """An environment with no browser in sight: empty PATH, HOME and Playwright cache; downloads refused."""
    (tmp_path / "bin").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DRP_CHROMIUM", "DRP_NO_APT")}
    env.update(
        PATH=str(tmp_path / "bin"),
        HOME=str(tmp_path / "home"),
        PLAYWRIGHT_BROWSERS_PATH=str(tmp_path / "ms-playwright"),
        PLAYWRIGHT_DOWNLOAD_HOST="http://127.0.0.1:9",
    )
    return env


def test_a_browser_already_here_is_chosen_quickly_and_every_time():
    env = {k: v for k, v in os.environ.items() if k != "DRP_CHROMIUM"}
    started = time.monotonic()
    first = ensure(env)
    seconds = time.monotonic() - started
    assert first.returncode == 0, first.stderr
    path = first.stdout.strip()
    assert os.access(path, os.X_OK) and "\n" not in path
    assert seconds < 60  # no install attempted: one headless start to check it
    assert "trying" not in first.stderr and "installing" not in first.stderr
    assert ensure(env).stdout.strip() == path  # idempotent


def test_nothing_found_nothing_installable_names_one_command(bare):
    started = time.monotonic()
    result = ensure(bare)
    assert result.returncode == 1 and result.stdout == ""
    assert "trying `playwright install chromium`" in result.stderr and "playwright install failed" in result.stderr
    assert "Run:  " in result.stderr and "playwright install --with-deps chromium" in result.stderr
    assert time.monotonic() - started < 240


def test_a_wrong_drp_chromium_is_an_error_not_a_silent_fallback(bare, tmp_path):
    bare["DRP_CHROMIUM"] = str(tmp_path / "no-such-chromium")
    result = ensure(bare)
    assert result.returncode == 1 and f"DRP_CHROMIUM={tmp_path / 'no-such-chromium'} is not a working" in result.stderr
    assert "playwright install" not in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="apt-get is only tried as root or with password-less sudo")
def test_the_distribution_package_comes_after_playwright_fails(bare, tmp_path):
    """A stand-in apt-get that records its calls and 'installs' a stand-in chromium: the order and the
    non-interactive flags are what is checked here (the real apt-get runs in CI on a fresh machine)."""
    bin_dir = Path(bare["PATH"])
    calls = tmp_path / "apt-calls"
    apt_get = bin_dir / "apt-get"
    apt_get.write_text(f"""#!{sys.executable}
import os, sys
from pathlib import Path
with open({str(calls)!r}, "a") as log:
    log.write(os.environ.get("DEBIAN_FRONTEND", "") + " " + " ".join(sys.argv[1:]) + "\\n")
if sys.argv[1] == "install":
    chromium = Path({str(bin_dir / "chromium")!r})
    chromium.write_text("#!/bin/sh\\necho '<html><head></head><body></body></html>'\\n")
    chromium.chmod(0o755)
""")
    apt_get.chmod(0o755)
    # Playwright's install fails at once here (its cache folder cannot be made: a file stands in the way) rather
    # than after its five download retries: why it fails is not what this test is about.
    (tmp_path / "a-file").write_text("")
    bare["PLAYWRIGHT_BROWSERS_PATH"] = str(tmp_path / "a-file" / "ms-playwright")
    result = ensure(bare)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(bin_dir / "chromium")
    assert calls.read_text().splitlines() == ["noninteractive update -qq", "noninteractive install -y -qq chromium"]
    assert result.stderr.index("playwright install failed") < result.stderr.index("installing the distribution's")
    # ...and with apt refused, the advice names apt-get, the machine's own way.
    (bin_dir / "chromium").unlink()
    refused = ensure({**bare, "DRP_NO_APT": "1"})
    assert refused.returncode == 1 and "Run:  sudo apt-get install -y chromium" in refused.stderr


DEBIAN_CHROMIUM = Path("/usr/lib/chromium/chromium")  # the binary behind Debian's /usr/bin/chromium wrapper


@pytest.mark.skipif(not DEBIAN_CHROMIUM.is_file(), reason="needs a real Chromium to stand in for Playwright's")
def test_a_browser_playwright_downloaded_is_found(bare, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:  # where this Playwright version keeps its Chromium
        expected = Path(
            playwright.chromium.executable_path.replace(
                str(Path.home() / ".cache" / "ms-playwright"), bare["PLAYWRIGHT_BROWSERS_PATH"]
            )
        )
    if not str(expected).startswith(bare["PLAYWRIGHT_BROWSERS_PATH"]):
        pytest.skip(f"Playwright keeps its browsers elsewhere: {expected}")
    expected.parent.mkdir(parents=True)
    expected.symlink_to(DEBIAN_CHROMIUM)
    result = ensure(bare)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(expected) and "playwright install" not in result.stderr
