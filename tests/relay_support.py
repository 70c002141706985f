"""Helpers for the several-nodes tests (no tests here): in-process ccserver nodes on the real test Redis whose AMI the
test plays itself, and polling with a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.task import Clock

from ccserver.ami.message import AMIMessage
from ccserver.config import load_config
from ccserver.state.records import RecordBatcher
from ccserver.state.tracker import LIST_EVENTS
from ccserver.telephony import Telephony
from tests.test_state_snapshot import view

__all__ = ["Node", "config", "events_of", "list_items", "run", "until", "view"]


def config() -> Any:
    return load_config(environ={"CCSERVER_AMI_HOST": "127.0.0.1", "CCSERVER_AMI_USERNAME": "cc"})


async def until(condition: Callable[[], bool], seconds: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition()`` on the loop (real I/O is in flight) until it holds, or fail after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not met within {seconds} s")
        await asyncio.sleep(0.005)


def run(main: Callable[[], Any], seconds: float = 45.0) -> Any:
    """``asyncio.run(main())`` bounded: past ``seconds`` every task's stack is printed (what hangs) and it fails."""

    async def bounded() -> Any:
        task = asyncio.ensure_future(main())
        done, _ = await asyncio.wait([task], timeout=seconds)
        if not done:
            for other in asyncio.all_tasks():
                other.print_stack()
            task.cancel()
            raise AssertionError(f"still running after {seconds} s (task stacks above)")
        return task.result()

    return asyncio.run(bounded())


class Node:
    """One ccserver node's telephony side: leases, relay, follower, mirror, hub. Its AMI connections are not
    dialled (there is no Asterisk here): while it leads, the test hands it the AMI messages Asterisk would send.
    Its call records are collected in ``written``."""

    def __init__(self, redis: Any, name: str, *, clock: Any = None) -> None:
        self.name = name
        self.telephony = Telephony(config(), Clock(), session_factory=lambda: None, redis=redis, node_id=name,
                                   clock=clock)
        self.connected: list[str] = []  # AMI connections the node opened (start) and closed (stop)
        self.telephony.ami.start_server = lambda server: self.connected.append(f"+{server}")  # type: ignore
        self.telephony.ami.stop_server = lambda server: self.connected.append(f"-{server}")  # type: ignore
        self.written: list[dict] = []

        async def sink(records: list[dict]) -> None:
            self.written.extend(records)

        self.telephony.records = RecordBatcher(sink, interval=0.01)

    @property
    def tracker(self) -> Any:
        return self.telephony.tracker

    @property
    def follower(self) -> Any:
        return self.telephony.follower

    def leads(self, server: str = "default") -> bool:
        return server in self.telephony.leading

    def ami(self, messages: Iterable[tuple[AMIMessage, float]]) -> int:
        """What this node's AMI connection delivers: the events (list items answer actions: see ``resync``)."""
        fed = 0
        for msg, arrival in messages:
            if msg.event is not None and msg.event not in LIST_EVENTS:
                msg.server = msg.server or "default"
                msg.arrival = arrival
                self.telephony._on_event(msg)
                fed += 1
        return fed

    def resync(self, items: Iterable[tuple[AMIMessage, float]], now: float, server: str = "default") -> None:
        """A full resync answered with these QueueStatus / CoreShowChannels items."""
        items = list(items)
        queues = [m for m, _ in items if m.event in ("QueueParams", "QueueMember", "QueueEntry")]
        channels = [m for m, _ in items if m.event == "CoreShowChannel"]
        self.telephony._apply_resync(server, queues, channels, now)

    def relayed_to(self, other: Node, server: str = "default") -> bool:
        """Whether ``other`` applied everything this node numbered for ``server``."""
        position = self.telephony.outbox.position(server)
        return position is not None and other.follower.position(server) == position

    def relayed_to_follower(self, follower: Any, server: str = "default") -> bool:
        position = self.telephony.outbox.position(server)
        return position is not None and follower.position(server) == position

    async def stop(self) -> None:
        await self.telephony.stop()


def events_of(messages: Iterable[tuple[AMIMessage, float]], *names: str) -> list[tuple[AMIMessage, float]]:
    return [(m, t) for m, t in messages if m.event in names]


def list_items(messages: Iterable[tuple[AMIMessage, float]]) -> list[tuple[AMIMessage, float]]:
    return [(m, t) for m, t in messages if m.event in LIST_EVENTS]
