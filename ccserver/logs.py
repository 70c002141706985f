"""Logging set-up: readable lines by default, one JSON object per line with log_json.

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


class LineFormatter(logging.Formatter):
    """``2026-12-01 09:14:06,434 INFO    ccserver.routing: message`` (local time, like the default format)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self._second = _second_text("%Y-%m-%d %H:%M:%S", time.localtime)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - stdlib name
        return f"{self._second(record.created)},{int(record.msecs):03d}"


class JSONFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = _second_text("%Y-%m-%dT%H:%M:%S", time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": f"{self._second(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO", json_lines: bool = False) -> None:
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
