"""Units and times in AMI events, which are not uniform across event types.

- ``AgentRingNoAnswer``: ``RingTime`` is in milliseconds.
- ``AgentConnect``: ``HoldTime`` and ``RingTime`` are in seconds; ``AgentComplete``: ``HoldTime``/``TalkTime`` s.
- ``Timestamp:`` (epoch seconds, microsecond fraction) is present only with ``timestampevents = yes``.
"""

from __future__ import annotations

from ccserver.ami.message import AMIMessage

__all__ = ["event_time", "ring_time_seconds", "hold_time_seconds", "talk_time_seconds"]


def _number(msg: AMIMessage, header: str) -> float | None:
    value = msg.get(header)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return None


def event_time(msg: AMIMessage, arrival: float | None = None) -> float:
    """When the event happened: its ``Timestamp`` if Asterisk sent one, else the arrival time.

    ``arrival`` defaults to ``msg.arrival`` (set by the client when the bytes were read).
    """
    stamp = _number(msg, "Timestamp")
    if stamp is not None:
        return stamp
    if arrival is None:
        arrival = msg.arrival
    if arrival is None:
        raise ValueError("event has no Timestamp header and no arrival time was given")
    return arrival


def ring_time_seconds(msg: AMIMessage) -> float | None:
    """Ring time in seconds: ms in AgentRingNoAnswer, seconds in AgentConnect (and elsewhere)."""
    value = _number(msg, "RingTime")
    if value is None:
        return None
    return value / 1000.0 if msg.event == "AgentRingNoAnswer" else value


def hold_time_seconds(msg: AMIMessage) -> float | None:
    return _number(msg, "HoldTime")


def talk_time_seconds(msg: AMIMessage) -> float | None:
    return _number(msg, "TalkTime")
