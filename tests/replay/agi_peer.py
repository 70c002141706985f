"""A replay peer that plays Asterisk's side of FastAGI (test-only).

It connects to the server (real TCP, or in memory through ``twisted.test.iosim``), sends a recorded
``agi_*`` block -- caller ID, extension, uniqueid ... substitutable -- then answers every command line the
server writes through a scripted ``Responder``, and records each line so tests can assert the wire.

The recordings' variable names are the lab's own (CC_PRIO, CC_TIMEOUT ...), so recorded answers are matched
by position and command shape (the verb: ``SET VARIABLE``, ``GET DATA`` ...), never by variable name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.python.failure import Failure

from tests.replay.agi_transcripts import AGITranscript, command_verb, load_agi

# Canned answers, as Asterisk really sends them (see the transcripts).
HANGUP_511: tuple[str, ...] = ("HANGUP", "511 Command Not Permitted on a dead channel or intercept routine")
DEAD_511: tuple[str, ...] = ("511 Command Not Permitted on a dead channel or intercept routine",)
MINUS_ONE: tuple[str, ...] = ("200 result=-1",)
INVALID_510: tuple[str, ...] = ("510 Invalid or unknown command",)
USAGE_520: tuple[str, ...] = (
    "520-Invalid command syntax.  Proper usage follows:",
    "Retrieves an entry in the Asterisk database for a given <replaceable>family</replaceable> and "
    "<replaceable>key</replaceable>.",
    "Example return code: 200 result=1 (testvariable)",
    "520 End of proper usage.",
)


def agi_split(line: str) -> list[str]:
    """Model of res_agi's ``parse_args``: how Asterisk splits a command line into words.

    Spaces/tabs separate words outside quotes; ``"`` toggles quoting (an opening quote after whitespace
    starts a word, so ``""`` is an empty word; quotes inside a word just toggle); ``\\`` makes the next
    character literal, inside quotes or not (an escaped quote or space is kept as text).
    """
    words: list[list[str]] = []
    quoted = escaped = False
    between = True  # in whitespace between words
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and between:
                words.append([])
                between = False
            continue
        if ch in " \t" and not quoted and not escaped:
            between = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if between:
            words.append([])
            between = False
        words[-1].append(ch)
        escaped = False
    return ["".join(w) for w in words]


class _EOF:
    def __repr__(self) -> str:
        return "EOF"


EOF = _EOF()  # as a reply: Asterisk closes the socket instead of answering

Reply = Sequence[str] | _EOF

# What a dead channel still accepts (res_agi marks these dead-safe); everything else gets 511.
DEAD_OK = frozenset(
    {"SET VARIABLE", "GET VARIABLE", "GET FULL VARIABLE", "VERBOSE", "NOOP", "DATABASE GET", "DATABASE PUT", "EXEC"}
)


def env_block(env: Mapping[str, str], **overrides: str) -> bytes:
    """Serialise an ``agi_*`` block; ``callerid="..."`` overrides ``agi_callerid`` (added if absent)."""
    merged = dict(env)
    for key, value in overrides.items():
        merged[key if key.startswith("agi_") else f"agi_{key}"] = value
    return ("".join(f"{k}: {v}\n" for k, v in merged.items()) + "\n").encode("utf-8")


class Responder:
    """Decides Asterisk's answer to each command line.

    Precedence: ``inject[index]`` (lines or EOF), then the dead-channel rule (after a HANGUP was sent, only
    ``DEAD_OK`` verbs get a normal answer, the rest ``511``), then the transcript (the recorded answer at the
    same position if the verb matches, else the first unused recorded answer of that verb), then ``answers``
    by verb, then defaults (``SET VARIABLE`` -> ``200 result=1``, ``GET DATA`` -> ``200 result=<digits>`` ...).
    """

    def __init__(
        self,
        transcript: AGITranscript | None = None,
        *,
        digits: str = "2",
        inject: Mapping[int, Reply] | None = None,
        answers: Mapping[str, Reply] | None = None,
        hangup_at: int | None = None,
    ) -> None:
        self.transcript = transcript
        self.digits = digits
        self.inject = dict(inject or {})
        if hangup_at is not None:
            self.inject.setdefault(hangup_at, HANGUP_511)
        self.answers = dict(answers or {})
        self.dead = False
        self._used: set[int] = set()

    def defaults(self, verb: str, line: str) -> Reply:
        if verb in ("SET VARIABLE", "VERBOSE", "HANGUP"):
            return ("200 result=1",)
        if verb == "GET DATA":
            return (f"200 result={self.digits}",)
        if verb == "STREAM FILE":
            return ("200 result=0 endpos=8000",)
        if verb == "CHANNEL STATUS":
            return ("200 result=6",)
        if verb in ("ANSWER", "EXEC", "NOOP", "WAIT FOR DIGIT", "GET VARIABLE", "GET FULL VARIABLE", "DATABASE GET"):
            return ("200 result=0",)
        if verb in ("DATABASE PUT", "DATABASE DEL", "SAY DIGITS", "SAY NUMBER"):
            return ("200 result=0",)
        return INVALID_510

    def __call__(self, line: str, index: int) -> Reply:
        reply = self._choose(line, index)
        if not isinstance(reply, _EOF) and "HANGUP" in reply:
            self.dead = True
        return reply

    def _choose(self, line: str, index: int) -> Reply:
        verb = command_verb(line)
        if index in self.inject:
            return self.inject[index]
        if self.dead and verb not in DEAD_OK:
            return DEAD_511
        if self.transcript is not None:
            exchanges = self.transcript.exchanges
            if index < len(exchanges) and index not in self._used and exchanges[index].verb == verb:
                self._used.add(index)
                return exchanges[index].answer
            for i, exchange in enumerate(exchanges):
                if i not in self._used and exchange.verb == verb:
                    self._used.add(i)
                    return exchange.answer
        if verb in self.answers:
            return self.answers[verb]
        return self.defaults(verb, line)


class AGIPeer(Protocol):
    """Asterisk's side of one FastAGI connection."""

    def __init__(self, env: bytes | None, responder: Callable[[str, int], Reply] | None = None) -> None:
        self.env = env  # None: connect and send nothing (a half-open client)
        self.responder = responder or Responder()
        self.commands: list[str] = []  # every line the server wrote, newline stripped
        self.received = bytearray()  # every byte the server wrote
        self.chunks: list[bytes] = []  # the reads as delivered (one command per read = one at a time)
        self.closed = False
        self.done: Deferred[None] = Deferred()  # fires when the connection closes
        self._buf = b""

    def connectionMade(self) -> None:
        if self.env:
            self.transport.write(self.env)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self.chunks.append(data)
        lines = (self._buf + data).split(b"\n")
        self._buf = lines.pop()
        for raw in lines:
            if self.closed:
                return
            line = raw.decode("utf-8")
            self.commands.append(line)
            reply = self.responder(line, len(self.commands) - 1)
            if isinstance(reply, _EOF):
                self.closed = True
                self.transport.loseConnection()
            elif reply:
                self.transport.write(("\n".join(reply) + "\n").encode("utf-8"))

    def send_hangup(self) -> None:
        """Asterisk noticed the hangup while no command was outstanding: an unsolicited ``HANGUP``."""
        if isinstance(self.responder, Responder):
            self.responder.dead = True
        self.transport.write(b"HANGUP\n")

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.closed = True
        if not self.done.called:
            self.done.callback(None)


class AGIPeerFactory(ClientFactory):
    """Real TCP: ``reactor.connectTCP(host, port, AGIPeerFactory(lambda: AGIPeer(env)))``."""

    def __init__(self, make_peer: Callable[[], AGIPeer]) -> None:
        self.make_peer = make_peer
        self.peers: list[AGIPeer] = []

    def buildProtocol(self, addr: Any) -> AGIPeer:
        peer = self.make_peer()
        peer.factory = self
        self.peers.append(peer)
        return peer


def transcript_peer(name: str, responder: Responder | None = None, **overrides: str) -> AGIPeer:
    """A peer replaying transcript ``name``'s env block (with overrides) and, by default, its answers."""
    transcript = load_agi(name)
    return AGIPeer(env_block(transcript.env, **overrides), responder or Responder(transcript))


def connect_in_memory(server: Protocol, peer: AGIPeer) -> Any:
    """Wire a server protocol and a peer together in memory; returns the ``IOPump`` (call ``.flush()``)."""
    from twisted.test import iosim

    server_tr = iosim.FakeTransport(server, isServer=True)
    peer_tr = iosim.FakeTransport(peer, isServer=False)
    return iosim.connect(server, server_tr, peer, peer_tr)
