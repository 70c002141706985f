"""The Asterisk link state the pages show (ccserver/ami/link.py): none configured, down since when, back up — from a
real AMIClient against the replay peer on a memory reactor — and where it travels: the wallboard snapshot,
/api/queues (supervisor console), /api/desktop/state is covered in test_desktop_api, /api/campaigns in
test_campaigns_api."""

from __future__ import annotations

import asyncio
import functools
from types import SimpleNamespace
from typing import Any

from ccserver.ami.client import AMIServerConfig
from ccserver.ami.link import asterisk_status
from ccserver.ami.manager import AMIManager
from ccserver.clock import ManualClock
from ccserver.config import load_config
from ccserver.kpi.views import LiveViews
from ccserver.state.tracker import StateTracker
from ccserver.wallboard import WallboardSource
from tests.test_ami_client import SECRET, Net
from tests.web_support import call, router_with_logins

NONE: dict[str, Any] = {"configured": False, "connected": False, "down_since": None, "servers": []}


def _telephony(net: Net, *, relay: Any = None) -> Any:
    """What asterisk_status reads of ccserver.telephony.Telephony: its AMI manager, the servers it leads, its relay."""
    ami = AMIManager({"default": AMIServerConfig(port=5038, auth="plain", secret=SECRET)}, reactor=net.reactor)
    return SimpleNamespace(ami=ami, leading={"default"} if relay is None else set(), relay=relay)


def _drop(net: Net) -> None:
    """Asterisk's side closes the connection (as a restart or a network cut would)."""
    transport: Any = net.peer.connections[0].transport
    transport.loseConnection()
    net.flush()


def _inline(fn: Any, *args: Any, **kwargs: Any) -> Any:
    async def run() -> Any:
        return fn(*args, **kwargs)

    return run()


def test_no_asterisk_configured() -> None:
    assert asterisk_status(None) == NONE


def test_the_link_drops_says_since_when_and_comes_back() -> None:
    net = Net("ami-inbound-vip-answered", repeat_last=True)
    net.reactor.advance(1_795_000_000.0)
    telephony = _telephony(net)
    telephony.ami.start()
    # Started, not logged in yet: down since the first attempt.
    assert asterisk_status(telephony) == {
        "configured": True, "connected": False, "down_since": 1_795_000_000.0,
        "servers": [{"server": "default", "state": "disconnected", "since": 1_795_000_000.0}]}
    net.accept()  # logged in
    client = telephony.ami.client("default")
    assert client.connected and asterisk_status(telephony)["connected"] is True
    net.reactor.advance(2.0)
    _drop(net)  # the link drops
    assert not client.connected
    dropped = asterisk_status(telephony)
    assert dropped["connected"] is False and dropped["down_since"] == 1_795_000_002.0
    assert dropped["servers"] == [{"server": "default", "state": "disconnected", "since": 1_795_000_002.0}]
    (retry,) = [c for c in net.reactor.getDelayedCalls() if c.func == client._connect]
    at: float = retry.getTime()  # type: ignore[misc]
    net.reactor.advance(at - net.reactor.seconds())
    net.accept()
    assert client.connected
    assert asterisk_status(telephony) == {"configured": True, "connected": True, "down_since": None,
                                          "servers": [{"server": "default", "state": "connected", "since": None}]}


def test_a_follower_node_does_not_claim_the_link_is_down() -> None:
    telephony = _telephony(Net(), relay=object())  # another node holds the lease and consumes this AMI
    assert asterisk_status(telephony)["servers"] == [{"server": "default", "state": "following", "since": None}]
    assert asterisk_status(telephony)["connected"] is True


def test_the_wallboard_snapshot_carries_the_link() -> None:
    config = load_config(environ={})
    link = {"configured": True, "connected": False, "down_since": 5.0,
            "servers": [{"server": "default", "state": "disconnected", "since": 5.0}]}
    states = [link]
    source = WallboardSource(LiveViews(None, StateTracker(), None, _inline, config), None, _inline, "Asia/Shanghai",
                             target=80.0, vip_tiers=(), clock=ManualClock(1_795_000_000.0), link=lambda: states[-1])
    assert asyncio.run(source.build(1))["asterisk_link"] == link
    states.append({**link, "connected": True, "down_since": None})
    assert asyncio.run(source.build(2))["asterisk_link"]["connected"] is True  # the next update says it is back
    plain = WallboardSource(LiveViews(None, None, None, _inline, config), None, _inline, "Asia/Shanghai",
                            target=80.0, vip_tiers=(), clock=ManualClock(1_795_000_000.0))
    assert asyncio.run(plain.build(1))["asterisk_link"] == NONE


def test_api_queues_says_so_to_supervisors_only() -> None:
    router, ctx, logins = router_with_logins(("agent8001", "agent", "pw-agent-1"), ("boss", "supervisor", "pw-boss-1"))
    boss = logins["boss"]
    answer = call(router, "GET", "/api/queues", headers=boss)
    assert answer.status == 200 and answer.json()["asterisk_link"] == NONE
    net = Net("ami-inbound-vip-answered", repeat_last=True)
    telephony = _telephony(net)
    ctx.asterisk = functools.partial(asterisk_status, telephony)
    telephony.ami.start()
    net.accept()
    assert call(router, "GET", "/api/queues", headers=boss).json()["asterisk_link"]["connected"] is True
    net.reactor.advance(3.0)
    _drop(net)
    shown = call(router, "GET", "/api/queues", headers=boss).json()["asterisk_link"]
    assert shown["configured"] and not shown["connected"] and shown["down_since"] == 3.0
    assert call(router, "GET", "/api/queues", headers=logins["agent8001"]).status == 403
