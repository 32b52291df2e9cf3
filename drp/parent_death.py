"""Child processes that end with their parent, however the parent ends (SIGKILL included).

Linux: the kernel sends the child a signal when its parent dies (PR_SET_PDEATHSIG). Elsewhere a daemon
thread polls the parent pid; that variant is for forked children only (a preexec hook must not start threads).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int, parent: int) -> None:
    """In a child whose parent is `parent`: receive `sig` when that parent dies (exit at once if it already did)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)
    else:
        threading.Thread(target=_watch, args=(sig, parent), daemon=True, name="parent-watch").start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def preexec_die_with_parent(sig: int = signal.SIGTERM):
    """A Popen preexec_fn doing the same for an exec'd child (Linux; None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    return lambda: die_with_parent(sig, parent)


def _watch(sig: int, parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os.kill(os.getpid(), sig)
