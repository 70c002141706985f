"""In-process screen pop for tests: the real lifecycle, bus and websocket listener on the test's loop, fed by the
state tracker replaying a recorded AMI transcript (tests/data/asterisk), with cards and agents from plain data."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from ccserver.ami.message import AMIMessage
from ccserver.clock import ManualClock
from ccserver.events import EventHub
from ccserver.state import StateTracker
from screenpop.agents_map import AgentDirectory, AgentRef
from screenpop.bus import MemoryBus
from screenpop.cards import CardCache
from screenpop.lifecycle import ScreenPop
from screenpop.service import ScreenPopService
from screenpop.ws_server import WsServer
from screenpop.ws_tickets import MemoryTickets
from tests.test_state_support import timed_messages

ORIGIN = "http://desk.example"
AGENTS = {
    ("default", "Local/8009@agent-phones/n"): AgentRef(9, "agent8009", "8009", "agent"),
    ("default", "Local/8003@agent-phones/n"): AgentRef(3, "agent8003", "8003", "agent"),
    ("default", "Local/8001@agent-phones/n"): AgentRef(1, "agent8001", "8001", "agent"),
}


class Audits:
    def __init__(self) -> None:
        self.rows: list[tuple[str, Any, str, dict[str, Any]]] = []

    async def __call__(self, action: str, grant: Any, ip: str, detail: dict[str, Any]) -> None:
        self.rows.append((action, grant, ip, detail))


def make_service(*, clock: ManualClock | None = None, bus: Any = None, tickets: Any = None,
                 cards: dict[int, dict[str, Any]] | None = None, mask_roles: tuple[str, ...] = (),
                 leads: Any = None, hub: EventHub | None = None, ivr_of: Any = None) -> tuple[ScreenPopService, Audits]:
    clock = clock or ManualClock()
    audits = Audits()
    data = cards or {}

    async def load(cid: int) -> dict[str, Any] | None:
        return data.get(cid)

    async def identify(raw: str) -> tuple[int | None, list[tuple[str, str]]]:
        return (next(iter(data)) if data else None), []

    agents = AgentDirectory(_static_map, now=clock.time)
    card_cache = CardCache(load, identify, now=clock.time, ivr_of=ivr_of)
    bus = bus if bus is not None else MemoryBus()
    pop = ScreenPop(bus, agents, card_cache, leads=leads or (lambda _s: True), mask_roles=mask_roles)
    ws = WsServer(tickets or MemoryTickets(clock.time), host="127.0.0.1", port=0, allowed_origins=[ORIGIN],
                  audit=audits, clock=clock.time)
    return ScreenPopService(ws, bus, pop, hub if hub is not None else EventHub()), audits


async def _static_map() -> dict[tuple[str | None, str], AgentRef]:
    return dict(AGENTS)


async def open_agent(service: ScreenPopService, user_id: int, username: str, *, last_seq: int | None = None,
                     origin: str | None = ORIGIN) -> Any:
    ticket, _grant = await service.tickets.issue(user_id, username, "agent", "agent", f"s{user_id}")
    url = service.ws.url_for(service.ws.kinds["agent"], ticket) + (f"&last_seq={last_seq}" if last_seq is not None
                                                                    else "")
    return await websockets.connect(url, origin=origin)  # type: ignore[arg-type]


async def frames(ws: Any, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        out.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    return out


def feed(hub: EventHub, transcript: str, *, replace: tuple[str, str] | None = None, stop: Any = None) -> None:
    """Play a recorded transcript's messages through a state tracker publishing on ``hub``."""
    tracker = StateTracker(publish=hub.publish)
    for msg, arrival in timed_messages(transcript):
        if stop is not None and stop(msg):
            return
        if replace is not None:
            msg = AMIMessage([(k, v.replace(*replace)) for k, v in msg.items()], server=msg.server,
                             arrival=msg.arrival)
        tracker.handle(msg, arrival)


async def call_frames(ws: Any, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The next ``count`` frames about calls (agent_state frames skipped)."""
    out: list[dict[str, Any]] = []
    while len(out) < count:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] != "agent_state":
            out.append(frame)
    return out
