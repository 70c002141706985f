"""What the pages say about the Asterisk link: none configured, connected, or down since when.

One small JSON object, ``asterisk_link``, added to what the wallboard, the supervisor console, the agent desktop and the
campaign page already fetch (``/api/wallboard``, ``/api/queues``, ``/api/desktop/state``, ``/api/campaigns``), so a
newcomer without an Asterisk, or a supervisor whose AMI link dropped, reads why the figures are empty or stale:

``{"configured": false, "connected": false, "servers": []}`` — no ``ami.host`` / ``ami.servers``;
``{"configured": true, "connected": bool, "down_since": epoch | null, "servers": [{"server", "state", "since"}]}``
where ``state`` is ``connected``, ``disconnected`` (``since``: when the link was lost, or the first attempt) or
``following`` (another cluster node consumes that server's AMI; this node reads its relay and cannot tell).
"""

from __future__ import annotations

from typing import Any

NOT_CONFIGURED: dict[str, Any] = {"configured": False, "connected": False, "down_since": None, "servers": []}


def asterisk_status(telephony: Any) -> dict[str, Any]:
    """The link state of every configured Asterisk as this node sees it (``telephony``: ccserver.telephony
    Telephony, or None when no Asterisk is configured). ``since`` is in the reactor's seconds (epoch in the
    server)."""
    if telephony is None:
        return dict(NOT_CONFIGURED)
    servers = []
    for name, client in telephony.ami.clients.items():
        if name not in telephony.leading and telephony.relay is not None:
            servers.append({"server": name, "state": "following", "since": None})
        elif client.connected:
            servers.append({"server": name, "state": "connected", "since": None})
        else:
            servers.append({"server": name, "state": "disconnected", "since": client.down_since})
    down = [s["since"] for s in servers if s["state"] == "disconnected"]
    known = [s for s in down if s is not None]
    return {"configured": True, "connected": not down, "down_since": min(known) if known else None,
            "servers": servers}
