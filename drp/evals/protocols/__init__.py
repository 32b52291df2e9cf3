"""Evaluation protocols: how a problem becomes a request, how long the answer may run, how it is scored.

`registry` holds them by name; `chat` is drp's own (`default`), `paper` the DRP paper's lm-eval setup. Importing
this package registers both.
"""

from drp.evals.protocols import chat, paper  # noqa: F401 (each registers itself)
from drp.evals.protocols.registry import (
    DEFAULT_PROTOCOL,
    PROTOCOLS,
    Plan,
    Protocol,
    ProtocolError,
    Request,
    protocol_named,
    recorded_protocol,
    register,
)

__all__ = [
    "DEFAULT_PROTOCOL",
    "PROTOCOLS",
    "Plan",
    "Protocol",
    "ProtocolError",
    "Request",
    "protocol_named",
    "recorded_protocol",
    "register",
]
