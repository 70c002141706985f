"""What a handler sees: the call's environment and awaitable AGI commands.

Every command returns an ``AGIRequest``: ``await`` it for the ``AGIResult`` (or ``.deferred()`` for a
Deferred). Commands may be issued without awaiting: they are queued and written one at a time (Asterisk
answers strictly in order and reads nothing else meanwhile).

Failure mapping (raised at the ``await``):

- ``CallerHungUp``: the ``HANGUP`` line, a ``511`` answer, EOF / connection lost, any command issued after
  those, and ``200 result=-1`` from ``answer``, ``stream_file``, ``get_data``, ``wait_for_digit`` and ``exec``
  (for these -1 means the channel went away; agi-04 shows GET DATA answering -1 when the caller hung up;
  note STREAM FILE also answers -1 for a prompt file it cannot open -- a missing prompt ends the handler
  like a hangup would, and the dialplan's own fallback routes the call).
  Other commands return their -1 as a result (``channel_status`` -1 = no such channel, ``hangup`` -1 idem).
- ``AGIInvalidCommand``: ``510``. ``AGIUsageError``: the ``520`` block (``.usage`` holds the text).
- ``AGICommandFailed``: any other code, and an ``EXEC`` whose application does not exist (``result=-2``).
- ``AGITimeout``: no answer within the command's timeout; the connection is closed (see below).
- ``ValueError`` / ``TypeError``: raised synchronously, before anything is written, for an argument holding
  CR/LF/NUL, a bad variable name, or a line too long for Asterisk's buffer (``set_variables``, a coroutine,
  raises them at its ``await``, still before writing anything).

**Timeouts.** Every command must be answered within ``agi.command_timeout`` (30 s), counted from when it is
written (checked by one sweep on the server's clock, so the close comes at most a second later). Commands
that wait on the caller get their own wait on top: ``get_data`` its digit timeout times ``max_digits`` (6 s
per digit when Asterisk's default applies), ``wait_for_digit`` its timeout; a negative (endless) wait counts
as an hour. ``timeout=`` on ``command``, ``answer``, ``stream_file``, ``get_data``, ``wait_for_digit`` and
``exec`` replaces the limit for that command (an ``EXEC Dial`` lasts the whole call, a long prompt longer
than 30 s).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from ccserver.agi import commands as cmd
from ccserver.agi.env import FIRST_WINS, parse_env, request_query
from ccserver.agi.quoting import MAX_COMMAND_BYTES, MSET_MAX_PAIRS, as_text, check_name, mset_safe, quote
from ccserver.agi.request import AGIRequest

if TYPE_CHECKING:
    from ccserver.agi.protocol import FastAGIProtocol

# Flags for FastAGIProtocol.send, saying how to read a 200 answer.
MINUS_ONE_HANGS_UP = 1  # "200 result=-1" means the caller is gone
MINUS_TWO_FAILS = 2  # EXEC "200 result=-2": no such application

LONG_WAIT = 3600.0  # what a wait-forever command (a negative digit timeout) is allowed
ASTERISK_DIGIT_WAIT = 6.0  # GET DATA without a timeout: Asterisk waits its response timeout, 6 s by default


class AGISession:
    """One FastAGI call. ``env`` is the ``agi_*`` block without the prefix (parsed on first use: routing
    reads only the script name, and a handler that needs nothing from the env pays nothing)."""

    __slots__ = ("_proto", "_raw", "_env", "_found", "script")

    def __init__(self, proto: FastAGIProtocol, raw_env: bytes, script: str) -> None:
        self._proto = proto
        self._raw = raw_env
        self._env: dict[str, str] | None = None
        self._found: dict[str, str] = {}  # what get() read from the raw block so far (a router reads some twice)
        self.script = script

    # -- environment ---------------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        env = self._env
        if env is None:
            env = self._env = parse_env(self._raw)
        return env

    def get(self, key: str, default: str = "") -> str:
        """One env value (``"callerid"``), without parsing the whole block when it has not been parsed yet:
        a router reads three or four keys, and a direct search is a quarter of the cost of a full parse.
        A repeated key resolves as in ``parse_env`` (see ``env``): the first line for ``FIRST_WINS`` keys, else
        the last."""
        env = self._env
        if env is not None:
            return env.get(key, default)
        found = self._found
        value = found.get(key)
        if value is not None:
            return value
        needles = _NEEDLES.get(key) or _needles(key)
        needle, line_needle, first_wins = needles
        raw = self._raw
        if not first_wins:
            start = raw.rfind(line_needle)
            if start >= 0:
                start += len(line_needle)
            elif raw.startswith(needle):
                start = len(needle)
            else:
                return self.env.get(key, default)  # unusual layout: let the full parser decide
        elif raw.startswith(needle):
            start = len(needle)
        else:
            start = raw.find(line_needle)
            if start < 0:
                return self.env.get(key, default)
            start += len(line_needle)
        end = raw.find(b"\n", start)
        value = (raw[start:end] if end >= 0 else raw[start:]).decode("utf-8", "replace").removesuffix("\r")
        found[key] = value
        return value

    @property
    def uniqueid(self) -> str:
        return self.get("uniqueid")

    @property
    def callerid(self) -> str:
        return self.get("callerid")

    @property
    def calleridname(self) -> str:
        return self.get("calleridname")

    @property
    def extension(self) -> str:
        """The dialled number. Use this, not ``dnid`` (``unknown`` on Local and many other channels)."""
        return self.get("extension")

    @property
    def dnid(self) -> str:
        return self.get("dnid")

    @property
    def channel(self) -> str:
        return self.get("channel")

    @property
    def context(self) -> str:
        return self.get("context")

    @property
    def language(self) -> str:
        return self.get("language")

    @property
    def request(self) -> str:
        return self.get("request")

    @property
    def query(self) -> dict[str, str]:
        """Query arguments of the AGI URL: ``AGI(agi://h/incoming?store=3)`` -> ``{"store": "3"}``."""
        return request_query(self.request)

    @property
    def args(self) -> list[str]:
        """Dialplan arguments: ``AGI(agi://h/incoming,a,b)`` -> ``agi_arg_1``, ``agi_arg_2`` -> ``["a", "b"]``."""
        out: list[str] = []
        raw = self._raw
        if self._env is None and b"arg_" not in raw:
            return out  # no arguments (the text any parse of them needs is not there): no full parse
        if self._env is None and raw.count(b"arg_1:") == 1 and b"\nagi_arg_1: " in raw and b"arg_2:" not in raw:
            return [self.get("arg_1")]  # the shipped dialplan's one argument (${CC_CAMPAIGN_ID}, often empty)
        env = self.env
        while (value := env.get(f"arg_{len(out) + 1}")) is not None:
            out.append(value)
        return out

    @property
    def alive(self) -> bool:
        """False once the caller hung up or the connection closed: further commands raise CallerHungUp."""
        return not self._proto.dead

    # -- commands ------------------------------------------------------------------------------------
    def _waiting(self, own_wait: float) -> float:
        """The limit of a command that waits on the caller: the usual command timeout plus that wait."""
        return self._proto.command_timeout + own_wait

    def command(self, verb: str, *args: object, minus_one_hangs_up: bool = False,
                timeout: float | None = None) -> AGIRequest:
        """Any AGI command: ``await session.command("SAY DIGITS", "123", '')``."""
        return self._proto.send(cmd.command(verb, *args), MINUS_ONE_HANGS_UP if minus_one_hangs_up else 0, timeout)

    def answer(self, *, timeout: float | None = None) -> AGIRequest:
        return self._proto.send(cmd.ANSWER, MINUS_ONE_HANGS_UP, timeout)

    def hangup(self, channel: str | None = None) -> AGIRequest:
        return self._proto.send(cmd.hangup(channel), 0)

    def stream_file(self, name: str, escape_digits: str = "", sample_offset: int | None = None, *,
                    timeout: float | None = None) -> AGIRequest:
        """Result: ``.digit`` is the escape key pressed ("" if none), ``.endpos`` the sample offset reached.
        A prompt longer than ``agi.command_timeout`` needs ``timeout=``."""
        return self._proto.send(cmd.stream_file(name, escape_digits, sample_offset), MINUS_ONE_HANGS_UP, timeout)

    def get_data(self, prompt: str, timeout_ms: int | None = None, max_digits: int | None = None, *,
                 timeout: float | None = None) -> AGIRequest:
        """Result: ``.digits`` (text, "" on timeout); ``.data`` is ``"timeout"`` when the caller stopped early."""
        data = cmd.get_data(prompt, timeout_ms, max_digits)
        if timeout is None:
            digit_wait = LONG_WAIT if timeout_ms is not None and timeout_ms < 0 else (
                timeout_ms / 1000 if timeout_ms else ASTERISK_DIGIT_WAIT)
            timeout = self._waiting(min(digit_wait * (max_digits or 1), LONG_WAIT))
        return self._proto.send(data, MINUS_ONE_HANGS_UP, timeout)

    def wait_for_digit(self, timeout_ms: int = -1, *, timeout: float | None = None) -> AGIRequest:
        """Result: ``.digit`` ("" on timeout)."""
        data = cmd.wait_for_digit(timeout_ms)
        if timeout is None:
            timeout = self._waiting(LONG_WAIT if timeout_ms < 0 else timeout_ms / 1000)
        return self._proto.send(data, MINUS_ONE_HANGS_UP, timeout)

    def get_variable(self, name: str) -> AGIRequest:
        """Result: ``.result`` 1 and ``.data`` the value, or ``.result`` 0 (not set)."""
        return self._proto.send(cmd.get_variable(name), 0)

    def get_full_variable(self, expression: str, channel: str | None = None) -> AGIRequest:
        """Evaluates a dialplan expression (``${CALLERID(num)}``): never pass caller-controlled text here."""
        return self._proto.send(cmd.get_full_variable(expression, channel), 0)

    def set_variable(self, name: str, value: object) -> AGIRequest:
        return self._proto.send(cmd.set_variable(name, value), 0)

    def exec(self, app: str, *args: object, timeout: float | None = None) -> AGIRequest:
        """``EXEC app a,b``; the app's arguments are comma-joined into one quoted word (see commands.exec_).
        An application that lasts (Dial, Queue, Playback of a long file) needs ``timeout=``."""
        return self._proto.send(cmd.exec_(app, *args), MINUS_ONE_HANGS_UP | MINUS_TWO_FAILS, timeout)

    def verbose(self, message: str, level: int = 1) -> AGIRequest:
        return self._proto.send(cmd.verbose(message, level), 0)

    def channel_status(self, channel: str | None = None) -> AGIRequest:
        """Result ``.result``: 0 down/available … 6 up, -1 no such channel."""
        return self._proto.send(cmd.channel_status(channel), 0)

    def database_get(self, family: str, key: str) -> AGIRequest:
        """Result: ``.result`` 1 and ``.data`` the value, or 0 when the key is not set."""
        return self._proto.send(cmd.database_get(family, key), 0)

    def noop(self, text: str = "") -> AGIRequest:
        return self._proto.send(cmd.noop(text), 0)

    async def set_variables(self, variables: Mapping[str, object]) -> int:
        """Set many dialplan variables in as few round trips as is safe; fires with the commands used.

        Pairs whose name is plain and whose value ``mset_safe`` accepts share one ``EXEC MSet`` (up to 99
        pairs per line); anything else -- commas, quotes, backslashes, brackets, ``$``, edge spaces, function
        names like ``CDR(x)`` -- gets its own ``SET VARIABLE``. Everything is validated before the first byte
        is written, so a bad value raises ValueError without a partial update.
        """
        plan = _plan_set_variables(variables, self._proto.use_mset)
        sent = 0
        for data, pairs in plan:
            result = await self._proto.send(data, 0)  # MSet's -2 (missing app) is handled here
            sent += 1
            if pairs is not None and result.result == -2:
                # No MSet (Asterisk < 13.8): remember for the whole server and fall back for these pairs.
                self._proto.mset_unavailable()
                for name, value in pairs:
                    await self._proto.send(cmd.set_variable(name, value), 0)
                    sent += 1
        return sent


# Per env key: ``agi_<key>: ``, the same after a newline, and whether its first line wins (env.FIRST_WINS).
_NEEDLES: dict[str, tuple[bytes, bytes, bool]] = {}


def _needles(key: str) -> tuple[bytes, bytes, bool]:
    needle = f"agi_{key}: ".encode()
    needles = (needle, b"\n" + needle, key in FIRST_WINS)
    if len(_NEEDLES) < 256:  # a handler reads a handful of keys; anything else is not remembered
        _NEEDLES[key] = needles
    return needles


_MSET_OVERHEAD = len(b'EXEC MSet ""\n')

# The common answer (what routing's to_dialplan produces): plain names ``[A-Za-z_][A-Za-z0-9_]*`` (is_plain_name)
# and values made only of ``[A-Za-z0-9_.:/@+-]`` (what sanitize_value produces), which need no escaping on either
# parsing layer. Checked with one C-level match over the whole ``name=value,...`` body: as neither class holds
# ``=`` or ``,``, a body with exactly one comma per pair boundary that matches is exactly a body of such pairs.
_PLAIN_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PLAIN_VALUE = r"[A-Za-z0-9_.:/@+-]*"
_PLAIN_BODY = re.compile(f"{_PLAIN_NAME}={_PLAIN_VALUE}(?:,{_PLAIN_NAME}={_PLAIN_VALUE})*").fullmatch
_STR_ONLY = {str}


def _plan_set_variables(
    variables: Mapping[str, object], use_mset: bool
) -> list[tuple[bytes, list[tuple[str, str]] | None]]:
    count = len(variables)
    if use_mset and 1 < count <= MSET_MAX_PAIRS and \
            {*map(type, variables), *map(type, variables.values())} == _STR_ONLY:
        pairs = cast("Mapping[str, str]", variables).items()  # every name and value a str: checked just above
        body = ",".join(map("=".join, pairs))
        if body.count(",") == count - 1 and _PLAIN_BODY(body):
            data = b'EXEC MSet "' + body.encode("ascii") + b'"\n'  # what cmd.mset() builds for these pairs
            if len(data) <= MAX_COMMAND_BYTES:
                return [(data, list(pairs))]
            # longer than one command line: the general path splits it
    return _plan_general(variables, use_mset)


def _plan_general(
    variables: Mapping[str, object], use_mset: bool
) -> list[tuple[bytes, list[tuple[str, str]] | None]]:
    safe: list[tuple[str, str]] = []
    plan: list[tuple[bytes, list[tuple[str, str]] | None]] = []
    for name, value in variables.items():
        check_name(name)
        text = as_text(value)
        quote(text)  # raises on CR/LF/NUL
        if use_mset and mset_safe(name, text):
            safe.append((name, text))
        else:
            plan.append((cmd.set_variable(name, text), None))
    if len(safe) == 1:  # MSet saves nothing for one pair: plain SET VARIABLEs, in the caller's order
        return [(cmd.set_variable(name, as_text(value)), None) for name, value in variables.items()]
    chunks: list[list[tuple[str, str]]] = []
    size = MAX_COMMAND_BYTES + 1
    for name, text in safe:
        pair_size = len(name) + 1 + len(text.encode("utf-8")) + 1  # name=value plus its comma
        if pair_size + _MSET_OVERHEAD > MAX_COMMAND_BYTES:
            raise ValueError(f"value of {name} is too long for one AGI command line")
        if size + pair_size > MAX_COMMAND_BYTES or len(chunks[-1]) >= MSET_MAX_PAIRS:
            chunks.append([])
            size = _MSET_OVERHEAD
        chunks[-1].append((name, text))
        size += pair_size
    mset_plan: list[tuple[bytes, list[tuple[str, str]] | None]] = [(cmd.mset(c), c) for c in chunks]
    return mset_plan + plan
