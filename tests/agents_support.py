"""A stand-in for app_queue's member list, answering the agent service's member actions the way Asterisk does
(outcomes as in tests/data/asterisk/ami-queue-member-actions.jsonl) and telling a StateTracker what changed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ccserver.agents.queue_actions import ALREADY, DONE, NO_SUCH_QUEUE, NOT_MEMBER, MemberActionFailed


@dataclass
class FakeMember:
    name: str
    penalty: int = 0
    paused: bool = False
    reason: str = ""
    state_interface: str = ""
    dynamic: bool = True


@dataclass
class FakeAsterisk:
    queues: set[str]
    server: str = "default"
    tracker: Any = None
    up: bool = True
    members: dict[tuple[str, str], FakeMember] = field(default_factory=dict)
    sent: list[tuple[Any, ...]] = field(default_factory=list)

    def connected(self, server: str) -> bool:
        return self.up and server == self.server

    async def ready(self, server: str) -> bool:
        return self.connected(server)

    def _check(self) -> None:
        if not self.up:
            raise MemberActionFailed("Asterisk default not reachable (connection lost)")

    def _event(self, event: str, queue: str, interface: str, m: FakeMember) -> None:
        if self.tracker is not None:
            self.tracker.handle({"Event": event, "Queue": queue, "Interface": interface, "MemberName": m.name,
                                 "StateInterface": m.state_interface or interface,
                                 "Membership": "dynamic" if m.dynamic else "static", "Penalty": str(m.penalty),
                                 "Paused": "1" if m.paused else "0", "PausedReason": m.reason, "Status": "1",
                                 "InCall": "0", "Timestamp": "1795416967.7"})

    async def add(self, server: str, queue: str, interface: str, *, penalty: int, member_name: str,
                  state_interface: str | None, paused: bool, reason: str) -> str:
        self._check()
        self.sent.append(("add", queue, interface, penalty, paused, reason))
        await asyncio.sleep(0)
        if queue not in self.queues:
            return NO_SUCH_QUEUE
        if (queue, interface) in self.members:
            return ALREADY
        m = self.members[(queue, interface)] = FakeMember(member_name, penalty, paused, reason,
                                                          state_interface or interface)
        self._event("QueueMemberAdded", queue, interface, m)
        return DONE

    async def remove(self, server: str, queue: str, interface: str) -> str:
        self._check()
        self.sent.append(("remove", queue, interface))
        await asyncio.sleep(0)
        m = self.members.get((queue, interface))
        if m is None:
            return ALREADY
        if not m.dynamic:
            return "not_dynamic"
        del self.members[(queue, interface)]
        self._event("QueueMemberRemoved", queue, interface, m)
        return DONE

    async def pause(self, server: str, interface: str, *, paused: bool, reason: str, queue: str | None = None) -> str:
        self._check()
        self.sent.append(("pause", queue, interface, paused, reason))
        await asyncio.sleep(0)
        hit = [(q, i) for (q, i) in self.members if i == interface and (queue is None or q == queue)]
        if not hit:
            return NOT_MEMBER
        for key in hit:
            m = self.members[key]
            m.paused, m.reason = paused, reason if paused else ""
            self._event("QueueMemberPause", key[0], interface, m)
        return DONE

    async def penalty(self, server: str, queue: str, interface: str, penalty: int) -> str:
        self._check()
        self.sent.append(("penalty", queue, interface, penalty))
        m = self.members.get((queue, interface))
        if m is None:
            return NOT_MEMBER
        m.penalty = penalty
        self._event("QueueMemberPenalty", queue, interface, m)
        return DONE

    def queue_status(self) -> list[dict[str, str]]:
        """What an unfiltered QueueStatus would list (QueueParams, then QueueMember items)."""
        items: list[dict[str, str]] = [{"Event": "QueueParams", "Queue": q, "Strategy": "leastrecent"}
                                       for q in sorted(self.queues)]
        for (q, iface), m in sorted(self.members.items()):
            items.append({"Event": "QueueMember", "Queue": q, "Name": m.name, "Location": iface,
                          "StateInterface": m.state_interface or iface,
                          "Membership": "dynamic" if m.dynamic else "static", "Penalty": str(m.penalty),
                          "Paused": "1" if m.paused else "0", "PausedReason": m.reason, "Status": "1", "InCall": "0"})
        return items

    def resync(self, now: float = 1795416968.0) -> None:
        self.tracker.resync_queues(self.server, self.queue_status(), now, complete=True)

    def of(self, interface: str) -> dict[str, FakeMember]:
        return {q: m for (q, i), m in self.members.items() if i == interface}
