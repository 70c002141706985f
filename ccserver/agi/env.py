"""The ``agi_*`` environment block Asterisk sends first: ``agi_key: value`` lines, then a blank line.

**A repeated key.** Asterisk writes the values raw, so a caller ID or name holding a newline adds lines of
its own choosing (``x\nagi_extension: 999``). Asterisk writes its keys in a fixed order (res_agi.c:
``agi_network``/``agi_network_script`` for FastAGI, then ``setup_env``): the keys written before the caller
ID can only be repeated after the real line, so their *first* value is the true one (``FIRST_WINS``); every
other key is written after the caller ID, so its *last* value is. Both ``parse_env`` and
``AGISession.get`` follow this rule, and ``find_script`` reads the first ``agi_network_script``.
"""

from __future__ import annotations

# Written by Asterisk before agi_callerid, the first caller-controlled value.
FIRST_WINS = frozenset({"network", "network_script", "request", "channel", "language", "type", "uniqueid", "version"})


def parse_env(block: bytes) -> dict[str, str]:
    """Lines ``agi_key: value`` -> ``{"key": "value"}`` (prefix dropped; empty values such as
    ``agi_accountcode: `` kept as ""). Undecodable bytes become U+FFFD: caller ID is attacker-controlled."""
    text = block.decode("utf-8", "replace")
    if text.endswith("\n"):
        # Trailing empty lines (the blank line ending the block, kept by the server): nothing to parse.
        text = text.rstrip("\n")
    if "\r" not in text:
        # Fast path (every real block): drop the prefixes in one pass, split each line once, in C.
        body = text[4:] if text.startswith("agi_") else text
        lines = body.replace("\nagi_", "\n").split("\n")
        try:
            env = dict(line.split(": ", 1) for line in lines)
        except ValueError:
            pass  # a line without ": " (``agi_x:``, junk): the careful path below
        else:
            if len(env) == len(lines):  # no key repeated
                return env
    env = {}
    for line in text.split("\n"):
        key, sep, value = line.partition(":")
        if not sep:
            continue
        if key.startswith("agi_"):
            key = key[4:]
        if value.endswith("\r"):
            value = value[:-1]
        value = value[1:] if value.startswith(" ") else value
        if key in FIRST_WINS:
            env.setdefault(key, value)
        else:
            env[key] = value
    return env


_SCRIPT_KEY = b"agi_network_script: "
_SCRIPT_LINE = b"\n" + _SCRIPT_KEY


def find_script(block: bytes) -> str:
    """The route name, read straight from the raw block so routing needs no full parse. Anchored at a line
    start: a caller ID name such as ``x agi_network_script: admin`` must not pick the route."""
    if block.startswith(_SCRIPT_KEY):
        start = len(_SCRIPT_KEY)
    else:
        start = block.find(_SCRIPT_LINE)
        if start < 0:
            # no agi_network_script line (very old Asterisk): fall back to the path of agi_request
            request = parse_env(block).get("request", "")
            return script_name(request.partition("://")[2].partition("/")[2])
        start += len(_SCRIPT_KEY) + 1
    end = block.find(b"\n", start)
    value = block[start:end] if end >= 0 else block[start:]
    name = _SCRIPTS.get(value)
    if name is None:
        name = script_name(value.decode("utf-8", "replace").rstrip("\r"))
        if len(_SCRIPTS) < 256:  # a server has a handful of scripts; junk from a hostile peer stays bounded
            _SCRIPTS[value] = name
    return name


_SCRIPTS: dict[bytes, str] = {}


def script_name(script: str) -> str:
    """``agi_network_script`` -> route name: ``/incoming?x=1`` -> ``incoming``."""
    return script.partition("?")[0].strip("/")


def request_query(request: str) -> dict[str, str]:
    """The query string of ``agi_request`` (``agi://h:4573/incoming?store=3``) as a dict (last value wins)."""
    from urllib.parse import parse_qsl  # rare: handlers that use query args pay for the import

    query = request.partition("?")[2]
    return dict(parse_qsl(query, keep_blank_values=True)) if query else {}
