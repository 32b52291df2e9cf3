"""The errors that end a run as a whole (the traces' own failures are per-trace statuses, never these)."""

from __future__ import annotations

from drp.errors import EXIT_ENDPOINT_DOWN, UserError


class RunError(UserError):
    """A problem with the run as a whole (bad options, existing run): reported before any trace is touched."""


class TeacherUnreachable(UserError):
    """No teacher endpoint could be reached: the run stopped, the traces it could not do are left pending."""

    exit_code = EXIT_ENDPOINT_DOWN
