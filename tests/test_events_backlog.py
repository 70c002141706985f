"""Readers first: while an AMI reader is behind on a burst, the hub's subscribers park; they get everything queued
meanwhile once the burst is over (every reader caught up for ``quiet`` seconds), after ``hold`` seconds at most, or
as soon as their queue is half full — nothing dropped, nothing reordered. Time is a ManualClock: nothing sleeps."""

from __future__ import annotations

import asyncio
import socket

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from ccserver.ami.dispatch import EventDispatcher
from ccserver.ami.protocol import SLICE, AMIProtocol
from ccserver.clock import ManualClock
from ccserver.events import EventHub, QueueChanged
from ccserver.events.backlog import BEHIND_BYTES, ReadBacklog
from ccserver.events.hub import DROPPED
from ccserver.metrics import REGISTRY

BANNER = b"Asterisk Call Manager/13.0.0\r\n"
READER = "asterisk-a"


def _event(seq: int) -> QueueChanged:
    return QueueChanged("default", seq, float(seq), "sales", 0, 0)


def _hub(clock: ManualClock, name: str = "backlog", **subscribe: object) -> tuple[EventHub, list[list[int]], list[int]]:
    """A hub with a batch subscriber (its calls recorded) and a one-by-one subscriber, named after ``name``."""
    hub = EventHub(ReadBacklog(hold=0.5, quiet=0.01, clock=clock))
    batches: list[list[int]] = []
    singles: list[int] = []
    hub.subscribe(f"{name}-batch", lambda events: batches.append([e.seq for e in events]), batch=True, **subscribe)
    hub.subscribe(f"{name}-single", lambda e: singles.append(e.seq), **subscribe)
    return hub, batches, singles


def _queued(name: str) -> float:
    text = REGISTRY.render(["ccserver_events_queued"])
    line = next((ln for ln in text.splitlines() if f'subscriber="{name}"' in ln), None)
    return float(line.rsplit(" ", 1)[1]) if line else 0.0


def test_subscribers_wait_for_the_burst_to_end_then_get_it_in_one_batch() -> None:
    async def main() -> None:
        clock = ManualClock()
        hub, batches, singles = _hub(clock, "burst")
        hub.start()
        hub.backlog.behind(READER)
        for seq in range(1, 6):
            hub.publish(_event(seq))
            await clock.advance(0)  # the loop turns between slices: the subscribers wake, and park
        assert batches == [] and singles == []
        assert hub.backlog.parked == 2 and _queued("burst-single") == 5  # /metrics shows what waits
        hub.backlog.caught_up(READER)
        await clock.advance(0.005)
        hub.backlog.behind(READER)  # more of the same burst within ``quiet``: still held
        hub.publish(_event(6))
        await clock.advance(0.02)
        assert batches == [] and singles == []
        hub.backlog.caught_up(READER)
        await clock.advance(0.009)
        assert batches == []
        await clock.advance(0.001)  # caught up for ``quiet``: the burst is over
        assert batches == [[1, 2, 3, 4, 5, 6]] and singles == [1, 2, 3, 4, 5, 6]
        assert not hub.backlog.holding and _queued("burst-single") == 0
        hub.publish(_event(7))  # no burst: delivered on the next turn
        await clock.advance(0)
        assert batches[-1] == [7] and singles[-1] == 7
        await hub.stop()

    asyncio.run(main())


def test_a_long_burst_lets_the_subscribers_run_once_per_hold() -> None:
    async def main() -> None:
        clock = ManualClock()
        hub, batches, _ = _hub(clock)
        hub.start()
        hub.backlog.behind(READER)
        hub.publish(_event(1))
        await clock.advance(0.499)
        hub.backlog.behind(READER)  # the reader is still behind at every turn
        assert batches == []
        await clock.advance(0.001)  # half a second held: they run once, whatever the reader
        assert batches == [[1]]
        hub.publish(_event(2))
        hub.publish(_event(3))
        await clock.advance(0.4)
        assert batches == [[1]]  # parked again: the next hold counts from the last release
        await clock.advance(0.1)
        assert batches == [[1], [2, 3]]
        await hub.stop()

    asyncio.run(main())


def test_a_half_full_queue_goes_on_at_once_and_loses_nothing() -> None:
    async def main() -> None:
        clock = ManualClock()
        hub, batches, singles = _hub(clock, "half", maxsize=8)
        hub.start()
        dropped = DROPPED.value(subscriber="half-batch") + DROPPED.value(subscriber="half-single")
        hub.backlog.behind(READER)
        for seq in range(1, 4):
            hub.publish(_event(seq))
            await clock.advance(0)
        assert batches == [] and singles == []
        hub.publish(_event(4))  # half of eight queued: waiting longer could mean dropping events
        await clock.advance(0)
        assert batches == [[1, 2, 3, 4]] and singles == [1, 2, 3, 4]
        for seq in range(5, 41):  # a burst of five queues' worth, the reader behind all along
            hub.publish(_event(seq))
            await clock.advance(0)
        assert hub.backlog.holding and clock.monotonic() < hub.backlog.hold
        await clock.advance(0.5)
        assert [seq for batch in batches for seq in batch] == singles == list(range(1, 41))  # all, in order
        assert DROPPED.value(subscriber="half-batch") + DROPPED.value(subscriber="half-single") == dropped
        await hub.stop()

    asyncio.run(main())


def test_stopping_the_hub_delivers_what_a_burst_held() -> None:
    async def main() -> list[list[int]]:
        clock = ManualClock()
        hub, batches, _ = _hub(clock)
        hub.start()
        hub.backlog.behind(READER)  # and never catches up (its connection is being torn down)
        hub.publish(_event(1))
        await clock.advance(0)
        await hub.stop(1.0)
        return batches

    assert asyncio.run(main()) == [[1]]


def test_no_burst_no_timers_and_a_bad_setting_is_refused() -> None:
    clock = ManualClock()
    backlog = ReadBacklog(clock=clock)
    backlog.behind(READER)
    backlog.caught_up(READER)  # nobody parked: nothing to settle
    assert not backlog.holding and clock.pending == 0
    with pytest.raises(ValueError):
        ReadBacklog(hold=0)
    with pytest.raises(ValueError):
        ReadBacklog(quiet=-1)


# -- the AMI reader's side -------------------------------------------------------------------------------------------
class _SocketTransport(StringTransport):
    """A test transport whose fileno() is a real socket: what waits unread in it is what Asterisk sent meanwhile."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()


def _events(n: int) -> bytes:
    return b"".join(b"Event: Newchannel\r\nUniqueid: 1700000000.%d\r\n\r\n" % i for i in range(n))


def _reader(transport: StringTransport) -> tuple[AMIProtocol, ReadBacklog, Clock, list[str]]:
    clock = Clock()
    dispatcher = EventDispatcher()
    got: list[str] = []
    dispatcher.on("Newchannel", lambda m: got.append(m["Uniqueid"]))
    backlog = ReadBacklog(clock=ManualClock())
    proto = AMIProtocol(clock, dispatcher=dispatcher, server="backlog", action_id_prefix="t", backlog=backlog)
    proto.makeConnection(transport)
    proto.dataReceived(BANNER)
    return proto, backlog, clock, got


def test_the_reader_is_behind_while_slices_of_a_read_wait_and_caught_up_after() -> None:
    proto, backlog, clock, got = _reader(StringTransport())
    proto.dataReceived(_events(SLICE + 10))
    assert len(got) == SLICE and backlog.holding  # the rest of the read waits one turn
    clock.advance(0)
    assert len(got) == SLICE + 10 and not backlog.holding


def _take(sock: socket.socket) -> bytes:
    """Everything waiting in ``sock`` (what a read of the reactor would get)."""
    sock.setblocking(False)
    data = b""
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except BlockingIOError:
        pass
    sock.setblocking(True)
    return data


def test_the_reader_is_behind_while_a_backlog_waits_in_its_socket_not_for_the_next_event() -> None:
    ours, asterisk = socket.socketpair()
    try:
        proto, backlog, _, got = _reader(_SocketTransport(ours))
        asterisk.sendall(b"Event: Newchannel\r\nUniqueid: 1.1\r\n\r\n")  # a busy hour's next event, meanwhile
        proto.dataReceived(_events(3))
        assert len(got) == 3 and not backlog.holding  # the everyday trickle holds nobody
        waiting = _events(BEHIND_BYTES // 40 + 1)  # a backlog: more than BEHIND_BYTES sent meanwhile
        asterisk.sendall(waiting)
        proto.dataReceived(ours.recv(4096))
        assert got[3] == "1.1" and backlog.holding
        rest = _take(ours)
        cut = len(rest) - 10
        proto.dataReceived(rest[:cut])
        proto.clock.advance(0)  # type: ignore[attr-defined]  # its slices (the reading is paused meanwhile)
        assert not backlog.holding  # everything sent was read: the end of the last message is still on its way
        proto.dataReceived(rest[cut:])
        assert not backlog.holding and len(got) == 4 + BEHIND_BYTES // 40 + 1
        asterisk.sendall(waiting)
        proto.dataReceived(b"Event: Newch")  # part of a message: nothing handled, still reported
        assert backlog.holding
        _take(ours)
        proto.dataReceived(b"annel\r\nUniqueid: 1.2")
        assert not backlog.holding and got[-1] != "1.2"
        asterisk.sendall(waiting)
        proto.dataReceived(b"\r\n\r\n")
        assert backlog.holding and got[-1] == "1.2"
        proto.connectionLost()  # a connection that closes is caught up: nothing waits on it any more
        assert not backlog.holding
    finally:
        ours.close()
        asterisk.close()


def test_every_asterisk_connection_reports_to_its_hubs_backlog() -> None:
    from ccserver.config import load_config
    from ccserver.telephony import Telephony

    config = load_config(environ={"CCSERVER_AMI_HOST": "127.0.0.1", "CCSERVER_AMI_USERNAME": "cc"})
    telephony = Telephony(config, Clock(), session_factory=lambda: None)
    clients = list(telephony.ami.clients.values())
    assert clients and all(c._build_protocol().backlog is telephony.hub.backlog for c in clients)


def test_a_subscription_closed_while_parked_and_a_restarted_hub_hold_nothing_back() -> None:
    async def main() -> None:
        clock = ManualClock()
        hub, batches, singles = _hub(clock, "closed")
        gone: list[int] = []
        leaving = hub.subscribe("closed-leaving", lambda e: gone.append(e.seq))
        hub.start()
        hub.backlog.behind(READER)
        hub.publish(_event(1))
        await clock.advance(0)
        assert hub.backlog.parked == 3
        leaving.close()
        await clock.advance(0)
        assert hub.backlog.parked == 2  # its cancelled wait is not counted
        await hub.stop(1.0)
        assert batches == [[1]] and singles == [1] and gone == []
        hub.backlog.behind(READER)
        hub.publish(_event(2))
        hub.start()  # started again: bursts hold its subscribers again
        await clock.advance(0)
        assert batches == [[1]] and hub.backlog.parked == 2
        hub.backlog.caught_up(READER)
        await clock.advance(0.01)
        assert batches == [[1], [2]] and singles == [1, 2] and clock.pending == 0  # no timer left behind
        await hub.stop()

    asyncio.run(main())
