"""FastAGI metrics. The names are a contract (dashboards and alerts use them)."""

from __future__ import annotations

from ccserver.metrics import REGISTRY

SESSIONS = REGISTRY.counter("ccserver_agi_sessions_total", "FastAGI sessions started (agi_* block received)")
SESSION_SECONDS = REGISTRY.histogram(
    "ccserver_agi_session_seconds", "FastAGI session duration, connect to close, for sessions that started"
)
ERRORS = REGISTRY.counter(
    "ccserver_agi_errors_total",
    "FastAGI failures: header timeout, oversize header, unknown script, handler error, command timeout "
    "(caller hangup is not one)",
)
COMMAND_TIMEOUTS = REGISTRY.counter(
    "ccserver_agi_command_timeouts_total",
    "FastAGI commands Asterisk did not answer within their timeout (agi.command_timeout); the connection was closed",
)
REFUSED = REGISTRY.counter(
    "ccserver_agi_refused_total", "FastAGI connections refused before a byte was read: peer address not in agi.allow"
)
STRAY_LINES = REGISTRY.counter(
    "ccserver_agi_stray_lines_total",
    "Lines from a FastAGI peer discarded as no answer: sent while no command was in flight, after the answer "
    "in the same read, or not shaped like an answer (an agi_* line left over from a broken header)",
)
