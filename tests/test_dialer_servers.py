"""Several Asterisk servers: the dialer spreads its Originates round robin over the connected ones (or a store's
pinned servers), counts free agents over them, and reconciles each server's Originates of unknown outcome against
that server's own channels after its reconnect. Two AMI replay peers (ami-originate-results), ManualClock, SQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from ccserver.campaigns.settings import CampaignSettings, CampaignSettingsError
from ccserver.clock import ManualClock
from ccserver.db.models import CampaignAttempt
from ccserver.dialer.engine import AmiOriginator, Dialer
from ccserver.dialer.leases import MemoryContactLeases
from ccserver.dialer.store import DialerStore
from ccserver.events import EventHub
from ccserver.events.types import Resynced
from ccserver.state import StateTracker
from tests.dialer_support import MORNING, campaign, database, inline, turns
from tests.test_ami_client import Net
from tests.test_dialer import outcomes

NUMBERS = ["+8613811112222", "+8613900000001", "+8613911111111", "+8613911111112"]


class Manager:
    """ccserver.ami.manager.AMIManager's shape over several replayed clients."""

    def __init__(self, clients: dict[str, Any]) -> None:
        self.clients = clients

    def originate(self, server: str, channel: str, **kwargs: Any) -> Any:
        return self.clients[server].originate(channel, **kwargs)


def two_servers(sessions: Any, clock: ManualClock, *, free: int = 4, settings: CampaignSettings | None = None,
                floors: dict[str, int] | None = None) -> tuple[Dialer, Net, EventHub, dict[str, Any]]:
    hub = EventHub()
    tracker = StateTracker(publish=hub.publish, clock=clock.time)
    net = Net("ami-originate-results")
    net.listen("ami-originate-results", 5039)
    clients = {}
    for name, port in (("pbx1", 5038), ("pbx2", 5039)):
        client = net.client(name, port=port)
        client.on_any(lambda msg: tracker.handle(msg, msg.arrival))
        client.start()
        net.accept()
        clients[name] = client
    asked: list[str] = []

    def floor(queue: str, server: str, now: float) -> tuple[int, list[float]]:
        asked.append(server)
        return ((floors or {}).get(server, free // 2), [])

    dialer = Dialer(DialerStore(sessions), AmiOriginator(Manager(clients)), MemoryContactLeases(clock.monotonic),
                    run_blocking=inline, clock=clock, tracker=tracker, default_zone="Asia/Shanghai", floor=floor,
                    servers=["pbx1", "pbx2"], settings=settings)
    dialer.subscribe(hub)
    return dialer, net, hub, {"clients": clients, "asked": asked}


def originates(net: Net, port: int) -> list[Any]:
    return [a for a in net.peers[port].actions if a.get("Action") == "Originate"]


EIGHT = [f"+86139{n:08d}" for n in range(11, 19)]


def test_originates_spread_round_robin_over_the_connected_servers(sqlite_url: str) -> None:
    sessions = database(sqlite_url)
    _cid, targets = campaign(sessions, EIGHT)

    async def run() -> tuple[Any, ...]:
        clock = ManualClock(MORNING)
        dialer, net, hub, extra = two_servers(sessions, clock, free=8)
        hub.start()
        sent = await dialer.tick()
        net.flush()
        await turns()
        await dialer.drain()
        await hub.stop(1.0)
        return sent, net, dialer, extra

    sent, net, dialer, extra = asyncio.run(run())
    assert sent == 8 and sorted(set(extra["asked"])) == ["pbx1", "pbx2"]  # free agents counted on both
    one, two = originates(net, 5038), originates(net, 5039)
    assert [a["Channel"] for a in one] == [f"Local/{n}@ccserver-outbound" for n in EIGHT[0::2]]
    assert [a["Channel"] for a in two] == [f"Local/{n}@ccserver-outbound" for n in EIGHT[1::2]]
    with sessions() as s:
        servers = {a.action_id: a.server for a in s.scalars(select(CampaignAttempt))}
    assert {servers[a["ActionID"]] for a in one} == {"pbx1"} and {servers[a["ActionID"]] for a in two} == {"pbx2"}
    # each peer answered its Originates as recorded (answered → agent, busy, no answer, failed): every outcome
    # settled from its own server's events
    recorded = ["reached", "busy", "no_answer", "failed"]
    assert dict(outcomes(sessions)) == {**dict(zip(targets[0::2], recorded, strict=True)),
                                        **dict(zip(targets[1::2], recorded, strict=True))}
    assert dialer.live == {}


def test_a_disconnected_server_gets_no_originates(sqlite_url: str) -> None:
    sessions = database(sqlite_url)
    campaign(sessions, EIGHT)

    async def run() -> tuple[list[Any], list[Any], bool]:
        clock = ManualClock(MORNING)
        dialer, net, hub, extra = two_servers(sessions, clock, floors={"pbx1": 2, "pbx2": 2})
        net.peers[5039].connections[0].transport.loseConnection()
        net.flush()
        up = extra["clients"]["pbx2"].connected
        assert await dialer.tick() == 4
        net.flush()
        await turns()
        return originates(net, 5038), originates(net, 5039), up

    one, two, up = asyncio.run(run())
    assert not up and len(one) == 4 and two == []  # pbx2 is down: every line goes to pbx1


def test_a_store_pinned_to_a_server_dials_there_with_that_servers_agents(sqlite_url: str) -> None:
    sessions = database(sqlite_url)
    campaign(sessions, EIGHT)
    pinned = replace(CampaignSettings(), store_servers={"sh-volvo": ("pbx2",)})

    async def run() -> tuple[list[Any], list[Any], list[str]]:
        clock = ManualClock(MORNING)
        dialer, net, hub, extra = two_servers(sessions, clock, settings=pinned, floors={"pbx1": 4, "pbx2": 1})
        assert await dialer.tick() == 1
        net.flush()
        await turns()
        return originates(net, 5038), originates(net, 5039), extra["asked"]

    one, two, asked = asyncio.run(run())
    assert one == [] and len(two) == 1 and set(asked) == {"pbx2"}  # its store's server, its agents only


def test_each_server_reconciles_its_own_originates_after_its_reconnect(sqlite_url: str) -> None:
    sessions = database(sqlite_url)
    _cid, targets = campaign(sessions, NUMBERS[:2])

    async def run() -> tuple[Any, ...]:
        clock = ManualClock(MORNING)
        dialer, net, hub, _extra = two_servers(sessions, clock, free=2)
        for port in (5038, 5039):
            net.peers[port].silent = True  # both take the Originate and answer nothing…
        hub.start()
        assert await dialer.tick() == 2
        net.flush()
        for port in (5038, 5039):
            net.peers[port].connections[0].transport.loseConnection()  # …and both connections drop
        net.flush()
        await turns()
        by_server = {v.server: v for v in dialer.live.values()}
        assert set(by_server) == {"pbx1", "pbx2"} and all(v.unknown for v in by_server.values())
        # pbx1 comes back first; its channels show no call: only pbx1's Originate ends (failed). The call of
        # pbx2's number on pbx1's list (a stale or foreign channel) must not settle pbx2's.
        hub.publish(Resynced("pbx1", 10, clock.time(), ({
            "uniqueid": "1795416969.90", "campaign_id": str(by_server["pbx2"].campaign_id),
            "dialed_number": "13900000001", "answered_at": None, "up": False},), (), (), False))
        await turns()
        await dialer.flush()
        after_one = outcomes(sessions)
        # pbx2 comes back: its call is alive there → adopted, not failed, never re-sent.
        hub.publish(Resynced("pbx2", 11, clock.time(), ({
            "uniqueid": "1795416969.91", "campaign_id": str(by_server["pbx2"].campaign_id),
            "dialed_number": "13900000001", "answered_at": clock.time(), "up": True},), (), (), False))
        await turns()
        await dialer.flush()
        await hub.stop(1.0)
        return after_one, net, dialer

    after_one, net, dialer = asyncio.run(run())
    assert after_one == [(targets[0], "failed"), (targets[1], None)]
    assert outcomes(sessions) == [(targets[0], "failed"), (targets[1], None)]
    assert [(v.server, v.uniqueid) for v in dialer.live.values()] == [("pbx2", "1795416969.91")]
    assert len(originates(net, 5038)) == len(originates(net, 5039)) == 1  # never re-sent


def test_unknown_servers_in_the_settings_are_refused() -> None:
    settings = CampaignSettings.from_dict({"servers": ["pbx1", "pbx9"], "store_servers": {"sh-volvo": "pbx3"}})
    assert settings.servers == ("pbx1", "pbx9") and settings.store_servers == {"sh-volvo": ("pbx3",)}
    with pytest.raises(CampaignSettingsError, match="pbx3.*pbx9|pbx9"):
        settings.check_servers(["pbx1", "pbx2"])
    with pytest.raises(CampaignSettingsError):
        CampaignSettings.from_dict({"store_servers": ["pbx1"]})
