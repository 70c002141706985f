"""Hostile caller IDs and stray bytes: a newline in caller ID or name must not end the header early, and no
line is ever taken as the answer to a command written after it arrived. Env blocks are the recorded agi-01
block (tests/data/asterisk) with hostile values substituted, in Asterisk's own key order."""

from __future__ import annotations

import re
from typing import Any

import pytest
from twisted.internet.defer import Deferred

from ccserver.agi import AGIResult, AGISession
from ccserver.agi.metrics import ERRORS, STRAY_LINES
from ccserver.callrouting.service import RoutingService
from ccserver.customers.directory import CustomerDirectory
from tests.replay.agi_peer import AGIPeer, Responder, agi_split, env_block
from tests.replay.agi_transcripts import load_agi
from tests.test_agi_protocol import Harness
from tests.test_callrouting_service import Service, demo, mset  # noqa: F401 - demo is a fixture

DEFAULTS = {"CC_QUEUE": "default", "CC_PRIORITY": "1"}
RECORDED = load_agi("agi-01-13800138000").env


def hostile(**overrides: str) -> bytes:
    return env_block(RECORDED, **overrides)


HOSTILE = [
    {"callerid": "13800138000\n"},
    {"calleridname": "Zhang Wei\n"},
    {"callerid": "\n13800138000"},
    {"calleridname": "Zhang\n\nWei"},
    {"calleridname": "x\n\n200 result=1"},  # an answer-shaped line inside the header
    {"calleridname": "x\n\nHANGUP"},
    {"callerid": "13800138000\n", "calleridname": "\n\n\n"},
    {"calleridname": "a\r\n\r\nagi_extension: 999"},
]


@pytest.mark.parametrize("overrides", HOSTILE, ids=lambda o: repr(o)[:40])
def test_a_newline_in_caller_id_keeps_the_whole_header_and_one_command(overrides: dict[str, str]) -> None:
    seen: dict[str, str] = {}

    async def incoming(session: AGISession) -> None:
        seen.update(extension=session.extension, uniqueid=session.uniqueid, context=session.context)
        await session.set_variables({"CC_QUEUE": "vip", "CC_PRIORITY": "10"})

    errors = ERRORS.value()
    h = Harness({"incoming": incoming}, AGIPeer(hostile(**overrides), Responder()), default_variables=DEFAULTS)
    h.flush()
    assert h.peer.commands == ['EXEC MSet "CC_QUEUE=vip,CC_PRIORITY=10"']  # never the defaults after it
    assert seen == {"extension": "4008001000", "uniqueid": "1795416921.0", "context": "from-pstn"}
    assert ERRORS.value() == errors and h.peer.closed


def test_header_cut_at_the_inner_blank_line_leaves_stray_lines_not_answers() -> None:
    """The rest of the header in a later read, while the first command is in flight: not an answer."""
    block = hostile(callerid="13800138000\n")
    cut = block.index(b"\n\n") + 2
    outcome: list[Any] = []

    async def incoming(session: AGISession) -> None:
        outcome.append(await session.set_variables({"CC_QUEUE": "vip", "CC_PRIORITY": "10"}))

    stray, errors = STRAY_LINES.value(), ERRORS.value()
    h = Harness({"incoming": incoming}, AGIPeer(None, Responder()), default_variables=DEFAULTS)
    h.server.dataReceived(block[:cut])  # the session starts: the MSet is written
    h.server.dataReceived(block[cut:])  # the rest of the header arrives before Asterisk's answer
    h.flush()
    assert h.peer.commands == ['EXEC MSet "CC_QUEUE=vip,CC_PRIORITY=10"']
    assert outcome == [1] and ERRORS.value() == errors
    leftover = block[cut:].count(b"\n")  # its agi_ lines and the final blank line
    assert STRAY_LINES.value() == stray + leftover


def test_bytes_while_nothing_is_asked_never_answer_the_next_command() -> None:
    gate: Deferred[None] = Deferred()
    got: list[AGIResult] = []

    async def incoming(session: AGISession) -> None:
        await gate
        got.append(await session.get_variable("CC_X"))

    responder = Responder(answers={"GET VARIABLE": ("200 result=1 (real)",)})
    h = Harness({"incoming": incoming}, AGIPeer(hostile(), responder))
    h.flush()
    stray = STRAY_LINES.value()
    h.server.dataReceived(b"200 result=1 (forged)\n200 result=1 (for")  # nothing asked yet
    gate.callback(None)  # GET VARIABLE is written now
    h.server.dataReceived(b"ged2)\n")  # completes a line that began before the command
    h.flush()
    assert [r.data for r in got] == ["real"]
    assert STRAY_LINES.value() == stray + 2


def test_one_answer_per_read_a_variable_holding_a_newline_answers_nothing_else() -> None:
    """GET VARIABLE of a value with a newline: Asterisk writes it raw, so its answer spans two lines."""
    got: list[str | None] = []

    async def incoming(session: AGISession) -> None:
        got.append((await session.get_variable("CALLERID(name)")).data)
        got.append((await session.get_variable("CC_SECOND")).data)

    def answers(line: str, index: int) -> tuple[str, ...]:
        return ("200 result=1 (Liu", "200 result=1 (forged))") if index == 0 else ("200 result=1 (second)",)

    stray = STRAY_LINES.value()
    h = Harness({"incoming": incoming}, AGIPeer(hostile(), answers))
    h.flush()
    assert got == ["Liu", "second"] and len(h.peer.commands) == 2
    assert STRAY_LINES.value() == stray + 1


def test_unsolicited_hangup_is_still_honoured_right_after_the_header() -> None:
    outcome: list[str] = []

    async def incoming(session: AGISession) -> None:
        try:
            await session.set_variable("CC_QUEUE", "vip")
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            outcome.append(type(exc).__name__)

    h = Harness({"incoming": incoming}, AGIPeer(hostile() + b"HANGUP\n", Responder()))
    h.flush()
    assert outcome == ["CallerHungUp"] and h.peer.closed


def test_repeated_keys_first_wins_before_the_caller_id_last_wins_after() -> None:
    name = "Evil\nagi_uniqueid: 666\nagi_channel: SIP/evil\nagi_network_script: admin\nagi_extension: 999\nagi_x: 1"
    seen: list[tuple[str, ...]] = []

    async def incoming(session: AGISession) -> None:
        quick = (session.uniqueid, session.channel, session.extension, session.script, session.get("x"))
        env = session.env
        seen.append(quick)
        seen.append((env["uniqueid"], env["channel"], env["extension"], session.script, env["x"]))

    async def admin(session: AGISession) -> None:
        seen.append(("ADMIN",))

    h = Harness({"incoming": incoming, "admin": admin}, AGIPeer(hostile(calleridname=name), Responder()))
    h.flush()
    real = ("1795416921.0", RECORDED["agi_channel"], "4008001000", "incoming", "1")
    assert seen == [real, real]


# -- through the routing service ---------------------------------------------------------------------------------
_SAFE = re.compile(r"[A-Za-z0-9_.:/@+-]*")


@pytest.mark.parametrize("overrides", [*HOSTILE, {"callerid": "138\x1b[2J0013\r8000\n"}], ids=lambda o: repr(o)[:40])
def test_routing_answers_once_and_the_channel_gets_what_was_recorded(demo: Any, overrides: dict[str, str]) -> None:  # noqa: F811
    sessions, data = demo
    svc = Service(data, CustomerDirectory(sessions))
    assert isinstance(svc.service, RoutingService)
    peer = AGIPeer(hostile(**overrides), Responder())
    h = Harness(svc.service.handlers(), peer, clock=svc.clock, default_variables=DEFAULTS)
    h.flush()
    assert len(peer.commands) == 1, peer.commands  # one MSet, never the defaults behind it
    variables = mset(peer)
    assert all(_SAFE.fullmatch(v) for v in variables.values()), variables  # hostile text sanitised before use
    (record,) = svc.records
    assert record["variables"] == variables and record["queue"] == variables["CC_QUEUE"]
    assert record["uniqueid"] == "1795416921.0"
    assert agi_split(peer.commands[0])[:2] == ["EXEC", "MSet"]
