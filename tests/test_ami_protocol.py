"""AMIProtocol fed bytes through StringTransport, with a Clock: framing, matching, faults, metrics."""

from __future__ import annotations

import logging

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from ccserver.ami.dispatch import EventDispatcher, HandOff
from ccserver.ami.errors import AMIConnectionLost, AMIError, AMITimeout, OriginateOutcomeUnknown
from ccserver.ami.metrics import AMIMetrics
from ccserver.ami.protocol import AMIProtocol
from tests.replay.transcripts import iter_transcript_messages, recv_sessions

BANNER = b"Asterisk Call Manager/13.0.0\r\n"


def make(server: str, **kw) -> tuple[AMIProtocol, StringTransport, Clock, EventDispatcher]:
    clock = Clock()
    disp = EventDispatcher()
    proto = AMIProtocol(clock, dispatcher=disp, server=server, action_id_prefix="t", **kw)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport, clock, disp


def results(d):
    out = []
    d.addBoth(out.append)
    return out


def test_banner_version_and_split_reads():
    proto, _, _, disp = make("p-banner")
    got = []
    disp.on("FullyBooted", got.append)
    stream = BANNER + b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 2\r\n\r\n"
    for i in range(len(stream)):  # one byte at a time: terminators and banner split across reads
        proto.dataReceived(stream[i:i + 1])
    assert proto.version == "13.0.0"
    assert [m["Uptime"] for m in got] == ["2"] and got[0].server == "p-banner"


@pytest.mark.parametrize("name", [
    "ami-inbound-load-40-calls", "ami-inbound-vip-answered", "ami-originate-results", "ami-inbound-abandoned",
    "ami-inbound-hangup-during-ivr", "ami-inbound-ivr-ringnoanswer-then-answered", "ami-queue-member-actions",
])
def test_unsubscribed_events_counted_not_parsed(name):
    server = f"p-count-{name}"
    proto, _, _, disp = make(server)
    joins = []
    disp.on("QueueCallerJoin", joins.append)
    data = recv_sessions(name)[0]
    for i in range(0, len(data), 1000):
        proto.dataReceived(data[i:i + 1000])
    msgs = list(iter_transcript_messages(name))
    m = AMIMetrics(server)
    assert m.messages.value(server=server) == len(msgs)
    expected_joins = [x for x in msgs if x.event == "QueueCallerJoin"]
    assert [j["Uniqueid"] for j in joins] == [x["Uniqueid"] for x in expected_joins]
    # responses are always parsed; every other event was dropped undecoded
    dropped = sum(1 for x in msgs if x.is_event and x.event != "QueueCallerJoin")
    assert m.dropped.value(server=server) == dropped



def test_list_action_collects_until_named_complete():
    proto, transport, _, disp = make("p-list")
    other = []
    disp.on_any(other.append)
    proto.dataReceived(BANNER)
    out = results(proto.send_action("QueueStatus", {"Queue": "complaints"}))
    assert transport.value() == b"Action: QueueStatus\r\nActionID: t-1\r\nQueue: complaints\r\n\r\n"
    proto.dataReceived(
        b"Response: Success\r\nActionID: t-1\r\nEventList: start\r\nMessage: Queue status will follow\r\n\r\n"
        b"Event: QueueParams\r\nQueue: complaints\r\nCalls: 1\r\nActionID: t-1\r\n\r\n"
        b"Event: Hangup\r\nUniqueid: 9.9\r\n\r\n"
        b"Event: QueueEntry\r\nQueue: complaints\r\nPosition: 1\r\nActionID: t-1\r\n\r\n")
    assert out == []
    proto.dataReceived(b"Event: QueueStatusComplete\r\nActionID: t-1\r\nEventList: Complete\r\nListItems: 2\r\n\r\n")
    (res,) = out
    assert [e.event for e in res.events] == ["QueueParams", "QueueEntry"]
    assert res.complete["ListItems"] == "2" and res["Message"] == "Queue status will follow"
    assert [m.event for m in other] == ["Hangup"]  # list members go to the caller, not to subscribers
    assert proto._lists == 0 and proto._pending == {}


def test_unknown_list_action_completes_on_eventlist_complete():
    proto, _, _, _ = make("p-list2")
    proto.dataReceived(BANNER)
    out = results(proto.send_action("FooList"))
    proto.dataReceived(b"Response: Success\r\nActionID: t-1\r\nEventList: start\r\n\r\n"
                       b"Event: FooEntry\r\nActionID: t-1\r\n\r\n"
                       b"Event: FooListDone\r\nActionID: t-1\r\nEventList: Complete\r\n\r\n")
    assert len(out[0].events) == 1


def test_error_response_rejects_with_asterisk_message():
    proto, _, _, _ = make("p-err")
    proto.dataReceived(BANNER)
    out = results(proto.send_action("QueueRemove", {"Queue": "service", "Interface": "Local/9999@x/n"}))
    proto.dataReceived(b"Response: Error\r\nActionID: t-1\r\nMessage: Unable to remove interface: Not there\r\n\r\n")
    err = out[0].value
    assert isinstance(err, AMIError) and err.message == "Unable to remove interface: Not there"


def test_connection_lost_fails_every_pending_action_and_originate_is_unknown():
    proto, _, _, _ = make("p-lost")
    proto.dataReceived(BANNER)
    a = results(proto.send_action("QueueStatus"))
    b = results(proto.send_action("Ping"))
    c = results(proto.send_action("Originate", {"Channel": "Local/1@x", "Async": "true"}))
    lost = []
    proto.on_lost = lambda p, r: lost.append(p)
    proto.connectionLost()
    assert isinstance(a[0].value, AMIConnectionLost) and isinstance(b[0].value, AMIConnectionLost)
    assert isinstance(c[0].value, OriginateOutcomeUnknown)
    assert lost == [proto]
    out = results(proto.send_action("Ping"))
    assert isinstance(out[0].value, AMIConnectionLost)


def test_action_timeout():
    proto, _, clock, _ = make("p-timeout")
    out = results(proto.send_action("Ping", timeout=5))
    clock.advance(4.9)
    assert out == []
    clock.advance(0.2)
    assert isinstance(out[0].value, AMITimeout) and proto._pending == {}


def test_keepalive_drops_silent_connection():
    proto, transport, clock, _ = make("p-ka")
    proto.dataReceived(BANNER)
    proto.start_keepalive(interval=20, timeout=10)
    clock.advance(20)
    assert b"Action: Ping\r\nActionID: t-1" in transport.value()
    proto.dataReceived(b"Response: Success\r\nActionID: t-1\r\nPing: Pong\r\n\r\n")
    clock.advance(20)
    assert b"ActionID: t-2" in transport.value() and not transport.disconnecting
    clock.advance(10.1)  # no Pong for t-2
    assert transport.disconnecting
    assert AMIMetrics("p-ka").keepalive_timeouts.value(server="p-ka") == 1


def test_malformed_input_is_counted_and_stream_continues(caplog):
    server = "p-bad"
    proto, _, _, disp = make(server, max_message_size=4096)
    got = []
    disp.on("Hangup", got.append)
    caplog.set_level(logging.WARNING, "ccserver.ami")
    proto.dataReceived(BANNER)
    proto.dataReceived(b"\x00\xff\xfegarbage bytes\r\n\r\n")  # neither response nor event
    proto.dataReceived(b"Event: Hangup\r\nthis line has no colon\r\nUniqueid: 1.1\r\n\r\n")
    proto.dataReceived(b"Event: Hangup\r\nCallerIDName: \xff\xfe\r\nUniqueid: 1.2\r\n\r\n")
    proto.dataReceived(b"Event: Hangup\r\nData: " + b"x" * 10_000)  # over the cap, unterminated
    proto.dataReceived(b"y" * 5000 + b"\r\n\r")
    proto.dataReceived(b"\nEvent: Hangup\r\nUniqueid: 1.3\r\n\r\n")
    proto.dataReceived(b"Event: Hangup\r\nData: " + b"z" * 5000 + b"\r\n\r\n")  # terminated, over the cap
    proto.dataReceived(b"Event: Hangup\r\nUniqueid: 1.4\r\n\r\n")
    assert [m["Uniqueid"] for m in got] == ["1.1", "1.2", "1.3", "1.4"]
    m = AMIMetrics(server)
    assert m.malformed.value(server=server, kind="unknown") == 1
    assert m.malformed.value(server=server, kind="header") == 2  # the garbage line + the colon-less line
    assert m.malformed.value(server=server, kind="encoding") == 2  # the garbage + the bad CallerIDName
    assert m.malformed.value(server=server, kind="oversize") == 2
    assert m.messages.value(server=server) == 7
    assert "over the" in caplog.text and "UTF-8" in caplog.text


def test_handler_exception_isolated(caplog):
    proto, _, _, disp = make("p-iso")
    seen = []

    def boom(msg):
        raise RuntimeError("handler bug")

    async def aboom(msg):
        raise RuntimeError("async handler bug")

    disp.on("Hangup", boom)
    disp.on("Hangup", aboom)
    disp.on("Hangup", seen.append)
    disp.on_any(lambda m: seen.append(("any", m.event)))
    proto.dataReceived(BANNER + b"Event: Hangup\r\nUniqueid: 1\r\n\r\nEvent: Hangup\r\nUniqueid: 2\r\n\r\n")
    assert [m["Uniqueid"] for m in seen if not isinstance(m, tuple)] == ["1", "2"]
    assert ("any", "Hangup") in seen
    assert "handler bug" in caplog.text and "async handler bug" in caplog.text
    assert AMIMetrics("p-iso").handler_errors.value(server="p-iso") == 4


def test_handoff_runs_later_in_batches_and_keeps_order():
    proto, _, clock, disp = make("p-handoff")
    done = []
    slow = HandOff(lambda m: done.append(m["Uniqueid"]), clock, max_pending=3, batch=2)
    disp.on("Hangup", slow)
    proto.dataReceived(BANNER + b"".join(b"Event: Hangup\r\nUniqueid: %d\r\n\r\n" % i for i in range(5)))
    assert done == []  # nothing ran in the read path
    clock.advance(0)
    assert done == ["2", "3", "4"] and slow.dropped == 2  # oldest dropped when full, order kept


def test_unsolicited_response_is_ignored():
    proto, _, _, _ = make("p-unsol")
    proto.dataReceived(BANNER + b"Response: Success\r\nActionID: nobody\r\n\r\n")
    assert AMIMetrics("p-unsol").unmatched.value(server="p-unsol") == 1


def test_event_filtered_on_its_headers_is_dropped_undecoded_unless_a_handler_wants_it():
    server = "p-filter"
    proto, _, _, disp = make(server)
    seen: list[str] = []
    asked: list[tuple[str, ...]] = []

    def test(srv: str, name: str, uid: str) -> bool:
        asked.append((srv, name, uid))
        return name.startswith("CC_") or uid == "keep.1"

    unsubscribe = disp.on("VarSet", lambda m: seen.append(m.get("Variable", "-")),
                          when=(("Variable", "Uniqueid"), test))

    def varset(name: str, uid: str = "1.1") -> bytes:
        return (f"Event: VarSet\r\nChannel: PJSIP/a-1\r\nVariable: {name}\r\nValue: 1\r\n"
                f"Uniqueid: {uid}\r\n\r\n").encode()

    no_header = b"Event: VarSet\r\nChannel: PJSIP/a-1\r\nValue: 1\r\nUniqueid: 1.1\r\n\r\n"  # kept: cannot tell
    last_line = b"Event: VarSet\r\nVariable: CC_LAST\r\nUniqueid: 1.1\r\n\r\n"  # a header on the last line
    proto.dataReceived(BANNER + varset("BRIDGEPEER") + varset("CC_QUEUE") + no_header + last_line + varset("X")
                       + varset("Y", "keep.1"))
    m = AMIMetrics(server)
    assert seen == ["CC_QUEUE", "-", "CC_LAST", "Y"]
    assert m.messages.value(server=server) == 6 and m.dropped.value(server=server) == 2
    assert asked[0] == (server, "BRIDGEPEER", "1.1") and len(asked) == 5  # the one without a Variable: not asked

    other: list[str] = []
    disp.on("VarSet", lambda msg: other.append(msg["Variable"]))  # a handler without a filter wants every VarSet
    proto.dataReceived(varset("BRIDGEPEER"))
    assert other == ["BRIDGEPEER"] and seen[-1] == "BRIDGEPEER"
    unsubscribe()
    assert disp.filters == {}


def test_a_one_header_filter_drops_what_its_test_rejects_and_keeps_what_it_cannot_read():
    # The usual case (the tracker's VarSet filter on Variable) goes through a reject function of its own:
    # it must keep exactly what the general one keeps — a missing header, a value not UTF-8, the last line.
    server = "p-filter-one"
    proto, _, _, disp = make(server)
    seen: list[str] = []
    asked: list[tuple[str, str]] = []

    def test(srv: str, name: str) -> bool:
        asked.append((srv, name))
        return name.startswith("CC_")

    disp.on("VarSet", lambda m: seen.append(m.get("Variable", "-")), when=(("Variable",), test))
    other = b"Event: VarSet\r\nVariable: BRIDGEPEER\r\nValue: 1\r\n\r\n"
    ours = b"Event: VarSet\r\nVariable: CC_TIER\r\nValue: gold\r\n\r\n"
    missing = b"Event: VarSet\r\nChannel: PJSIP/a-1\r\nValue: 1\r\n\r\n"
    not_utf8 = b"Event: VarSet\r\nVariable: CC_\xff\xfe\r\nValue: 1\r\n\r\n"
    last = b"Event: VarSet\r\nValue: 1\r\nVariable: CC_LAST\r\n\r\n"
    last_other = b"Event: VarSet\r\nValue: 1\r\nVariable: DIALSTATUS\r\n\r\n"
    spoofed = b"Event: VarSet\r\nValue: x\r\n Variable: CC_FAKE\r\nVariable: MIXMONITOR\r\n\r\n"
    proto.dataReceived(BANNER + other + ours + missing + not_utf8 + last + last_other + spoofed)
    m = AMIMetrics(server)
    assert seen == ["CC_TIER", "-", "CC_\ufffd\ufffd", "CC_LAST"]
    assert asked == [(server, "BRIDGEPEER"), (server, "CC_TIER"), (server, "CC_LAST"), (server, "DIALSTATUS"),
                     (server, "MIXMONITOR")]
    assert m.messages.value(server=server) == 7 and m.dropped.value(server=server) == 3
