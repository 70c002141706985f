"""The AMI side of the desktop: transfers on the agent's channel and click-to-dial Originates.

- Transfers act on the *agent's* channel (BlindTransfer / Atxfer take the transferer): Asterisk moves the party
  bridged to it (the caller) to ``Context``/``Exten``. The agent's channel name is not in the live model (it
  knows the agent leg's uniqueid), so it is read from Asterisk's own ``CoreShowChannels`` at the moment of the
  transfer — one list action, and never a stale name.
- Atxfer needs the ``atxfer`` feature code in features.conf (``ccserver asterisk lint`` checks it).
- Click-to-dial: ``Originate`` (Async) with the agent's signed-in interface as ``Channel``: the agent's phone
  rings first; when they answer, the dialplan context dials the customer with the store's DID as caller ID.

Header values go through ccserver/ami/actions.py (CR/LF/NUL refused); the numbers are validated before
(:mod:`ccserver.desktop.targets`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ccserver.ami.errors import AMIConnectionLost, AMIError, AMITimeout
from ccserver.bridge import wait

__all__ = ["AMIDesktopCalls", "CallActionFailed", "DesktopCalls", "channel_matches"]


class CallActionFailed(Exception):
    """Asterisk could not be asked, or refused: ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class DesktopCalls(Protocol):
    async def agent_channel(self, server: str, interface: str, agent_uniqueid: str | None,
                            linkedid: str | None) -> str | None: ...

    async def transfer(self, server: str, kind: str, channel: str, context: str, exten: str) -> None: ...

    async def originate(self, server: str, *, channel: str, context: str, exten: str, caller_id: str,
                        timeout_ms: int, variables: Mapping[str, str],
                        announce: Callable[[str], None] | None = None) -> str:
        """Send an async Originate; ``announce(action_id)`` runs before it is sent. Returns the ActionID."""
        ...


def channel_matches(channel: str, interface: str) -> bool:
    """Whether ``channel`` (``PJSIP/8001-0000000a``, ``Local/8001@agent-phones-00000003;1``) is a channel of the
    member ``interface`` (``PJSIP/8001``, ``Local/8001@agent-phones/n``)."""
    base = interface[:-2] if interface.endswith("/n") else interface
    return channel.startswith(base + "-") and channel[len(base) + 1:] != ""


class AMIDesktopCalls:
    """:class:`DesktopCalls` over :class:`ccserver.ami.manager.AMIManager` (Deferreds awaited on the loop)."""

    def __init__(self, ami: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._ami = ami
        self._loop = loop

    async def _send(self, server: str, action: str, **headers: Any) -> Any:
        if server not in self._ami.clients:
            raise CallActionFailed(f"no Asterisk server named {server!r} is configured", 503)
        loop = self._loop or asyncio.get_running_loop()
        try:
            return await wait(self._ami.send_action(server, action, **headers), loop)
        except AMIError as exc:
            raise CallActionFailed(f"{action} refused by Asterisk {server}: {exc.message}") from None
        except (AMIConnectionLost, AMITimeout) as exc:
            raise CallActionFailed(f"{action}: Asterisk {server} not reachable ({exc})", 503) from None

    async def agent_channel(self, server: str, interface: str, agent_uniqueid: str | None,
                            linkedid: str | None) -> str | None:
        result = await self._send(server, "CoreShowChannels")
        fallback = None
        for item in result.events:
            name = item.get("Channel") or ""
            if agent_uniqueid and item.get("Uniqueid") == agent_uniqueid:
                return name
            if channel_matches(name, interface) and linkedid and item.get("Linkedid") == linkedid:
                fallback = fallback or name
        return fallback

    async def transfer(self, server: str, kind: str, channel: str, context: str, exten: str) -> None:
        action = "BlindTransfer" if kind == "blind" else "Atxfer"
        await self._send(server, action, Channel=channel, Context=context, Exten=exten)

    async def originate(self, server: str, *, channel: str, context: str, exten: str, caller_id: str,
                        timeout_ms: int, variables: Mapping[str, str],
                        announce: Callable[[str], None] | None = None) -> str:
        client = self._ami.clients.get(server)
        if client is None:
            raise CallActionFailed(f"no Asterisk server named {server!r} is configured", 503)
        action_id: str = client.new_originate_id()
        if announce is not None:
            announce(action_id)
        await self._send(server, "Originate", ActionID=action_id, Channel=channel, Context=context, Exten=exten,
                         Priority=1, Timeout=timeout_ms, Async="true",
                         CallerID=caller_id or None, Variable={k: v for k, v in variables.items() if v})
        return action_id
