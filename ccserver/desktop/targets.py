"""Pure: what a transfer goes to and what click-to-dial dials, checked before anything reaches Asterisk.

A transfer target is a queue (``q-<queue>`` in ``desktop.transfer_context``), an agent (``a-<extension>``: the
agent's personal queue, so the agent's own rules — one call at a time, the screen pop — apply), or a phone number
(its dialable digits, sent on to ``desktop.dial_context``). A number is normalised with ``routing.numbers``
(phonenumbers metadata): anything that is not a valid number — CR, LF, NUL, letters, a dial string with ``&`` or
``/`` — is refused with a message naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

from ccserver.textcheck import CONTROLS
from ccserver.texts import T
from routing.numbers import normalize
from routing.rules import SAFE_NAME

__all__ = ["DialNumber", "Target", "TargetError", "dial_number", "transfer_target"]

EXTENSION = re.compile(r"^[0-9]{2,8}$")
TRANSFER_KINDS = ("blind", "attended")
TARGET_TYPES = ("queue", "agent", "number")


class TargetError(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class DialNumber:
    e164: str  # +8613912345678
    digits: str  # as dialled from the call centre's country: 13912345678, 02158881234, 0044…


@dataclass(frozen=True, slots=True)
class Target:
    type: str  # queue | agent | number
    value: str  # the queue name, the extension, the E.164 number
    exten: str  # the extension in desktop.transfer_context


def dial_number(raw: object, region: str, field: str = "number") -> DialNumber:
    if not isinstance(raw, str) or not raw.strip():
        raise TargetError(T("{field} is required: a phone number", field=field), field)
    if CONTROLS.search(raw):
        raise TargetError(T("{field} contains control characters (CR, LF, NUL …)", field=field), field)
    number = normalize(raw, region=region)
    if not number.ok or not number.e164:
        raise TargetError(T("{field} is not a valid phone number ({reason})", field=field, reason=number.reason), field)
    parsed = phonenumbers.parse(number.e164)
    dialled = phonenumbers.format_out_of_country_calling_number(parsed, region)
    digits = "".join(ch for ch in dialled if ch.isdigit())
    if not digits:
        raise TargetError(T("{field} is not a dialable number", field=field), field)
    return DialNumber(number.e164, digits)


def transfer_target(raw: object, type_hint: object, *, queues: set[str] | None, extensions: set[str],
                    region: str, attended: bool = False) -> Target:
    """``raw``: what the agent typed or picked; ``type_hint``: ``queue`` / ``agent`` / ``number`` or None (then a
    known queue name wins, then a known extension, else it must be a number). ``queues``: the queues Asterisk
    has (None: not known yet, any safe name is taken); ``extensions``: active users' extensions.

    ``attended``: Asterisk's Atxfer *types* the extension as keypad presses (0-9 * # A-D; anything else is lost:
    seen on Asterisk 22, ``a-8002`` arrived as ``8002`` and went out to the trunk). So an attended transfer to an
    agent uses ``A<extension>``, and one to a queue — whose name cannot be typed — is refused (transfer blind)."""
    if type_hint is not None and type_hint not in TARGET_TYPES:
        raise TargetError(T("target must be one of {target_types}", target_types=', '.join(TARGET_TYPES)), "target")
    if not isinstance(raw, str) or not raw.strip():
        raise TargetError(T("to is required: a queue, an agent's extension or a phone number"), "to")
    if CONTROLS.search(raw):
        raise TargetError(T("to contains control characters (CR, LF, NUL …)"), "to")
    text = raw.strip()
    if type_hint == "queue" or (type_hint is None and queues is not None and text in queues):
        if not SAFE_NAME.match(text) or (queues is not None and text not in queues):
            raise TargetError(T("no queue named {text}", text=repr(text)), "to")
        if attended:
            raise TargetError(T("an attended transfer goes to an agent or a number; transfer to a queue blind"), "to")
        return Target("queue", text, f"q-{text}")
    if type_hint == "agent" or (type_hint is None and text in extensions):
        if not EXTENSION.match(text) or text not in extensions:
            raise TargetError(T("no agent has extension {text}", text=repr(text)), "to")
        return Target("agent", text, f"A{text}" if attended else f"a-{text}")
    number = dial_number(text, region, "to")
    return Target("number", number.e164, number.digits)
