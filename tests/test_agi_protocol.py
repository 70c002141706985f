"""The FastAGI server against the replay peer, in memory (task.Clock for time): the recorded sessions, hangups,
the 520 block, handler errors, unknown scripts, hostile headers, queueing, metrics."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock, deferLater

from ccserver.agi import (
    AGIInvalidCommand,
    AGIResult,
    AGISession,
    AGIUsageError,
    CallerHungUp,
    FastAGIFactory,
    parse_result,
)
from ccserver.agi.metrics import ERRORS, SESSION_SECONDS, SESSIONS
from ccserver.agi.protocol import FastAGIProtocol
from tests.replay.agi_peer import (
    EOF,
    HANGUP_511,
    INVALID_510,
    MINUS_ONE,
    USAGE_520,
    AGIPeer,
    Responder,
    agi_split,
    connect_in_memory,
    env_block,
    transcript_peer,
)
from tests.replay.agi_transcripts import agi_transcript_paths, load_agi


class Harness:
    """A factory, one server protocol and one peer, connected in memory."""

    def __init__(
        self, handlers: dict[str, Any], peer: AGIPeer, clock: Clock | None = None, **factory_kwargs: Any
    ) -> None:
        self.clock = clock or Clock()
        self.factory = FastAGIFactory(handlers, clock=self.clock, **factory_kwargs)
        self.server: FastAGIProtocol = self.factory.buildProtocol(None)
        self.peer = peer
        self.pump = connect_in_memory(self.server, peer)

    def flush(self) -> None:
        self.pump.flush()


def counters() -> tuple[float, float, int]:
    return SESSIONS.value(), ERRORS.value(), SESSION_SECONDS.count


# -- replaying every recorded session ---------------------------------------------------------------------
async def replay_commands(session: AGISession, commands: list[str], outcomes: list[Any]) -> None:
    """Issue the recorded command lines through the session API (recording results or errors)."""
    for line in commands:
        w = agi_split(line)
        verb = " ".join(w[:2])
        if verb == "SET VARIABLE":
            request = session.set_variable(w[2], w[3])
        elif verb == "GET VARIABLE":
            request = session.get_variable(w[2])
        elif line.startswith("GET FULL VARIABLE"):
            request = session.get_full_variable(w[3])
        elif verb == "STREAM FILE":
            request = session.stream_file(w[2], w[3])
        elif verb == "GET DATA":
            request = session.get_data(w[2], int(w[3]), int(w[4]))
        elif line.startswith("WAIT FOR DIGIT"):
            request = session.wait_for_digit(int(w[3]))
        elif w[0] == "VERBOSE":
            request = session.verbose(w[1], int(w[2]))
        elif w[0] == "ANSWER":
            request = session.answer()
        elif verb == "CHANNEL STATUS":
            request = session.channel_status()
        elif w[0] == "EXEC" and len(w) == 3:
            request = session.exec(w[1], *w[2].split(","))  # the IVR's Read / Playback / MSet: one quoted word
        elif verb == "DATABASE GET" and len(w) == 2:
            request = session.command("DATABASE GET")  # the recording's deliberately bad command
        else:
            request = session.command(w[0], *w[1:])
        try:
            outcomes.append(await request)
        except (CallerHungUp, AGIUsageError) as exc:
            outcomes.append(exc)


@pytest.mark.parametrize("path", agi_transcript_paths(), ids=lambda p: p.stem)
def test_replay_recorded_session(path) -> None:
    transcript = load_agi(path)
    outcomes: list[Any] = []
    seen_env: dict[str, str] = {}

    async def incoming(session: AGISession) -> None:
        seen_env.update(session.env)
        await replay_commands(session, transcript.commands, outcomes)

    h = Harness({"incoming": incoming, "callback": incoming},
                transcript_peer(path.stem if path.parent.name != "agi-load" else str(path)))
    h.flush()
    assert seen_env["uniqueid"] == transcript.env["agi_uniqueid"]
    sent = h.peer.commands
    assert sent == transcript.commands[: len(sent)]  # byte-identical wire
    assert h.peer.closed
    if path.parent.name != "agi-load" and path.stem.startswith("agi-04"):
        # ANSWER, GET DATA (-1: caller gone), WAIT FOR DIGIT (HANGUP + 511): then nothing more is written
        assert sent == transcript.commands[:3]
        assert outcomes[0] == parse_result("200 result=0")
        assert isinstance(outcomes[1], CallerHungUp) and isinstance(outcomes[2], CallerHungUp)
        assert isinstance(outcomes[3], CallerHungUp)  # SET VARIABLE after the hangup: refused, not sent
        return
    assert sent == transcript.commands
    for outcome, exchange in zip(outcomes, transcript.exchanges, strict=True):
        if exchange.answer[0] == "HANGUP":  # agi-07: the caller left during Read; the next command got HANGUP
            assert isinstance(outcome, CallerHungUp)
        elif exchange.answer[0].startswith("520-"):
            assert isinstance(outcome, AGIUsageError)
            assert "Retrieves an entry in the Asterisk database" in outcome.usage
        else:
            assert outcome == parse_result(exchange.answer[0])


def test_agi_02_results_and_session_properties() -> None:
    results: dict[str, Any] = {}

    async def incoming(session: AGISession) -> None:
        results["props"] = (session.callerid, session.calleridname, session.extension, session.uniqueid)
        results["more"] = (session.channel, session.context, session.language, session.script, session.dnid)
        results["name"] = await session.get_variable("CALLERID(name)")
        results["stream"] = await session.stream_file("hello-world")
        results["data"] = await session.get_data("beep", 6000, 1)
        await session.set_variable("CC_QUEUE", "service")

    h = Harness({"incoming": incoming}, transcript_peer("agi-02-13912345678"))
    h.flush()
    assert results["props"] == ("13912345678", "Liu Yang", "4008002000", "1795416928.4")
    assert results["more"] == ("Local/13912345678@callers-00000002;1", "from-pstn", "en", "incoming", "unknown")
    assert results["name"].data == "Liu Yang" and results["name"].result == 1
    assert results["stream"].endpos == 11234 and results["stream"].digit == ""
    assert results["data"].digits == "2"
    assert h.peer.commands[-1] == 'SET VARIABLE CC_QUEUE "service"'


def test_env_substitution_and_request_args() -> None:
    env = load_agi("agi-01-13800138000").env
    peer = AGIPeer(
        env_block(
            env,
            callerid="02158881234",
            calleridname="Wang Fang",
            request="agi://127.0.0.1:4573/incoming?store=3",
            network_script="incoming?store=3",
            arg_1="sales",
            arg_2="",
        ),
        Responder(),
    )
    seen: dict[str, Any] = {}

    async def incoming(session: AGISession) -> None:
        seen.update(cid=session.callerid, name=session.calleridname, query=session.query, args=session.args)

    Harness({"incoming": incoming}, peer).flush()
    assert seen == {"cid": "02158881234", "name": "Wang Fang", "query": {"store": "3"}, "args": ["sales", ""]}


# -- hangups ------------------------------------------------------------------------------------------------
def test_hangup_mid_ivr_raises_in_handler_and_closes() -> None:
    """agi-04: GET DATA answers -1 (caller gone) -> CallerHungUp; not an error, no defaults written."""
    caught: list[BaseException] = []

    async def incoming(session: AGISession) -> None:
        await session.answer()
        try:
            await session.get_data("beep", 10000, 4)
        except CallerHungUp as exc:
            caught.append(exc)
            raise

    sessions, errors, _ = counters()
    h = Harness({"incoming": incoming}, transcript_peer("agi-04-13600000002"), default_variables={"CC_QUEUE": "x"})
    h.flush()
    assert len(caught) == 1
    assert h.peer.commands == ["ANSWER", "GET DATA beep 10000 4"]
    assert h.peer.closed and h.server.dead
    assert ERRORS.value() == errors and SESSIONS.value() == sessions + 1


def test_hangup_line_then_511() -> None:
    """The next command after the caller left gets HANGUP + 511: CallerHungUp, socket closed at once, and a
    later command fails without touching the wire."""
    events: list[str] = []

    async def incoming(session: AGISession) -> None:
        try:
            await session.wait_for_digit(5000)
        except CallerHungUp:
            events.append("hungup")
        events.append(f"alive={session.alive}")
        try:
            await session.set_variable("CC_QUEUE", "sales")
        except CallerHungUp:
            events.append("refused")

    h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000", Responder(inject={0: HANGUP_511})))
    h.flush()
    assert events == ["hungup", "alive=False", "refused"]
    assert h.peer.commands == ["WAIT FOR DIGIT 5000"]
    assert h.peer.closed


def test_unsolicited_hangup_while_handler_waits_elsewhere() -> None:
    done: Deferred[None] = Deferred()
    events: list[str] = []

    async def incoming(session: AGISession) -> None:
        await done  # e.g. a slow database lookup
        try:
            await session.set_variable("CC_QUEUE", "vip")
        except CallerHungUp:
            events.append("hungup")

    h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000"))
    h.flush()
    h.peer.send_hangup()
    h.flush()
    assert h.peer.closed  # closed promptly, before the handler even resumed
    done.callback(None)
    h.flush()
    assert events == ["hungup"] and h.peer.commands == []


def test_eof_mid_session_is_a_hangup_without_spin() -> None:
    events: list[str] = []

    async def incoming(session: AGISession) -> None:
        try:
            await session.stream_file("welcome")
        except CallerHungUp:
            events.append("eof")
        for _ in range(3):
            try:
                await session.noop()
            except CallerHungUp:
                events.append("refused")

    _, errors, _ = counters()
    h = Harness({"incoming": incoming}, transcript_peer("agi-03-13700000001", Responder(inject={0: EOF})))
    h.flush()
    assert events == ["eof", "refused", "refused", "refused"]
    assert h.peer.commands == ['STREAM FILE welcome ""']
    assert ERRORS.value() == errors


@pytest.mark.parametrize("method", ["answer", "stream_file", "get_data", "wait_for_digit", "exec"])
def test_minus_one_means_hangup_for_media_commands(method: str) -> None:
    calls = {
        "answer": lambda s: s.answer(),
        "stream_file": lambda s: s.stream_file("x"),
        "get_data": lambda s: s.get_data("x", 1000, 1),
        "wait_for_digit": lambda s: s.wait_for_digit(10),
        "exec": lambda s: s.exec("Playback", "x"),
    }
    caught: list[BaseException] = []

    async def incoming(session: AGISession) -> None:
        try:
            await calls[method](session)
        except CallerHungUp as exc:
            caught.append(exc)

    Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000", Responder(inject={0: MINUS_ONE}))).flush()
    assert len(caught) == 1


def test_minus_one_is_a_result_elsewhere() -> None:
    got: list[AGIResult] = []

    async def incoming(session: AGISession) -> None:
        got.append(await session.channel_status("SIP/none"))

    Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000", Responder(inject={0: MINUS_ONE}))).flush()
    assert got[0].result == -1


# -- error answers --------------------------------------------------------------------------------------------
def test_usage_block_split_across_reads() -> None:
    """agi-05's multi-line 520 block, delivered one byte at a time, is one AGIUsageError."""
    caught: list[AGIUsageError] = []
    after: list[AGIResult] = []

    async def incoming(session: AGISession) -> None:
        try:
            await session.command("DATABASE GET")
        except AGIUsageError as exc:
            caught.append(exc)
        after.append(await session.channel_status())

    h = Harness({"incoming": incoming}, AGIPeer(load_agi("agi-05-02158881234").env_block, lambda line, i: ()))
    h.flush()
    assert h.peer.commands == ["DATABASE GET"]
    for byte in ("\n".join(USAGE_520) + "\n").encode():
        h.server.dataReceived(bytes([byte]))
    assert len(caught) == 1 and "family" in caught[0].usage
    h.flush()
    assert h.peer.commands == ["DATABASE GET", "CHANNEL STATUS"]
    h.server.dataReceived(b"200 result=6\n")
    assert after[0].result == 6


def test_invalid_command_510() -> None:
    caught: list[BaseException] = []

    async def incoming(session: AGISession) -> None:
        try:
            await session.command("FROB NICATE")
        except AGIInvalidCommand as exc:
            caught.append(exc)

    Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000", Responder(inject={0: INVALID_510}))).flush()
    assert len(caught) == 1


# -- handler errors, defaults, unknown scripts ------------------------------------------------------------
def test_handler_error_writes_defaults_and_logs_uniqueid(caplog: pytest.LogCaptureFixture) -> None:
    async def incoming(session: AGISession) -> None:
        await session.set_variable("CC_TIER", "gold")
        raise RuntimeError("customer lookup exploded")

    sessions, errors, seconds = counters()
    with caplog.at_level(logging.ERROR, logger="ccserver.agi"):
        h = Harness(
            {"incoming": incoming},
            transcript_peer("agi-01-13800138000"),
            default_variables={"CC_QUEUE": "default", "CC_PRIORITY": 0},
        )
        h.flush()
    assert h.peer.commands == ['SET VARIABLE CC_TIER "gold"', 'EXEC MSet "CC_QUEUE=default,CC_PRIORITY=0"']
    assert h.peer.closed
    assert ERRORS.value() == errors + 1 and SESSIONS.value() == sessions + 1
    assert SESSION_SECONDS.count == seconds + 1
    assert "1795416921.0" in caplog.text and "customer lookup exploded" in caplog.text


def test_handler_raising_synchronously_and_non_coroutine_handlers() -> None:
    def broken(session: AGISession) -> None:
        raise KeyError("boom")

    h = Harness({"incoming": broken}, transcript_peer("agi-03-13700000001"), default_variables={"CC_QUEUE": "x"})
    h.flush()
    assert h.peer.commands == ['SET VARIABLE CC_QUEUE "x"'] and h.peer.closed

    def deferred_style(session: AGISession) -> Deferred[Any]:
        return session.set_variable("CC_QUEUE", "vip").deferred()

    h = Harness({"incoming": deferred_style}, transcript_peer("agi-03-13700000001"))
    h.flush()
    assert h.peer.commands == ['SET VARIABLE CC_QUEUE "vip"'] and h.peer.closed


def test_defaults_not_written_to_a_dead_channel() -> None:
    async def incoming(session: AGISession) -> None:
        try:
            await session.answer()
        except CallerHungUp:
            pass
        raise RuntimeError("after hangup")

    peer = transcript_peer("agi-01-13800138000", Responder(inject={0: HANGUP_511}))
    h = Harness({"incoming": incoming}, peer, default_variables={"CC_QUEUE": "default"})
    h.flush()
    assert h.peer.commands == ["ANSWER"] and h.peer.closed


def test_unknown_script(caplog: pytest.LogCaptureFixture) -> None:
    called: list[str] = []

    async def incoming(session: AGISession) -> None:
        called.append("incoming")

    env = load_agi("agi-01-13800138000").env
    peer = AGIPeer(env_block(env, network_script="nosuch"), Responder())
    _, errors, _ = counters()
    with caplog.at_level(logging.WARNING, logger="ccserver.agi"):
        h = Harness({"incoming": incoming}, peer, default_variables={"CC_QUEUE": "default"})
        h.flush()
    assert not called
    assert h.peer.commands == ['SET VARIABLE CC_QUEUE "default"'] and h.peer.closed
    assert ERRORS.value() == errors + 1
    assert "nosuch" in caplog.text and "1795416921.0" in caplog.text


def test_route_decorator_and_query_string() -> None:
    factory = FastAGIFactory(clock=Clock())
    seen: list[str] = []

    @factory.route("/ivr")
    async def ivr(session: AGISession) -> None:
        seen.append(session.script)

    peer = AGIPeer(env_block(load_agi("agi-01-13800138000").env, network_script="ivr?lang=zh"), Responder())
    connect_in_memory(factory.buildProtocol(None), peer).flush()
    assert seen == ["ivr"] and peer.closed
    with pytest.raises(ValueError):
        factory.register("/", ivr)
    with pytest.raises(ValueError):
        FastAGIFactory(default_variables={"BAD NAME": "x"})


# -- hostile headers ---------------------------------------------------------------------------------------
def test_oversize_header_dropped_and_counted() -> None:
    called: list[str] = []

    async def incoming(session: AGISession) -> None:
        called.append("x")

    big = b"agi_network: yes\nagi_calleridname: " + b"A" * 9000 + b"\n\n"
    _, errors, _ = counters()
    h = Harness({"incoming": incoming}, AGIPeer(big, Responder()))
    h.flush()
    assert h.peer.closed and not called and h.peer.commands == []
    assert h.factory.drops["oversize header"] == 1 and ERRORS.value() == errors + 1
    # a header that streams without ever ending is cut at the cap too
    h = Harness({"incoming": incoming}, AGIPeer(None, Responder()))
    for _ in range(100):
        h.server.dataReceived(b"agi_x: " + b"y" * 90 + b"\n")
        if h.server.dead:
            break
    assert h.server.dead and h.factory.drops["oversize header"] == 1


def test_header_timeout_with_clock() -> None:
    async def incoming(session: AGISession) -> None:
        pass

    _, errors, _ = counters()
    h = Harness({"incoming": incoming}, AGIPeer(b"agi_network: yes\n", Responder()))  # half a header, then silence
    h.flush()
    h.clock.advance(1.9)
    h.flush()
    assert not h.peer.closed
    h.clock.advance(0.1)
    h.flush()
    assert h.peer.closed and h.factory.drops["header timeout"] == 1 and ERRORS.value() == errors + 1
    assert not h.clock.getDelayedCalls()  # nothing left scheduled


def test_header_timeout_spares_started_sessions() -> None:
    gate: Deferred[None] = Deferred()

    async def incoming(session: AGISession) -> None:
        await gate
        await session.set_variable("CC_QUEUE", "vip")

    h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000"))
    h.flush()
    h.clock.advance(10)
    h.flush()
    assert not h.peer.closed
    gate.callback(None)
    h.flush()
    assert h.peer.commands == ['SET VARIABLE CC_QUEUE "vip"'] and h.peer.closed


def test_hostile_caller_id_cannot_pick_route_or_inject() -> None:
    seen: list[str] = []

    async def incoming(session: AGISession) -> None:
        seen.append(session.calleridname)
        await session.set_variable("CC_CALLER_NAME", session.calleridname)
        await session.set_variables({"CC_A": session.calleridname, "CC_B": "ok"})

    async def admin(session: AGISession) -> None:
        seen.append("ADMIN")

    name = 'x" agi_network_script: admin \\"; EXEC System rm,CC_B=pwned'
    env = load_agi("agi-01-13800138000").env
    h = Harness({"incoming": incoming, "admin": admin}, AGIPeer(env_block(env, calleridname=name), Responder()))
    h.flush()
    assert seen == [name]
    assert len(h.peer.commands) == 3
    for line in h.peer.commands:
        assert agi_split(line)[0] in ("SET", "EXEC")
    assert agi_split(h.peer.commands[0])[3] == name
    assert agi_split(h.peer.commands[1]) == ["SET", "VARIABLE", "CC_A", name]  # unsafe for MSet: own command
    assert agi_split(h.peer.commands[2]) == ["SET", "VARIABLE", "CC_B", "ok"]


# -- command queue and drivers -----------------------------------------------------------------------------
def test_commands_are_queued_one_at_a_time() -> None:
    results: list[AGIResult] = []

    async def incoming(session: AGISession) -> None:
        requests = [session.set_variable(f"CC_{i}", i) for i in range(5)]
        for request in requests:
            results.append(await request)

    h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000"))
    h.flush()
    assert len(results) == 5
    assert all(chunk.count(b"\n") == 1 for chunk in h.peer.chunks)  # never two commands in flight
    assert h.peer.commands == [f'SET VARIABLE CC_{i} "{i}"' for i in range(5)]


def test_handler_awaits_deferreds_and_timers() -> None:
    clock = Clock()
    got: list[Any] = []

    async def incoming(session: AGISession) -> None:
        got.append(await succeed("already"))
        got.append(await deferLater(clock, 1.0, lambda: "later"))
        got.append((await session.get_variable("CALLERID(name)")).data)

    h = Harness({"incoming": incoming}, transcript_peer("agi-02-13912345678"), clock=clock)
    h.flush()
    assert got == ["already"]
    h.clock.advance(1.0)
    h.flush()
    assert got == ["already", "later", "Liu Yang"]


def test_handler_under_twisted_driver() -> None:
    """Session commands also work when Twisted's own coroutine driver runs the handler."""
    got: list[Any] = []

    async def inner(session: AGISession) -> None:
        got.append((await session.get_variable("CALLERID(name)")).data)
        got.append(await session.set_variables({"CC_QUEUE": "service", "CC_PRIORITY": 2}))

    def incoming(session: AGISession) -> Deferred[None]:
        return Deferred.fromCoroutine(inner(session))

    h = Harness({"incoming": incoming}, transcript_peer("agi-02-13912345678"))
    h.flush()
    assert got == ["Liu Yang", 1]
    assert h.peer.commands[-1] == 'EXEC MSet "CC_QUEUE=service,CC_PRIORITY=2"'


def test_awaiting_anything_else_is_a_clear_error(caplog: pytest.LogCaptureFixture) -> None:
    class Weird:
        def __await__(self):  # type: ignore[no-untyped-def]
            yield "not a deferred"

    async def incoming(session: AGISession) -> None:
        await Weird()

    with caplog.at_level(logging.ERROR, logger="ccserver.agi"):
        h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000"))
        h.flush()
    assert "await AGI commands, coroutines and asyncio futures" in caplog.text and h.peer.closed


def test_context_variables_do_not_leak() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outside")

    async def incoming(session: AGISession) -> None:
        var.set("inside")
        await session.noop()
        assert var.get() == "inside"

    Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000")).flush()
    assert var.get() == "outside"


# -- set_variables -------------------------------------------------------------------------------------------
def test_set_variables_one_round_trip_and_comma_fallback() -> None:
    sent: list[int] = []

    async def incoming(session: AGISession) -> None:
        sent.append(await session.set_variables({"CC_QUEUE": "vip", "CC_PRIORITY": 10, "CC_NAME": "Li, Lei"}))

    h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000"))
    h.flush()
    assert sent == [2]
    assert h.peer.commands == ['EXEC MSet "CC_QUEUE=vip,CC_PRIORITY=10"', 'SET VARIABLE CC_NAME "Li, Lei"']


def test_set_variables_without_mset_application() -> None:
    """Asterisk < 13.8 answers EXEC MSet with result=-2: fall back, and stop using MSet server-wide."""

    async def incoming(session: AGISession) -> None:
        await session.set_variables({"CC_QUEUE": "vip", "CC_PRIORITY": 10})

    peer = transcript_peer("agi-01-13800138000", Responder(answers={"EXEC": ("200 result=-2",)}))
    h = Harness({"incoming": incoming}, peer)
    h.flush()
    assert h.peer.commands == [
        'EXEC MSet "CC_QUEUE=vip,CC_PRIORITY=10"',
        'SET VARIABLE CC_QUEUE "vip"',
        'SET VARIABLE CC_PRIORITY "10"',
    ]
    assert h.factory.use_mset is False


def test_value_error_before_anything_is_written() -> None:
    caught: list[BaseException] = []

    async def incoming(session: AGISession) -> None:
        for bad in (
            lambda: session.set_variable("CC_NAME", "x\nEXEC System rm -rf /"),
            lambda: session.verbose("a\rb"),
            lambda: session.exec("MSet", "A=1\x00"),
        ):
            try:
                bad()
            except ValueError as exc:
                caught.append(exc)
        try:
            await session.set_variables({"CC_OK": "fine", "CC_BAD": "\n"})
        except ValueError as exc:
            caught.append(exc)

    h = Harness({"incoming": incoming}, transcript_peer("agi-01-13800138000"))
    h.flush()
    assert len(caught) == 4 and h.peer.commands == []


def test_trickled_header_and_answers_are_handled_linearly() -> None:
    """A header and an answer arriving a byte at a time still work (and are never rescanned from the start)."""
    got: list[AGIResult] = []

    async def incoming(session: AGISession) -> None:
        got.append(await session.get_variable("CALLERID(name)"))

    peer = AGIPeer(None, lambda line, i: ())
    h = Harness({"incoming": incoming}, peer)
    for byte in load_agi("agi-02-13912345678").env_block:
        h.server.dataReceived(bytes([byte]))
    h.flush()
    assert peer.commands == ["GET VARIABLE CALLERID(name)"]
    for byte in b"200 result=1 (Liu Yang)\n":
        h.server.dataReceived(bytes([byte]))
    assert got[0].data == "Liu Yang"


def test_over_long_answer_line_closes(caplog: pytest.LogCaptureFixture) -> None:
    caught: list[BaseException] = []

    async def incoming(session: AGISession) -> None:
        try:
            await session.get_variable("X")
        except CallerHungUp as exc:
            caught.append(exc)

    h = Harness({"incoming": incoming}, AGIPeer(load_agi("agi-01-13800138000").env_block, lambda line, i: ()))
    h.flush()
    _, errors, _ = counters()
    with caplog.at_level(logging.WARNING, logger="ccserver.agi"):
        for _ in range(20):
            h.server.dataReceived(b"2" * 1024)
    h.flush()
    assert caught and h.peer.closed and ERRORS.value() == errors + 1


def test_env_lookup_without_full_parse_agrees_with_parse() -> None:
    seen: list[tuple[str, ...]] = []

    async def incoming(session: AGISession) -> None:
        quick = (session.callerid, session.calleridname, session.extension, session.get("accountcode", "x"))
        missing = session.get("nosuch", "dflt")
        full = session.env
        seen.append((*quick, missing))
        seen.append((full["callerid"], full["calleridname"], full["extension"], full["accountcode"], "dflt"))

    for path in agi_transcript_paths():
        seen.clear()
        Harness({"incoming": incoming, "callback": incoming}, transcript_peer(str(path))).flush()
        assert seen[0] == seen[1]


def test_env_lookup_read_twice_agrees_with_parse() -> None:
    """A key read again without a full parse (routing reads the caller ID, the DID and the uniqueid twice) gives
    the same value, also for keys a hostile caller ID repeats; after a full parse the parse is what counts."""
    from ccserver.agi.env import parse_env
    from ccserver.agi.session import AGISession

    block = (b"agi_network: yes\nagi_network_script: incoming\nagi_uniqueid: 1.1\nagi_callerid: 1\n"
             b"agi_uniqueid: forged\nagi_extension: 999\nagi_calleridname: x\r\nagi_extension: 4008001000\n"
             b"agi_accountcode: \n\n")
    keys = ("uniqueid", "extension", "callerid", "calleridname", "accountcode", "nosuch", "uniqueid", "extension")
    session = AGISession(None, block, "incoming")  # type: ignore[arg-type]
    first = [session.get(k, "dflt") for k in keys]
    again = [session.get(k, "dflt") for k in keys]
    full = parse_env(block)
    assert first == again == [full.get(k, "dflt") for k in keys]
    assert first[:2] == ["1.1", "4008001000"]
    assert session.env == full and [session.get(k, "dflt") for k in keys] == first


@pytest.mark.parametrize("seed", range(3))
def test_args_without_a_full_parse_match_the_full_parse(seed: int) -> None:
    """``session.args`` takes shortcuts for no argument and for one; for any block — recorded env, hostile caller
    ID names that mention argument keys, \\r\\n line ends, several arguments — it equals the full parse."""
    import random

    from ccserver.agi.session import AGISession

    rng = random.Random(seed)
    base = load_agi("agi-01-13800138000").env
    names = ["Zhang Wei", "arg_1: evil", "x agi_arg_1: y", "arg_2:", "", "a\u5f20"]
    for _ in range(500):
        count = rng.choice((0, 0, 1, 1, 2))
        extra = {f"arg_{i + 1}": rng.choice(["", "7", "camp 1", "arg_1: z"]) for i in range(count)}
        block = env_block(base, calleridname=rng.choice(names), **extra)
        if rng.random() < 0.2:
            block = block.replace(b"\n", b"\r\n")
        shortcut = AGISession(None, block, "incoming").args  # type: ignore[arg-type]
        parsed = AGISession(None, block, "incoming")  # type: ignore[arg-type]
        parsed.env  # noqa: B018 - parse first: args then reads the parsed dict
        assert shortcut == parsed.args, block
