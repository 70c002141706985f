"""A fake Asterisk for tests: plays a recorded AMI transcript to a real client.

Each connection plays the next session of the transcript (``<<client reconnects>>`` separates them):
the banner, then the recorded messages in order. At every recorded ``send`` the play stops until the
client sends an action of the same name; the recorder's ActionID is then mapped to the client's, and
every later message carrying the recorded ActionID (response, list members, OriginateResponse) is
rewritten to the client's. ``<<eof>>`` closes the connection. Actions with no recorded counterpart get a
synthetic answer (Ping -> Pong, Challenge, Logoff -> Goodbye + close, others -> Error).

Pacing: ``speed=None`` writes as fast as the client reads (a streaming producer: the transport pauses us
when its buffer is full); ``speed=1.0`` follows the recorded timing, ``speed=10`` ten times faster.
``copies=N`` adds N-1 copies of every unsolicited event with rewritten Uniqueid/Linkedid/Channel/
CallerIDNum values so the calls don't collide. ``retime=True`` rewrites every ``Timestamp:`` to the moment the
message is sent (for a live server whose clock is today, not the recording's day).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from ccserver.ami.message import BANNER_PREFIX, parse_stream
from tests.replay.transcripts import EOF_MARK, Entry, load_entries, split_sessions

_AID = re.compile(r"^ActionID: ([^\r\n]*)", re.M)
_TIMESTAMP = re.compile(r"^Timestamp: [0-9.]+", re.M)


@dataclass
class Item:
    kind: str  # "banner" | "msg" | "send" | "eof"
    t: float
    text: str = ""  # banner line / message text (no terminator)
    action: str = ""  # for "send": the recorded Action name
    rec_aid: str | None = None  # recorded ActionID carried by a msg, or of a send


@dataclass
class Session:
    items: list[Item] = field(default_factory=list)


def _message_aid(text: str) -> str | None:
    m = _AID.search(text)
    return m.group(1) if m else None


def build_sessions(entries: list[Entry]) -> list[Session]:
    sessions = []
    for raw in split_sessions(entries):
        session = Session()
        buf = ""
        for e in raw:
            if e.dir == "recv" and e.data == EOF_MARK:
                session.items.append(Item("eof", e.t))
            elif e.dir == "recv":
                buf += e.data
                if buf.startswith(BANNER_PREFIX) and "\r\n" in buf:
                    line, _, buf = buf.partition("\r\n")
                    session.items.append(Item("banner", e.t, text=line))
                while True:
                    end = buf.find("\r\n\r\n")
                    if end < 0:
                        break
                    text, buf = buf[:end], buf[end + 4:]
                    session.items.append(Item("msg", e.t, text=text, rec_aid=_message_aid(text)))
            elif e.dir == "send" and not e.is_marker:
                msg = parse_stream(e.data.encode())[0]
                session.items.append(Item("send", e.t, action=(msg.get("Action") or "").lower(),
                                          rec_aid=msg.action_id))
        sessions.append(session)
    return sessions


# -- copies with rewritten identifiers ---------------------------------------------------------------
_NUMBER_HEADERS = re.compile(r"^(\w*CallerIDNum|\w*ConnectedLineNum): (\d{4,})\r?$", re.M)
_ID_LINE = re.compile(r"^(\w*(?:Uniqueid|Linkedid)): ([^\r\n]+)", re.M)
_CHAN_SEQ = re.compile(r"-([0-9a-f]{8});")


def caller_numbers(texts: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for text in texts:
        found.update(m.group(2) for m in _NUMBER_HEADERS.finditer(text))
    return found


def rewrite_copy(text: str, k: int, numbers: set[str] | Iterable[str]) -> str:
    """Copy ``k`` (>=1) of a message: ids, channel sequence numbers and caller numbers made unique."""
    def new_id(m: re.Match[str]) -> str:
        value = m.group(2)
        head, dot, tail = value.partition(".")
        if dot and head.isdigit() and tail.isdigit():
            value = f"{head}.{int(tail) + k * 1_000_000}"
        elif value not in ("", "<unknown>"):
            value = f"{value}-{k}"
        return f"{m.group(1)}: {value}"

    text = _ID_LINE.sub(new_id, text)
    text = _CHAN_SEQ.sub(lambda m: f"-{int(m.group(1), 16) + k * 0x1000000:08x};", text)
    for number in numbers:
        if number in text:
            text = re.sub(rf"(?<!\d){re.escape(number)}(?!\d)", f"{number}{k:03d}", text)
    return text


def multiply_stream(data: bytes, copies: int) -> bytes:
    """The recv bytes of one session with every unsolicited event repeated ``copies`` times (rewritten).

    Responses and list members (messages with an ActionID) appear once. Used by load tests and the bench.
    """
    text = data.decode("utf-8")
    banner = ""
    if text.startswith(BANNER_PREFIX):
        line, _, text = text.partition("\r\n")
        banner = line + "\r\n"
    blocks = text.split("\r\n\r\n")
    tail = blocks.pop()
    numbers = caller_numbers(blocks)
    out = [banner]
    for block in blocks:
        out.append(block + "\r\n\r\n")
        if block.startswith("Event: ") and "\r\nActionID: " not in block:
            for k in range(1, copies):
                out.append(rewrite_copy(block, k, numbers) + "\r\n\r\n")
    out.append(tail)
    return "".join(out).encode("utf-8")


# -- the peer ------------------------------------------------------------------------------------------
@implementer(IPushProducer)
class AMIReplayProtocol(Protocol):
    def __init__(self, factory: AMIReplayFactory, session: Session | None) -> None:
        self.factory = factory
        self.clock = factory.clock
        self.items = session.items if session else []
        self.pos = 0
        self.aid_map: dict[str, str] = {}
        self.matched: set[int] = set()  # indexes of send items answered by a client action
        self.paused = False
        self.timer: IDelayedCall | None = None
        self.inbuf = b""
        self.received: list[Any] = []  # client actions (AMIMessage), for assertions
        self.last_t: float | None = None
        self.closed = False

    def connectionMade(self) -> None:
        self.factory.connections.append(self)
        if self.factory.speed is None:
            self.transport.registerProducer(self, True)  # type: ignore[union-attr]
        if not self.items:
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        self._pump()

    def connectionLost(self, reason: Any = None) -> None:
        self.closed = True
        if self.timer is not None and self.timer.active():
            self.timer.cancel()

    # IPushProducer
    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        if self.paused:
            self.paused = False
            self._pump()

    def stopProducing(self) -> None:
        self.closed = True

    # -- playing -----------------------------------------------------------------------------------
    def _pump(self) -> None:
        self.timer = None
        out: list[str] = []
        while self.pos < len(self.items) and not self.closed and not self.paused and not self.factory.silent:
            item = self.items[self.pos]
            if item.kind == "send":
                if self.pos in self.matched or item.action in self.factory.skip_actions:
                    self.pos += 1
                    continue
                break  # wait for the client's action
            speed = self.factory.speed
            if speed is not None and self.last_t is not None and item.t > self.last_t:
                delay = (item.t - self.last_t) / speed
                if delay > 0.0005:
                    self._flush(out)
                    self.last_t = item.t
                    self.timer = self.clock.callLater(delay, self._pump)
                    return
            self.last_t = item.t
            self.pos += 1
            if item.kind == "eof":
                self._flush(out)
                self.transport.loseConnection()  # type: ignore[union-attr]
                self.closed = True
                return
            if item.kind == "banner":
                out.append(item.text + "\r\n")
                continue
            out.append(self._rewrite(item) + "\r\n\r\n")
            if len(out) >= 64:
                self._flush(out)  # let the transport push back (pauseProducing) between batches
        self._flush(out)

    def _flush(self, out: list[str]) -> None:
        if out:
            self.transport.write("".join(out).encode("utf-8"))  # type: ignore[union-attr]
            out.clear()

    def _rewrite(self, item: Item) -> str:
        text = item.text
        if item.rec_aid is not None and item.rec_aid in self.aid_map:
            text = text.replace(f"ActionID: {item.rec_aid}", f"ActionID: {self.aid_map[item.rec_aid]}", 1)
        if self.factory.retime and "Timestamp: " in text:
            # As if Asterisk sent it now: its Timestamp is the peer's clock (a recording replayed days later).
            text = _TIMESTAMP.sub(f"Timestamp: {self.clock.seconds():.6f}", text)
        return text

    # -- client actions ----------------------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        self.inbuf += data
        end = self.inbuf.rfind(b"\r\n\r\n")
        if end < 0:
            return
        complete, self.inbuf = self.inbuf[:end + 4], self.inbuf[end + 4:]
        for msg in parse_stream(complete):
            self.received.append(msg)
            self.factory.actions.append(msg)
            self._on_action(msg)
        if self.timer is None:
            self._pump()

    def _on_action(self, msg: Any) -> None:
        name = (msg.get("Action") or "").lower()
        aid = msg.action_id or ""
        if self.factory.silent:
            return
        for i in range(self.pos, len(self.items)):
            item = self.items[i]
            if item.kind == "send" and i not in self.matched and item.action == name:
                self.matched.add(i)
                if item.rec_aid is not None:
                    self.aid_map[item.rec_aid] = aid
                return
        self._synthesize(name, aid)

    def _synthesize(self, name: str, aid: str) -> None:
        if name == "ping":
            reply = f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\nTimestamp: {self.clock.seconds():.6f}"
        elif name == "challenge":
            reply = f"Response: Success\r\nActionID: {aid}\r\nChallenge: 162971476"
        elif name == "login":
            reply = f"Response: Success\r\nActionID: {aid}\r\nMessage: Authentication accepted"
        elif name == "logoff":
            reply = f"Response: Goodbye\r\nActionID: {aid}\r\nMessage: Thanks for all the fish."
            self.transport.write((reply + "\r\n\r\n").encode())  # type: ignore[union-attr]
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        else:
            reply = (f"Response: Error\r\nActionID: {aid}\r\nMessage: Invalid/unknown command: {name} "
                     "(replay peer: not in the transcript)")
        self.transport.write((reply + "\r\n\r\n").encode())  # type: ignore[union-attr]


class AMIReplayFactory(Factory):
    """Serves the transcript's sessions to successive connections (then closes any further ones).

    ``silent=True`` makes the peer stop sending anything (to test keepalive); it can be flipped at any time.
    """

    def __init__(self, transcript: str, *, clock: IReactorTime, speed: float | None = None, copies: int = 1,
                 skip_actions: Iterable[str] = (), repeat_last: bool = False, retime: bool = False) -> None:
        self.clock = clock
        self.retime = retime  # rewrite every Timestamp header to the time it is sent
        self.speed = speed
        self.sessions = build_sessions(load_entries(transcript))
        if copies > 1:
            self.sessions = [self._multiply(s, copies) for s in self.sessions]
        self.skip_actions = {a.lower() for a in skip_actions}
        self.repeat_last = repeat_last
        self.silent = False
        self.served = 0
        self.connections: list[AMIReplayProtocol] = []
        self.actions: list[Any] = []  # every action any client sent, in order

    @staticmethod
    def _multiply(session: Session, copies: int) -> Session:
        numbers = caller_numbers(i.text for i in session.items if i.kind == "msg")
        items: list[Item] = []
        for item in session.items:
            items.append(item)
            if item.kind == "msg" and item.rec_aid is None and item.text.startswith("Event: "):
                for k in range(1, copies):
                    items.append(Item("msg", item.t, text=rewrite_copy(item.text, k, numbers)))
        return Session(items)

    def buildProtocol(self, addr: Any) -> AMIReplayProtocol:
        if self.served < len(self.sessions):
            session: Session | None = self.sessions[self.served]
        elif self.repeat_last and self.sessions:
            session = self.sessions[-1]
        else:
            session = None
        self.served += 1
        return AMIReplayProtocol(self, session)
