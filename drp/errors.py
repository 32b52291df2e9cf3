"""The one base of the errors a user can fix, and the exit statuses every `drp` command shares.

A UserError raised anywhere under a command reaches the user as one line, `error: <message>`, and the
command exits with the error's `exit_code` (drp/cli.py does this once for every command).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURES = 1  # the command finished, but some traces or samples failed (rerun or --resume to retry them)
EXIT_BAD_INPUT = 2  # bad options or input: the message says what to change
EXIT_ENDPOINT_DOWN = 3  # the model endpoint does not answer: nothing was sampled
EXIT_INTERRUPTED = 130  # Ctrl-C: what finished is saved, and rerunning resumes


class UserError(Exception):
    """Bad input or a state the user can change; the message says what is wrong and how to go on."""

    exit_code = EXIT_BAD_INPUT
