"""A big AMI read (a burst: Asterisk's resync, a backlog after a stall) is read in one piece but handled in slices of
``SLICE`` decoded messages, one per turn of the loop, with the socket paused in between: nothing lost, nothing
reordered, the loop never held for the whole burst."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from ccserver.ami.dispatch import EventDispatcher
from ccserver.ami.metrics import AMIMetrics
from ccserver.ami.protocol import READ_SIZE, SLICE, AMIProtocol

BANNER = b"Asterisk Call Manager/13.0.0\r\n"


def make(server: str, **kw) -> tuple[AMIProtocol, StringTransport, Clock, list[str]]:
    clock = Clock()
    disp = EventDispatcher()
    got: list[str] = []
    disp.on("Newchannel", lambda m: got.append(m["Uniqueid"]))
    proto = AMIProtocol(clock, dispatcher=disp, server=server, action_id_prefix="t", **kw)
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.dataReceived(BANNER)
    return proto, transport, clock, got


def turn(clock: Clock) -> None:
    """One turn of the loop: the calls due now, not those they schedule (``Clock.advance(0)`` would run those too,
    where a reactor waits for its next turn)."""
    due = [c for c in clock.calls if c.getTime() <= clock.seconds()]
    for call in due:
        clock.calls.remove(call)
        call.called = 1
        call.func(*call.args, **call.kw)


def events(n: int, start: int = 0) -> bytes:
    # Every other message is an event nobody subscribed to: counted and skipped, never part of a slice's quota.
    return b"".join(b"Event: Newchannel\r\nPrivilege: call,all\r\nUniqueid: 1700000000.%d\r\n\r\n"
                    b"Event: VarSet\r\nVariable: X\r\nValue: y\r\n\r\n" % i for i in range(start, start + n))


def test_a_burst_is_handled_one_slice_per_turn_with_reading_paused():
    proto, transport, clock, got = make("slices-burst")
    held = proto.metrics.read_seconds
    before = held.count
    total = 2 * SLICE + SLICE // 2
    proto.dataReceived(events(total))
    assert len(got) == SLICE
    assert transport.producerState == "paused"  # the socket waits while the rest of the read is handled
    turn(clock)
    assert len(got) == 2 * SLICE and transport.producerState == "paused"
    turn(clock)
    assert got == [f"1700000000.{i}" for i in range(total)]  # all of them, in wire order
    assert transport.producerState == "producing"
    assert clock.getDelayedCalls() == []
    assert AMIMetrics("slices-burst").messages.value(server="slices-burst") == 2 * total
    assert held.count - before == 3  # each slice's hold of the loop is measured (ccserver_ami_read_seconds)


def test_a_message_split_across_reads_survives_the_slices():
    proto, _, clock, got = make("slices-split")
    data = events(SLICE + 10)
    cut = data.rfind(b"Uniqueid") + 5  # the last Newchannel arrives in two reads
    proto.dataReceived(data[:cut])
    turn(clock)
    assert len(got) == SLICE + 9
    proto.dataReceived(data[cut:])
    assert got == [f"1700000000.{i}" for i in range(SLICE + 10)]


def test_data_arriving_while_a_slice_waits_is_handled_after_it():
    proto, _, clock, got = make("slices-more")
    proto.dataReceived(events(SLICE + 5))
    proto.dataReceived(events(3, start=SLICE + 5))  # e.g. a test or a transport that delivers anyway
    turn(clock)
    assert got == [f"1700000000.{i}" for i in range(SLICE + 8)]


def test_connection_lost_with_a_slice_waiting_drops_the_rest_and_the_timer():
    proto, transport, clock, got = make("slices-lost")
    proto.dataReceived(events(SLICE + 50))
    assert len(got) == SLICE
    proto.connectionLost()
    assert clock.getDelayedCalls() == []
    turn(clock)
    assert len(got) == SLICE


def test_the_rest_of_a_sliced_read_is_not_mistaken_for_an_oversized_message():
    proto, _, clock, got = make("slices-cap", max_message_size=4096)
    proto.dataReceived(events(SLICE + 200))  # what is left (~20 KB) is far over the per-message cap
    turn(clock)
    assert len(got) == SLICE + 200
    assert AMIMetrics("slices-cap").malformed.value(server="slices-cap", kind="oversize") == 0


def test_a_socket_transport_reads_in_big_pieces():
    class SocketLike(StringTransport):
        bufferSize = 1 << 16  # Twisted's default for TCP

    proto = AMIProtocol(Clock(), server="slices-size")
    transport = SocketLike()
    proto.makeConnection(transport)
    assert transport.bufferSize == READ_SIZE


def test_a_flood_of_undecoded_events_is_bounded_by_the_clock(monkeypatch):
    """Events nobody wants are skipped without decoding, so they do not count towards a slice; a read full of them
    still yields the loop once its turn has lasted TURN_SECONDS (the clock is read every 128 messages)."""
    import ccserver.ami.protocol as protocol

    proto, transport, clock, got = make("slices-flood")
    now = [0.0]

    def fake_clock() -> float:
        now[0] += protocol.TURN_SECONDS * 0.4  # every reading of the clock: 40 % of the turn gone
        return now[0]

    monkeypatch.setattr(protocol, "perf_counter", fake_clock)
    flood = b"".join(b"Event: VarSet\r\nVariable: X\r\nValue: %d\r\n\r\n" % i for i in range(2000))
    proto.dataReceived(flood + events(1))
    # read at the start, then at 128 (0.4 of the turn gone), 256 (0.8) and 384 (1.2: over) skipped messages
    assert transport.producerState == "paused" and got == []
    skipped = AMIMetrics("slices-flood").dropped.value(server="slices-flood")
    assert skipped == 384
    for _ in range(10):
        turn(clock)
    assert got == ["1700000000.0"] and transport.producerState == "producing"
    assert AMIMetrics("slices-flood").messages.value(server="slices-flood") == 2002
