"""Find or install the headless Chromium that the HTML report's browser tests drive; print its path.

`make test` calls this first and hands the path to pytest as DRP_CHROMIUM. In order:

1. DRP_CHROMIUM, when set (it must work: a wrong value is an error, not a reason to look elsewhere);
2. a Chromium or Chrome on PATH (Debian's `chromium` is /usr/bin/chromium);
3. a browser Playwright already downloaded;
4. `playwright install chromium` (fails where its download host is unreachable: then the next step);
5. the distribution's package, as root or with password-less sudo: `apt-get install chromium`
   (DRP_NO_APT=1 skips this step);
6. else one message naming the one command to run.

Every candidate must start headless and render a page before it is chosen. Stdout carries the path only;
everything else goes to stderr. Exit status 1 when no browser could be had.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome", "chrome")
DEBIAN_PATHS = ("/usr/bin/chromium",)  # where the package puts it, should PATH not name that folder
HEADLESS_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--dump-dom", "about:blank")


def say(message: str) -> None:
    print(f"ensure-browser: {message}", file=sys.stderr, flush=True)


def works(path: str) -> bool:
    """Whether this binary starts headless and renders a blank page."""
    with tempfile.TemporaryDirectory(prefix="drp-chromium-profile-") as profile:
        try:
            done = subprocess.run(
                [path, f"--user-data-dir={profile}", *HEADLESS_ARGS], capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            say(f"{path} does not start: {exc}")
            return False
    if done.returncode != 0 or "<html" not in done.stdout:
        say(f"{path} does not render headless (exit {done.returncode}): {done.stderr.strip()[-300:]}")
        return False
    return True


def on_path() -> str | None:
    for name in NAMES:
        path = shutil.which(name)
        if path and works(path):
            return path
    return None


def playwright_managed() -> str | None:
    """The Chromium that `playwright install chromium` puts in its cache, if it is there."""
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            path = playwright.chromium.executable_path
    except Exception:  # playwright missing, or its driver cannot start: not a browser we can use
        return None
    return path if path and os.path.isfile(path) and works(path) else None


def playwright_install() -> str | None:
    say("no Chromium here; trying `playwright install chromium`")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "playwright", "install", "chromium"], capture_output=True, text=True, timeout=900
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        say(f"playwright install did not finish: {exc}")
        return None
    if done.returncode != 0 or "Failed to" in done.stdout + done.stderr:
        lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()] or ["no output"]
        say("playwright install failed: " + next((line for line in lines if "Failed to download" in line), lines[-1]))
        return None
    return playwright_managed()


def apt_allowed() -> list[str] | None:
    """The command prefix that may run apt-get without asking anyone, or None."""
    if os.environ.get("DRP_NO_APT") or shutil.which("apt-get") is None:
        return None
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo and subprocess.run([sudo, "-n", "true"], capture_output=True).returncode == 0:
        return [sudo, "-n"]
    return None


def apt_install() -> str | None:
    prefix = apt_allowed()
    if prefix is None:
        return None
    say("installing the distribution's chromium package (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run([*prefix, *command], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            say(f"`{' '.join(command)}` failed: {done.stderr.strip()[-300:]}")
            return None
    return on_path() or next((p for p in DEBIAN_PATHS if os.path.isfile(p) and works(p)), None)


def advice() -> str:
    if shutil.which("apt-get"):
        command = "sudo apt-get install -y chromium"
    else:
        command = f"{sys.executable} -m playwright install --with-deps chromium"
    return (
        f"no headless Chromium for the browser tests, and none could be installed here.\n"
        f"Run:  {command}\n"
        f"then `make test` again (or set DRP_CHROMIUM to a Chromium or Chrome binary)."
    )


def find_chromium() -> str | None:
    """A working browser already on this machine (steps 1-3), without installing anything."""
    chosen = os.environ.get("DRP_CHROMIUM")
    if chosen:
        return chosen if os.path.isfile(chosen) and os.access(chosen, os.X_OK) and works(chosen) else None
    return on_path() or playwright_managed()


def main() -> int:
    chosen = os.environ.get("DRP_CHROMIUM")
    path = find_chromium()
    if path is None and chosen:
        say(f"DRP_CHROMIUM={chosen} is not a working Chromium: fix it or unset it")
        return 1
    path = path or playwright_install() or apt_install()
    if path is None:
        say(advice())
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
