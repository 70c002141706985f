"""Two nodes sharing Redis: node A leads the Asterisk and publishes the pop, the agent's socket is on node B; a
ticket issued by one node opens a socket on the other; a reconnect to the other node resumes by seq."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ccserver.clock import ManualClock
from ccserver.events import EventHub
from screenpop.bus import RedisBus
from screenpop.ws_tickets import RedisTickets
from tests.screenpop_support import call_frames, feed, frames, make_service, open_agent

CUSTOMER = {7: {"id": 7, "name": "王芳", "tier": "gold", "lifecycle": "customer"}}


def test_a_pop_crosses_nodes_through_redis(redis_url: str) -> None:
    import redis.asyncio as aioredis

    async def main() -> None:
        clock = ManualClock()
        clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
        hubs = [EventHub(), EventHub()]
        nodes: list[Any] = []
        for i, (client, hub) in enumerate(zip(clients, hubs, strict=True)):
            service, _audits = make_service(clock=clock, hub=hub, cards=CUSTOMER, bus=RedisBus(client),
                                            tickets=RedisTickets(client, clock.time), leads=lambda _s, i=i: i == 0)
            hub.start()
            await service.start()
            nodes.append(service)
        a, b = nodes
        try:
            # Issued on A, redeemed on B: the socket sits on node B.
            ticket, _ = await a.tickets.issue(9, "agent8009", "agent", "agent", "s9")
            import websockets

            from tests.screenpop_support import ORIGIN

            ws = await websockets.connect(b.ws.url_for(b.ws.kinds["agent"], ticket), origin=ORIGIN)
            assert (await frames(ws, 1))[0]["type"] == "hello"
            other = await open_agent(a, 3, "agent8003")  # agent 8003 on node A
            await frames(other, 1)
            # Both nodes see the call (relayed); only A leads that Asterisk and publishes.
            for hub in hubs:
                feed(hub, "ami-inbound-ivr-ringnoanswer-then-answered")
            pop, retract = await call_frames(ws, 2)
            assert pop["type"] == "pop" and pop["customer"]["name"] == "王芳" and retract["reason"] == "no_answer"
            assert [f["type"] for f in await call_frames(other, 3)] == ["pop", "update", "retract"]
            last = pop["seq"]
            await ws.close()
            # Reconnect to the other node with last_seq: the missed frames, once.
            again = await open_agent(a, 9, "agent8009", last_seq=last)
            resumed = (await frames(again, 1))[0]
            assert resumed["seq"] == last + 1
            await again.close()
            await other.close()
        finally:
            for service in nodes:
                await service.stop()
            for hub in hubs:
                await hub.stop(1.0)
            for client in clients:
                await client.aclose()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_pop_crosses_from_the_leading_node_to_a_follower_through_the_relay(redis_url: str) -> None:
    """The real several-nodes wiring (tests/relay_support.py): node a holds the AMI lease and consumes the recorded
    call; node b follows through the relay. Each runs screen pop on its own hub, publishing for the servers it
    leads. The agent's socket is on the follower: the pop reaches it once."""
    import redis.asyncio as aioredis

    from tests.relay_support import Node, run, until
    from tests.test_state_support import timed_messages

    async def main() -> None:
        redis = aioredis.Redis.from_url(redis_url)
        a, b = Node(redis, "a"), Node(redis, "b")
        a.telephony.start()
        await until(a.leads, what="a leads")
        b.telephony.start()
        await until(lambda: b.follower.rebuilt >= 1 and a.relayed_to(b), what="b follows a")
        clock = ManualClock()
        services = []
        for node in (a, b):
            service, _audits = make_service(clock=clock, hub=node.telephony.hub, cards=CUSTOMER,
                                            bus=RedisBus(aioredis.Redis.from_url(redis_url)),
                                            tickets=RedisTickets(redis, clock.time),
                                            leads=node.telephony.leading.__contains__)
            await service.start()
            services.append(service)
        try:
            on_b = await open_agent(services[1], 9, "agent8009")
            assert (await frames(on_b, 1))[0]["type"] == "hello"
            a.ami(timed_messages("ami-inbound-ivr-ringnoanswer-then-answered"))
            await until(lambda: a.relayed_to(b), what="b applied the call")
            pop, retract = await call_frames(on_b, 2)
            assert pop["type"] == "pop" and pop["call"]["uniqueid"] == "1795416928.4"
            assert retract["reason"] == "no_answer" and retract["seq"] > pop["seq"]
            with pytest.raises(TimeoutError):
                await call_frames(on_b, 1, timeout=0.3)  # the follower published nothing of its own
            await on_b.close()
        finally:
            for service in services:
                await service.stop()
                await service.bus.redis.aclose()
            for node in (a, b):
                await node.stop()
            await redis.aclose()

    run(main)
