"""The tracker's event filters (StateTracker.event_filters) let the AMI reader leave undecoded what the tracker
would ignore: the same events come out, the same state is left, fewer messages are decoded."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from ccserver.ami.dispatch import EventDispatcher
from ccserver.ami.metrics import AMIMetrics
from ccserver.ami.protocol import AMIProtocol
from ccserver.state.model import to_dict
from ccserver.state.tracker import EVENTS, StateTracker
from tests.replay.transcripts import recv_sessions


def consume(name: str, server: str, filtered: bool) -> tuple[list[Any], StateTracker, int]:
    events: list[Any] = []
    tracker = StateTracker(publish=events.append)
    disp = EventDispatcher()
    filters = tracker.event_filters() if filtered else {}
    decoded = []

    def handle(msg: Any) -> None:
        decoded.append(msg)
        tracker.handle(msg, 1_000.0)

    for event in EVENTS:
        disp.on(event, handle, when=filters.get(event))
    proto = AMIProtocol(Clock(), dispatcher=disp, server=server)
    proto.makeConnection(StringTransport())
    for data in recv_sessions(name):
        for i in range(0, len(data), 700):  # reads that cut messages anywhere
            proto.dataReceived(data[i:i + 700])
    return events, tracker, len(decoded)


@pytest.mark.parametrize("name", [
    "ami-inbound-load-40-calls", "ami-inbound-vip-answered", "ami-inbound-abandoned", "ami-originate-results",
    "ami-inbound-hangup-during-ivr", "ami-inbound-ivr-ringnoanswer-then-answered", "ami-inbound-channelvars-autopause",
    "ami-asterisk-restart-with-waiting-caller",
])
def test_filtered_reading_publishes_the_same_events_and_leaves_the_same_state(name: str) -> None:
    all_events, everything, all_decoded = consume(name, f"f-all-{name}", filtered=False)
    events, filtered, decoded = consume(name, f"f-some-{name}", filtered=True)
    strip = [(type(e).__name__, e.seq, e.at) for e in all_events]
    assert [(type(e).__name__, e.seq, e.at) for e in events] == strip
    assert [{k: v for k, v in to_dict(c).items() if k != "server"} for c in filtered.calls.values()] == [
        {k: v for k, v in to_dict(c).items() if k != "server"} for c in everything.calls.values()]
    assert len(filtered.queues) == len(everything.queues) and len(filtered.agents) == len(everything.agents)
    assert decoded <= all_decoded
    dropped = AMIMetrics(f"f-some-{name}").dropped.value(server=f"f-some-{name}")
    assert dropped - AMIMetrics(f"f-all-{name}").dropped.value(server=f"f-all-{name}") == all_decoded - decoded


def test_a_busy_hour_decodes_far_fewer_messages() -> None:
    _events, _tracker, all_decoded = consume("ami-inbound-load-40-calls", "f-busy-all", filtered=False)
    _events, _tracker, decoded = consume("ami-inbound-load-40-calls", "f-busy-some", filtered=True)
    assert decoded < all_decoded * 0.75  # agents' legs, Local channels, other variables: left undecoded
