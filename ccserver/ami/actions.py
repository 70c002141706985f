"""Building AMI actions safely, and what we know about list actions.

Every header name and value is checked before anything is written: a CR, LF or NUL in a value (caller
ID is attacker-controlled) would let a caller inject headers or whole actions such as ``Originate``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["LIST_ACTIONS", "build_action", "HeaderValue", "MAX_LINE", "MAX_HEADERS"]

# List actions: the response is followed by events carrying our ActionID, ended by this named event.
LIST_ACTIONS: dict[str, str] = {
    "queuestatus": "QueueStatusComplete",
    "queuesummary": "QueueSummaryComplete",
    "coreshowchannels": "CoreShowChannelsComplete",
    "status": "StatusComplete",
    "sippeers": "PeerlistComplete",
    "pjsipshowendpoints": "EndpointListComplete",
    "pjsipshowcontacts": "ContactListComplete",
    "agents": "AgentsComplete",
    "queues": "QueuesComplete",  # not a real list action on every version; harmless
    "bridgelist": "BridgeListComplete",
    "bridgeinfo": "BridgeInfoComplete",
    "parkedcalls": "ParkedCallsComplete",
    "dbgettree": "DBGetTreeComplete",
    "devicestatelist": "DeviceStateListComplete",
    "extensionstatelist": "ExtensionStateListComplete",
    "confbridgelist": "ConfbridgeListComplete",
    "meetmelist": "MeetmeListComplete",
    "showdialplan": "ShowDialPlanComplete",
    "corelistcommands": "CoreListCommandsComplete",
}

# RFC 7230 token characters: what a header (or action) name may contain.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_FORBIDDEN = re.compile(r"[\r\n\x00]")
MAX_LINE = 1024  # Asterisk's manager reads header lines into a ~1 KiB buffer
MAX_HEADERS = 128  # and keeps at most 128 headers per action

HeaderValue = str | int | float | bool | None | Iterable[Any] | Mapping[str, Any]


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not _TOKEN.match(name):
        raise ValueError(f"AMI {what} {name!r} is not a valid token (letters, digits, -_. etc.; no spaces/CR/LF/NUL)")
    return name


def _text(name: str, value: object) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float | str):
        text = str(value)
    else:
        raise ValueError(f"AMI header {name}: unsupported value type {type(value).__name__}")
    if _FORBIDDEN.search(text):
        raise ValueError(f"AMI header {name}: value contains CR, LF or NUL (header injection refused)")
    return text


def _variables(name: str, value: Mapping[str, Any]) -> list[str]:
    out = []
    for var, var_value in value.items():
        _check_name(var, f"{name} variable name")
        text = _text(name, var_value)
        # Asterisk splits each Variable header on commas (app-args parsing): a comma would set extra
        # variables chosen by whoever controls the value.
        if "," in text:
            raise ValueError(f"AMI {name} {var}: value contains a comma (would be split into extra variables)")
        out.append(f"{var}={text}")
    return out


def _expand(name: str, value: HeaderValue) -> list[str]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return _variables(name, value)
    if isinstance(value, str | int | float | bool):
        return [_text(name, value)]
    if isinstance(value, Iterable):
        return [_text(name, v) for v in value if v is not None]
    return [_text(name, value)]


def build_action(action: str, action_id: str, headers: Mapping[str, HeaderValue] | None = None) -> bytes:
    """Serialise an action to bytes, or raise ValueError without producing anything.

    Values: str/int/float, bool -> true/false, None -> header omitted, list/tuple -> header repeated,
    mapping -> repeated ``Name: key=value`` (for ``Variable``).
    """
    _check_name(action, "action name")
    _text("ActionID", action_id)
    lines = [f"Action: {action}", f"ActionID: {action_id}"]
    for name, value in (headers or {}).items():
        _check_name(name, "header name")
        low = name.lower()
        if low in ("action", "actionid"):
            raise ValueError(f"AMI header {name} is set by the client; pass it as an argument instead")
        for text in _expand(name, value):
            lines.append(f"{name}: {text}")
    if len(lines) > MAX_HEADERS:
        raise ValueError(f"AMI action {action}: {len(lines)} headers, Asterisk accepts at most {MAX_HEADERS}")
    for line in lines:
        if len(line.encode("utf-8")) > MAX_LINE - 2:
            raise ValueError(f"AMI action {action}: header line longer than {MAX_LINE - 2} bytes: {line[:40]!r}…")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def list_complete_event(action: str) -> str | None:
    return LIST_ACTIONS.get(action.lower())
