"""The AMI side of supervisor actions, Asterisk's answers made explicit.

- ``Originate`` (async): ``Response: Success`` / ``Originate successfully queued`` means the supervisor's phone is
  being rung (tests/data/asterisk/ami-originate-results.jsonl); an error answer is Asterisk's refusal.
- ``QueueChangePriorityCaller`` (Asterisk 15+; ``Immediate`` moves the caller at once on 17+, ignored before):
  app_queue answers ``Response: Error`` with ``Unable to change priority …`` when the caller is no longer there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from ccserver.ami.errors import AMIConnectionLost, AMIError, AMITimeout
from ccserver.bridge import wait


class SupervisorActionFailed(Exception):
    """Asterisk refused (``refused`` true) or could not be asked."""

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


class SupervisorAMI(Protocol):
    def connected(self, server: str) -> bool: ...

    async def originate(self, server: str, headers: dict[str, Any],
                        announce: Callable[[str], None] | None = None) -> str: ...

    async def change_priority(self, server: str, queue: str, channel: str, priority: int) -> str: ...


class AMISupervisorActions:
    """:class:`SupervisorAMI` over an :class:`ccserver.ami.manager.AMIManager` (Deferreds awaited on the loop)."""

    def __init__(self, ami: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._ami = ami
        self._loop = loop

    def connected(self, server: str) -> bool:
        client = self._ami.clients.get(server)
        return client is not None and bool(client.connected)

    async def _send(self, server: str, action: str, **headers: Any) -> str:
        if server not in self._ami.clients:
            raise SupervisorActionFailed(f"no Asterisk server named {server!r} is configured", refused=False)
        loop = self._loop or asyncio.get_running_loop()
        try:
            reply = await wait(self._ami.send_action(server, action, **headers), loop)
        except AMIError as exc:
            raise SupervisorActionFailed(f"{action} refused by Asterisk {server}: {exc.message}",
                                         refused=True) from None
        except (AMIConnectionLost, AMITimeout) as exc:
            raise SupervisorActionFailed(f"{action}: Asterisk {server} not reachable ({exc})", refused=False) from None
        return str(reply.get("Message") or "") if hasattr(reply, "get") else ""

    async def originate(self, server: str, headers: dict[str, Any],
                        announce: Callable[[str], None] | None = None) -> str:
        """``announce(action_id)`` is called with the Originate's ActionID before it is written (the tracker must
        know the call is ours before Asterisk's OriginateResponse can arrive)."""
        client = self._ami.clients.get(server)
        if announce is not None and client is not None:
            action_id = client.new_originate_id()
            announce(action_id)
            headers = {**headers, "ActionID": action_id}
        return await self._send(server, "Originate", **headers)

    async def change_priority(self, server: str, queue: str, channel: str, priority: int) -> str:
        return await self._send(server, "QueueChangePriorityCaller", Queue=queue, Caller=channel, Priority=priority,
                                Immediate="yes")
