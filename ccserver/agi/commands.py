"""Pure builders: one AGI command line (bytes, newline-terminated) per call. No I/O.

Every argument goes through ``quoting``: names are validated, free-form values are always double-quoted,
file names / numbers / expressions are bare when they need no quoting (matching what Asterisk's own
examples and the recordings show: ``STREAM FILE hello-world ""``, ``SET VARIABLE CC_QUEUE "service"``).
"""

from __future__ import annotations

from collections.abc import Iterable

from ccserver.agi.quoting import (
    MAX_COMMAND_BYTES,
    MSET_MAX_PAIRS,
    arg,
    as_text,
    check_app,
    check_digits,
    check_int,
    check_name,
    line,
    quote,
)

ANSWER = b"ANSWER\n"


def answer() -> bytes:
    return ANSWER


def hangup(channel: str | None = None) -> bytes:
    return line("HANGUP" if channel is None else f"HANGUP {arg(channel)}")


def stream_file(name: str, escape_digits: str = "", sample_offset: int | None = None) -> bytes:
    text = f'STREAM FILE {arg(name)} "{check_digits(escape_digits)}"'
    if sample_offset is not None:
        text += f" {check_int(sample_offset, 'sample_offset')}"
    return line(text)


def get_data(prompt: str, timeout_ms: int | None = None, max_digits: int | None = None) -> bytes:
    text = f"GET DATA {arg(prompt)}"
    if timeout_ms is not None or max_digits is not None:
        # GET DATA's arguments are positional: a max_digits needs a timeout before it (0 = Asterisk's default)
        text += f" {check_int(timeout_ms or 0, 'timeout_ms')}"
    if max_digits is not None:
        text += f" {check_int(max_digits, 'max_digits', 1)}"
    return line(text)


def wait_for_digit(timeout_ms: int = -1) -> bytes:
    return line(f"WAIT FOR DIGIT {check_int(timeout_ms, 'timeout_ms', -1)}")


def get_variable(name: str) -> bytes:
    return line(f"GET VARIABLE {check_name(name)}")


def get_full_variable(expression: str, channel: str | None = None) -> bytes:
    text = f"GET FULL VARIABLE {arg(expression)}"
    if channel is not None:
        text += f" {arg(channel)}"
    return line(text)


# Validated names -> their encoded ``SET VARIABLE NAME "`` prefix (a server uses a handful; bounded below).
_SET_PREFIXES: dict[str, bytes] = {}


def set_variable(name: str, value: object) -> bytes:
    # The hot command (every call sets several): validated names are remembered with their encoded prefix,
    # and plain values skip quote(): the line is then two byte concatenations.
    prefix = _SET_PREFIXES.get(name)
    if prefix is None:
        check_name(name)
        prefix = f'SET VARIABLE {name} "'.encode()
        if len(_SET_PREFIXES) < 4096:
            _SET_PREFIXES[name] = prefix
    if type(value) is str:
        # Letters and digits only (queue names, priorities, timeouts): nothing to escape or reject, one C call.
        # Otherwise five substring scans still spare quote() for the common plain text with spaces or dots.
        if value.isalnum() or (
            '"' not in value and "\\" not in value and "\n" not in value and "\r" not in value and "\x00" not in value
        ):
            data = prefix + value.encode() + b'"\n'
            if len(data) <= MAX_COMMAND_BYTES:
                return data
    return line(f"SET VARIABLE {name} {quote(value)}")


def exec_(app: str, *args: object) -> bytes:
    """``EXEC app "a,b,c"``: Asterisk passes only ONE word to the application, so the application's own
    arguments are joined with commas inside it. The application then splits them again with its own rules
    (commas, quotes, backslashes, parentheses): escaping for that second layer is the caller's business,
    ``set_variables`` does it for MSet."""
    check_app(app)
    if not args:
        return line(f"EXEC {app}")
    return line(f"EXEC {app} {quote(','.join(as_text(a) for a in args))}")


def mset(pairs: Iterable[tuple[str, str]]) -> bytes:
    """``EXEC MSet "A=1,B=2"``: only for pairs that ``quoting.mset_safe`` accepted."""
    body = ",".join(f"{name}={value}" for name, value in pairs)
    return line(f"EXEC MSet {quote(body)}")


def verbose(message: str, level: int = 1) -> bytes:
    return line(f"VERBOSE {quote(message)} {check_int(level, 'level', 1)}")


def channel_status(channel: str | None = None) -> bytes:
    return line("CHANNEL STATUS" if channel is None else f"CHANNEL STATUS {arg(channel)}")


def database_get(family: str, key: str) -> bytes:
    return line(f"DATABASE GET {arg(family)} {arg(key)}")


def noop(text: str = "") -> bytes:
    return line(f"NOOP {quote(text)}" if text else "NOOP")


def command(verb: str, *args: object) -> bytes:
    """Any other AGI command: ``verb`` is its upper-case words (``"SAY DIGITS"``), each arg bare-or-quoted."""
    words = verb.split(" ")
    if not all(w.isascii() and w.isalpha() and w.isupper() for w in words):
        raise ValueError(f"invalid AGI command verb: {verb!r}")
    return line(" ".join([verb, *(arg(a) for a in args)]))


__all__ = [
    "MAX_COMMAND_BYTES",
    "MSET_MAX_PAIRS",
    "answer",
    "channel_status",
    "command",
    "database_get",
    "exec_",
    "get_data",
    "get_full_variable",
    "get_variable",
    "hangup",
    "mset",
    "noop",
    "set_variable",
    "stream_file",
    "verbose",
    "wait_for_digit",
]
