"""Log lines carry caller-controlled text escaped (one record, one line; nothing a terminal acts on), and caller
numbers masked unless server.log_pii is on or the logger is at DEBUG."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest

from ccserver import logs
from ccserver.agi import AGISession
from ccserver.customers.directory import CustomerDirectory
from ccserver.logs import JSONFormatter, LineFormatter, caller_number, log_text, mask_number
from tests.replay.agi_peer import AGIPeer, Responder, env_block
from tests.replay.agi_transcripts import load_agi
from tests.test_agi_protocol import Harness
from tests.test_callrouting_service import Service, demo  # noqa: F401 - demo is a fixture

HOSTILE_TEXT = "13800\r\n2026-01-01 INFO forged\x1b[2J\x9b31m\u202eevil\u2028\x00\\"


def printable(text: str) -> bool:
    return text.isprintable()


@pytest.fixture
def pii(monkeypatch: pytest.MonkeyPatch) -> Any:
    def set_(on: bool) -> None:
        monkeypatch.setattr(logs, "_log_pii", on)

    set_(False)
    return set_


def test_log_text_escapes_controls_and_bounds() -> None:
    text = log_text(HOSTILE_TEXT)
    assert text.isprintable()
    assert text == ("13800\\r\\n2026-01-01 INFO forged\\x1b[2J\\x9b31m\\u202eevil\\u2028\\x00\\\\")
    assert log_text("张伟 Zhang") == "张伟 Zhang"  # printable non-ASCII is kept as it is
    assert log_text("x" * 500, 10) == "x" * 10 + "\u2026"
    assert log_text(None) == "None" and log_text(42) == "42"


def record(msg: str, *args: Any, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("ccserver.test", logging.WARNING, __file__, 1, msg, args, exc_info)


def raised(message: str) -> BaseException:
    try:
        raise ValueError(message)
    except ValueError as exc:
        return exc


def test_line_formatter_keeps_one_record_on_one_line() -> None:
    out = LineFormatter().format(record("caller %s said %r", HOSTILE_TEXT, "x", exc=raised("bad\x1b[31m\rvalue")))
    message, *traceback = out.split("\n")
    assert message.isprintable() and "forged\\x1b[2J" in message and "\\u202e" in message
    assert traceback[0] == "Traceback (most recent call last):"  # the traceback keeps its own lines
    assert all(line.isprintable() for line in traceback)
    assert traceback[-1] == "ValueError: bad\\x1b[31m\\rvalue"
    # a value escaped at the call site is printable already: never escaped twice
    assert LineFormatter().format(record("%s", log_text("a\\b\x1b"))).endswith(": a\\\\b\\x1b")


def test_line_formatter_formats_as_its_format_string() -> None:
    """The direct build of a plain record gives what ``logging.Formatter`` makes of the format string."""

    class Reference(logs.EscapingFormatter):
        def __init__(self) -> None:
            super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
            return LineFormatter().formatTime(record)

    for rec in (record("route uniqueid=%s (%.1f ms): %s", "1.2", 0.25, "a; b"), record(HOSTILE_TEXT),
                record("%d%%", 5), logging.LogRecord("x", logging.INFO, __file__, 1, "msg", None, None),
                logging.LogRecord("x", 35, __file__, 1, {"a": 1}, None, None)):  # a level without a name
        expected = Reference().format(rec)
        assert LineFormatter().format(rec) == expected and rec.message == expected.split(": ", 1)[1]
    with_stack = record("x")
    with_stack.stack_info = "Stack (most recent call last):\n  here"
    assert LineFormatter().format(with_stack) == Reference().format(with_stack)


def test_json_formatter_escapes_what_json_leaves_raw() -> None:
    out = JSONFormatter().format(record("%s", HOSTILE_TEXT, exc=raised("\x9bboom")))
    assert "\n" not in out and "\x9b" not in out and "\u202e" not in out and "\u2028" not in out
    entry = json.loads(out)
    assert entry["msg"].isprintable() and "\\x9b31m" in entry["msg"]
    assert all(line.isprintable() for line in entry["exc"].split("\n"))


@pytest.mark.parametrize(("number", "masked"), [
    ("+8613800138000", "+86138****8000"), ("13800138000", "138****8000"), ("02158881234", "021****1234"),
    ("4008001000", "40****1000"), ("12345678", "****5678"), ("10086", "***86"), ("8001", "**01"), ("", ""),
])
def test_mask_number(number: str, masked: str) -> None:
    assert mask_number(number) == masked


def test_caller_number_masked_unless_log_pii_or_debug(pii: Any) -> None:
    logger = logging.getLogger("ccserver.test.pii")
    logger.setLevel(logging.INFO)
    try:
        assert caller_number("+8613800138000", logger) == "+86138****8000"
        assert caller_number("138\x1b0013\r8000", logger) == "138\\x1b0****8000"  # masked, then escaped
        pii(True)
        assert caller_number("+8613800138000", logger) == "+8613800138000"
        pii(False)
        logger.setLevel(logging.DEBUG)
        assert caller_number("+8613800138000", logger) == "+8613800138000"
    finally:
        logger.setLevel(logging.NOTSET)


def test_setup_logging_sets_log_pii(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "_log_pii", False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.setup_logging("INFO", log_pii=True)
        assert caller_number("13800138000", logging.getLogger("ccserver.x")) == "13800138000"
        assert isinstance(root.handlers[-1].formatter, LineFormatter)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


# -- call sites --------------------------------------------------------------------------------------------------
def route_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("route ")]


def test_route_line_masks_the_caller_by_default(demo: Any, caplog: pytest.LogCaptureFixture, pii: Any) -> None:  # noqa: F811
    sessions, data = demo
    svc = Service(data, CustomerDirectory(sessions))
    with caplog.at_level(logging.INFO, logger="ccserver"):
        svc.call("agi-01-13800138000")
        pii(True)
        svc.call("agi-01-13800138000")
    masked, full = route_lines(caplog)
    assert "caller=138****8000 " in masked and "13800138000" not in masked
    assert "caller=13800138000 " in full
    caplog.clear()
    pii(False)
    with caplog.at_level(logging.DEBUG, logger="ccserver"):
        svc.call("agi-01-13800138000")
    assert "caller=13800138000 " in route_lines(caplog)[0]


HOSTILE_ENV = {
    "callerid": "1380013\x1b[2J8000\r",
    "calleridname": "Zhang\r\nWei\x1b]0;pwned\x07",
    "uniqueid": "1795416921.0\r2026-01-01 00:00:00,000 INFO    ccserver.routing: route forged\x1b[2K",
    "channel": "PJSIP/x\x1b[31m-0001",
    "arg_1": "camp\r\x1b",
}


def test_no_log_record_carries_a_raw_control_character(demo: Any, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    """Hostile values through the routing service, an unknown script and a failing handler, every level on:
    each message, as the call site built it (no formatter involved), is printable."""
    sessions, data = demo
    svc = Service(data, CustomerDirectory(sessions))
    env = load_agi("agi-01-13800138000").env

    async def failing(session: AGISession) -> None:
        raise ValueError(f"cannot handle {session.callerid} / {session.calleridname}")

    handlers = {**svc.service.handlers(), "failing": failing}
    with caplog.at_level(logging.DEBUG):
        for script in ("incoming", "failing", "unknown\x1b[2J", "callback", "survey"):
            peer = AGIPeer(env_block(env, **HOSTILE_ENV, network_script=script), Responder())
            Harness(handlers, peer, clock=svc.clock, default_variables={"CC_QUEUE": "default"}).flush()
        server_lines = [r for r in caplog.records if r.name.startswith("ccserver")]
    assert len(server_lines) >= 4, [r.getMessage() for r in server_lines]
    bad = [r.getMessage() for r in server_lines if not printable(r.getMessage())]
    assert bad == []
    # and the failure is still reported with the (escaped) uniqueid
    assert any("failed" in r.getMessage() and "1795416921.0\\r2026" in r.getMessage() for r in server_lines)


def test_the_formatter_is_the_net_under_every_logger(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.setup_logging("INFO")
        logging.getLogger("somelibrary").warning("peer said %s", "x\r\nforged\x1b[2J")
        sys.stderr.flush()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "x\\r\\nforged\\x1b[2J" in err


def _one_websocket_connection() -> None:
    """A real websockets server and client: one connection opened, a message echoed, closed."""
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"

    asyncio.run(main())


@pytest.mark.parametrize("level, shown", [("INFO", False), ("DEBUG", True)])
def test_a_websocket_connection_logs_no_info_line(capsys: pytest.CaptureFixture[str], level: str,
                                                  shown: bool) -> None:
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    try:
        logs.setup_logging(level)
        _one_websocket_connection()
        logging.getLogger("websockets.server").warning("a websockets warning")
        sys.stderr.flush()
    finally:
        root.handlers[:] = handlers
        root.setLevel(root_level)
        logging.getLogger("websockets").setLevel(logging.NOTSET)
    err = capsys.readouterr().err
    assert ("connection open" in err and "connection closed" in err) is shown, err
    assert "a websockets warning" in err  # warnings and errors still reach the log
    if not shown:  # the warning is the only line
        assert len(err.splitlines()) == 1 and "WARNING" in err, err
