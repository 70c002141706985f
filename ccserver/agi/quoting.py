"""Argument quoting for AGI command lines, and the rules for what may go through ``EXEC MSet``.

Asterisk's res_agi splits a command line into words: spaces and tabs separate words, a double quote toggles
quoting (an opening quote after whitespace starts a word, so ``""`` is an empty word), and a backslash makes
the next character literal, inside or outside quotes. So a value is safe once it is wrapped in double quotes
with every ``\\`` and ``"`` backslash-escaped -- except for CR, LF and NUL: a newline ends the command line
(whatever follows would run as a second command) and NUL truncates it. Those raise ``ValueError`` before
anything is written. Lines longer than Asterisk's read buffer are rejected too: res_agi reads a command
into a fixed 2048-byte buffer, and the remainder of an over-long line would be read as a new command.
"""

from __future__ import annotations

# res_agi's AGI_BUF_LEN is 2048 including the NUL: the line, newline included, must fit in 2047 bytes.
MAX_COMMAND_BYTES = 2047

# MSet takes at most 99 name=value pairs (its AST_APP_ARG(pair)[99]).
MSET_MAX_PAIRS = 99

# Characters that mean something to the second parsing layer (the application's own argument splitter,
# ast_app_separate_args: commas split, quotes/backslashes are removed, () and [] nest and hide commas) or
# to the name=value split. ``$`` and ``{}`` are excluded as defence in depth against any variable
# substitution on the way. A value holding any of these goes through SET VARIABLE instead.
_MSET_UNSAFE = frozenset(",\"\\'()[]{}$=|")


def _check(text: str) -> str:
    if "\n" in text or "\r" in text or "\x00" in text:
        raise ValueError(f"CR, LF or NUL in an AGI argument: {text!r}")
    return text


def as_text(value: object) -> str:
    """Arguments may be str, int or float; anything else is a programming error."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"AGI argument must be str, int or float, not {type(value).__name__}")
    return str(value)


def quote(value: object) -> str:
    """Always double-quoted: one AGI word whose content is exactly ``value``."""
    text = _check(as_text(value))
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if '"' in text:
        text = text.replace('"', '\\"')
    return f'"{text}"'


def arg(value: object) -> str:
    """Bare when the word needs no quoting (file names, numbers, expressions), else quoted."""
    text = as_text(value)
    if text and text.isprintable() and " " not in text and '"' not in text and "\\" not in text:
        return text  # isprintable() is False for CR, LF, NUL, TAB and other controls
    return quote(text)


def is_plain_name(name: str) -> bool:
    """A dialplan variable name: ``[A-Za-z_][A-Za-z0-9_]*``."""
    return name.isascii() and name.isidentifier()


def check_name(name: str, allow_function: bool = True) -> str:
    """A variable name, or (when allowed) a function form such as ``CDR(userfield)`` / ``CALLERID(name)``.

    Function arguments are limited to letters, digits and ``_ , . - :`` so a name never needs quoting.
    """
    if not isinstance(name, str):
        raise TypeError("variable name must be a str")
    if is_plain_name(name):
        return name
    if allow_function and name.endswith(")"):
        func, sep, inner = name[:-1].partition("(")
        if sep and is_plain_name(func) and all(c.isascii() and (c.isalnum() or c in "_,.-:") for c in inner):
            return name
    raise ValueError(f"invalid AGI variable name: {name!r}")


def check_app(app: str) -> str:
    if not (isinstance(app, str) and is_plain_name(app)):
        raise ValueError(f"invalid dialplan application name: {app!r}")
    return app


def check_digits(digits: str) -> str:
    """Escape digits: DTMF characters only."""
    if not isinstance(digits, str) or any(c not in "0123456789*#ABCD" for c in digits):
        raise ValueError(f"invalid escape digits: {digits!r}")
    return digits


def check_int(value: int, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}, got {value!r}")
    return value


def mset_safe(name: str, value: str) -> bool:
    """May ``name=value`` travel inside ``EXEC MSet``? Plain names and plain values only."""
    if not is_plain_name(name):
        return False
    if value != value.strip() or not value.isprintable():
        return False
    return not any(c in _MSET_UNSAFE for c in value)


def line(text: str) -> bytes:
    """Encode one command line; refuse what Asterisk would not read as one command."""
    data = text.encode("utf-8") + b"\n"  # a lone surrogate raises UnicodeEncodeError, a ValueError
    if len(data) > MAX_COMMAND_BYTES:
        raise ValueError(f"AGI command line of {len(data)} bytes exceeds {MAX_COMMAND_BYTES}")
    return data
