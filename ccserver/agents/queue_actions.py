"""Queue member actions over AMI, with Asterisk's answers made explicit.

app_queue answers a member action with ``Response: Error`` for outcomes that are fine for a sign-in (the agent is
already there, or already gone); this module turns Asterisk's messages (app_queue.c ``manager_add_queue_member``
and friends; also seen in tests/data/asterisk/ami-queue-member-actions.jsonl) into outcomes:

========================  ==========================================================  ==================
action                    Asterisk's message                                          outcome
========================  ==========================================================  ==================
QueueAdd                  Added interface to queue                                    ``done``
QueueAdd                  Unable to add interface: Already there                      ``already``
QueueAdd / QueueRemove    Unable to add interface to queue: No such queue (… from …)  ``no_such_queue``
QueueRemove               Removed interface from queue                                ``done``
QueueRemove               Unable to remove interface: Not there                       ``already``
QueueRemove               Member not dynamic                                          ``not_dynamic``
QueuePause / QueuePenalty Interface not found / Invalid interface, queuename or …      ``not_member``
========================  ==========================================================  ==================

Anything else (the connection dropped, an unknown error) raises :class:`MemberActionFailed`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from ccserver.ami.errors import AMIConnectionLost, AMIError, AMITimeout
from ccserver.bridge import wait

DONE = "done"
ALREADY = "already"
NO_SUCH_QUEUE = "no_such_queue"
NOT_DYNAMIC = "not_dynamic"
NOT_MEMBER = "not_member"


class MemberActionFailed(Exception):
    """Asterisk could not be asked, or refused for a reason that is not a known outcome."""


class QueueActions(Protocol):
    """What the agent service needs of Asterisk (the AMI below, a fake in tests)."""

    def connected(self, server: str) -> bool: ...

    async def ready(self, server: str) -> bool:
        """Whether ``server`` can be asked now (a one-shot command connects here first)."""
        ...

    async def add(self, server: str, queue: str, interface: str, *, penalty: int, member_name: str,
                  state_interface: str | None, paused: bool, reason: str) -> str: ...

    async def remove(self, server: str, queue: str, interface: str) -> str: ...

    async def pause(self, server: str, interface: str, *, paused: bool, reason: str,
                    queue: str | None = None) -> str: ...

    async def penalty(self, server: str, queue: str, interface: str, penalty: int) -> str: ...


def outcome_of(action: str, message: str) -> str | None:
    """The outcome for an error ``message`` of ``action``, None when it is a real failure."""
    text = message.strip().lower()
    if "already there" in text:
        return ALREADY
    if "not there" in text:
        return ALREADY
    if "no such queue" in text:
        return NO_SUCH_QUEUE
    if "not dynamic" in text:
        return NOT_DYNAMIC
    if action in ("QueuePause", "QueuePenalty") and ("not found" in text or "invalid interface" in text):
        return NOT_MEMBER
    return None


class AMIQueueActions:
    """:class:`QueueActions` over an :class:`ccserver.ami.manager.AMIManager` (Deferreds awaited on ``loop``).

    ``connect_timeout``: None in the server (its AMI connections are kept up elsewhere: not connected means not
    ready); a number for a one-shot command, which starts the connection when first asked and waits that long.
    """

    def __init__(self, ami: Any, loop: asyncio.AbstractEventLoop | None = None, *,
                 connect_timeout: float | None = None) -> None:
        self._ami = ami
        self._loop = loop
        self._connect_timeout = connect_timeout

    def connected(self, server: str) -> bool:
        client = self._ami.clients.get(server)
        return client is not None and client.connected

    async def ready(self, server: str) -> bool:
        client = self._ami.clients.get(server)
        if client is None:
            return False
        if client.connected or self._connect_timeout is None:
            return bool(client.connected)
        client.start()
        loop = self._loop or asyncio.get_running_loop()
        try:
            await asyncio.wait_for(wait(client.when_connected(), loop), self._connect_timeout)
        except TimeoutError:
            return False
        return bool(client.connected)

    async def _send(self, server: str, action: str, **headers: Any) -> str:
        if server not in self._ami.clients:
            raise MemberActionFailed(f"no Asterisk server named {server!r} is configured")
        loop = self._loop or asyncio.get_running_loop()
        try:
            await wait(self._ami.send_action(server, action, **headers), loop)
        except AMIError as exc:
            outcome = outcome_of(action, exc.message)
            if outcome is None:
                raise MemberActionFailed(f"{action} refused by Asterisk {server}: {exc.message}") from None
            return outcome
        except (AMIConnectionLost, AMITimeout) as exc:
            raise MemberActionFailed(f"{action}: Asterisk {server} not reachable ({exc})") from None
        return DONE

    async def add(self, server: str, queue: str, interface: str, *, penalty: int, member_name: str,
                  state_interface: str | None, paused: bool, reason: str) -> str:
        return await self._send(server, "QueueAdd", Queue=queue, Interface=interface, Penalty=penalty,
                                MemberName=member_name, StateInterface=state_interface or interface,
                                Paused="true" if paused else "false", Reason=reason if paused and reason else None)

    async def remove(self, server: str, queue: str, interface: str) -> str:
        return await self._send(server, "QueueRemove", Queue=queue, Interface=interface)

    async def pause(self, server: str, interface: str, *, paused: bool, reason: str, queue: str | None = None) -> str:
        return await self._send(server, "QueuePause", Interface=interface, Queue=queue,
                                Paused="true" if paused else "false", Reason=reason or None)

    async def penalty(self, server: str, queue: str, interface: str, penalty: int) -> str:
        return await self._send(server, "QueuePenalty", Queue=queue, Interface=interface, Penalty=penalty)
