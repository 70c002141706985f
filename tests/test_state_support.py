"""Replay helpers for the state tests (no tests here): recorded AMI messages with their arrival times."""

from __future__ import annotations

from ccserver.ami.message import AMIMessage, parse_stream
from tests.replay.transcripts import load_entries, split_sessions

_TERM = b"\r\n\r\n"


def timed_messages(name: str, server: str | None = None) -> list[tuple[AMIMessage, float]]:
    """Every message Asterisk sent, in order, with its arrival time on Asterisk's clock.

    The recording's ``t`` (seconds since it began) is shifted so that it lines up with the events' ``Timestamp``
    headers: messages without one (FullyBooted, list-action items) then get a consistent time.
    """
    out: list[tuple[AMIMessage, float]] = []
    for session in split_sessions(load_entries(name)):
        buf = b""
        for entry in session:
            if entry.dir != "recv" or entry.is_marker:
                continue
            buf += entry.data.encode("utf-8")
            end = buf.rfind(_TERM)
            if end < 0:
                continue
            complete, buf = buf[: end + len(_TERM)], buf[end + len(_TERM) :]
            for msg in parse_stream(complete):
                msg.server = server
                out.append((msg, entry.t))
    base = next((float(m["Timestamp"]) - t for m, t in out if m.get("Timestamp")), 0.0)
    return [(m, t + base) for m, t in out]


def replay(tracker, name: str, *, server: str | None = None, stop=None) -> list[tuple[AMIMessage, float]]:
    """Feed a transcript to a tracker; ``stop(msg)`` true stops before that message. Returns what was not fed."""
    messages = timed_messages(name, server)
    for i, (msg, arrival) in enumerate(messages):
        if stop is not None and stop(msg):
            return messages[i:]
        tracker.handle(msg, arrival)
    return []


def records_to(sink):
    """A tracker ``publish`` that hands each finished call's record to ``sink`` (as the call-records subscriber)."""
    from ccserver.events import CallEnded

    def publish(event):
        if isinstance(event, CallEnded):
            sink(event.record)

    return publish
