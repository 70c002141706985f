"""Logging set-up: readable lines by default, one JSON object per line with log_json; and the helpers every log
line that carries caller-controlled text goes through.

**Caller-controlled text** (caller ID and name, uniqueid, channel, AGI arguments, AMI header values) can hold CR,
LF, ESC or bidirectional-override characters: written raw, they forge log lines or drive the terminal of whoever
tails the log. :func:`log_text` bounds such a value and escapes every non-printable character (``\\r``,
``\\x1b``, ``\\u202e``) and the backslash itself; every call site passes such values through it (or
:func:`caller_number`). Both formatters escape the non-printable characters of the whole message as a safety
net, so one record is always one line (a traceback follows it, its own lines escaped likewise).
:func:`caller_number` masks a caller's number (``+86138****8000``) unless ``server.log_pii`` is on or the logger
is at DEBUG.

Every routed call writes one INFO line, so the per-line cost is on the server's CPU budget (it was ~8 % of the
reactor's time on a cache hit). Two things here keep it small: no caller information is gathered (neither
format shows file, line, thread or process, and Python's logging documents switching those off as its own
optimisation), and the timestamp text is made once per second, not once per line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

# -- caller-controlled text ----------------------------------------------------------------------------------------
_NAMED_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch: str) -> str:
    named = _NAMED_ESCAPES.get(ch)
    if named is not None:
        return named
    if ch.isprintable():
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str) -> str:
    """``text`` with every non-printable character (CR, LF, ESC, C1 controls, bidi overrides, line separators)
    and the backslash written as an escape sequence: one line, nothing a terminal acts on, unambiguous."""
    if text.isprintable() and "\\" not in text:  # the usual case: two C-level scans, no copy
        return text
    return "".join(map(_escape_char, text))


def escape_controls(text: str) -> str:
    """The formatters' safety net: non-printable characters escaped, backslashes left alone (a value that went
    through :func:`escape` already is all printable and passes unchanged, never escaped twice)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)


def _escape_lines(text: str) -> str:
    """:func:`escape_controls` for a multi-line block (a traceback): each line escaped, the line breaks kept."""
    lines = text.split("\n")
    if all(line.isprintable() for line in lines):
        return text
    return "\n".join(map(escape_controls, lines))


def log_text(value: object, limit: int = 128) -> str:
    """A caller-controlled value for a log line: at most ``limit`` characters (an ellipsis marks a cut), escaped."""
    text = value if type(value) is str else str(value)
    if len(text) > limit:
        text = text[:limit] + "\u2026"
    return escape(text)


_log_pii = False


def set_log_pii(enabled: bool) -> None:
    """``server.log_pii``: full caller numbers in log lines at every level (set once, at start-up)."""
    global _log_pii
    _log_pii = enabled


def log_pii_enabled() -> bool:
    """``server.log_pii`` as set at start-up: for :func:`exception_summary` where no config is at hand."""
    return _log_pii


def mask_number(text: str) -> str:
    """``+8613800138000`` -> ``+86138****8000``: the last four characters and the prefix before the masked four
    are kept (enough to tell calls apart and see the country and network); short values keep their last two."""
    n = len(text)
    if n >= 8:
        return f"{text[:n - 8]}****{text[n - 4:]}"
    return "*" * max(n - 2, 0) + text[max(n - 2, 0):]


def caller_number(value: object, logger: logging.Logger) -> str:
    """A caller's number (or caller ID text) for a log line of ``logger``: masked by default; in full when
    ``server.log_pii`` is on or the logger is at DEBUG. Always bounded and escaped."""
    text = value if type(value) is str else ("" if value is None else str(value))
    if len(text) > 40:
        text = text[:40] + "\u2026"
    if not _log_pii and not logger.isEnabledFor(logging.DEBUG):
        text = mask_number(text)
    return escape(text)


class LogThrottle:
    """At most one log line per ``interval`` seconds for a noisy event (a flood of refused or dropped peers):
    ``due = throttle.hit(now)`` counts one event and returns how many happened since the last line when a
    line is due now, else 0."""

    __slots__ = ("interval", "count", "_logged", "_last")

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self.count = 0
        self._logged = 0
        self._last = float("-inf")

    def hit(self, now: float) -> int:
        self.count += 1
        if now - self._last < self.interval:
            return 0
        due = self.count - self._logged
        self._logged = self.count
        self._last = now
        return due


def _second_text(fmt: str, convert: Callable[[float], time.struct_time]) -> Callable[[float], str]:
    """``fn(created) -> text`` of the whole second, remembering the last second formatted."""
    last_second = -1
    last_text = ""

    def text(created: float) -> str:
        nonlocal last_second, last_text
        second = int(created)
        if second != last_second:
            last_second, last_text = second, time.strftime(fmt, convert(second))
        return last_text

    return text


class EscapingFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose message has its control characters escaped (one record, one line) and whose
    traceback lines are escaped likewise: the safety net under :func:`log_text` for text nobody escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - stdlib name
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:  # noqa: N802 - stdlib name
        return _escape_lines(super().formatException(ei))


class LineFormatter(EscapingFormatter):
    """``2026-12-01 09:14:06,434 INFO    ccserver.routing: message`` (local time, like the default format)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self._second = _second_text("%Y-%m-%d %H:%M:%S", time.localtime)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - stdlib name
        return f"{self._second(record.created)},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        """What ``logging.Formatter.format`` makes of this format, built directly for a record without a traceback or
        stack (every routed call's line): no format-string search, no ``%`` over the record's whole ``__dict__``."""
        if record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        record.message = message = escape_controls(record.getMessage())
        record.asctime = asctime = self.formatTime(record)
        return f"{asctime} {record.levelname:<7} {record.name}: {message}"


class JSONFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = _second_text("%Y-%m-%dT%H:%M:%S", time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": f"{self._second(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": escape_controls(record.getMessage()),  # JSON escapes C0 controls, not C1 or bidi overrides
        }
        if record.exc_info:
            entry["exc"] = _escape_lines(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO", json_lines: bool = False, log_pii: bool = False) -> None:
    set_log_pii(log_pii)
    # Caller information nobody formats: skipping it saves a stack walk and three look-ups per line.
    logging._srcfile = None  # type: ignore[attr-defined]  # documented in the logging HOWTO, "Optimization"
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if json_lines else LineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic narrates every migration step at INFO; its WARNINGs are what an operator needs.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    # websockets logs "connection open" / "connection closed" at INFO for every page that opens a socket: shown at
    # DEBUG only; its warnings and errors (failed handshakes, handler errors) still reach the log.
    logging.getLogger("websockets").setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)


def printable(text: str) -> str:
    """``text`` for a log line: control characters (CR, LF, ESC, NUL …) as escapes, so a caller cannot forge
    or break lines."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def exception_summary(exc: BaseException, pii: bool) -> str:
    """An unexpected exception for a log line: its type and the traceback's frames; its message only when
    ``pii`` (server.log_pii): messages carry data — SQL errors their bound parameters (numbers, names)."""
    import traceback

    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    if pii:
        kind += f": {printable(str(exc))}"
    frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    return f"{kind}\n{frames}" if frames else kind
