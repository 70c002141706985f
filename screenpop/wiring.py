"""Builds the screen-pop component for ``ccserver run`` (and for tests that want the real thing in-process)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from screenpop.agents_map import AgentDirectory, load_agent_map
from screenpop.bus import MemoryBus, RedisBus
from screenpop.cards import CardCache, load_card_data, names_of
from screenpop.lifecycle import ScreenPop
from screenpop.service import ScreenPopService
from screenpop.ws_server import WsServer
from screenpop.ws_tickets import Grant, MemoryTickets, RedisTickets

log = logging.getLogger("ccserver.screenpop")

# When the call's decision was answered on another node, its logged row is read: the log is written behind
# (about once a second), so a row not there yet is read again after these pauses.
IVR_RETRY_DELAYS = (0.0, 0.6, 1.2)


def refused_user_ids(session_factory: Callable[[], Any], ids: set[int]) -> dict[int, str]:
    """Which of ``ids`` may no longer hold a socket, and why: ``deactivated`` (inactive or deleted) or
    ``password_change`` (an admin forced a new password). Blocking: the thread pool."""
    from sqlalchemy import select

    from ccserver.db.models import User

    with session_factory() as s:
        rows = s.execute(select(User.id, User.active, User.must_change_password)
                         .where(User.id.in_(sorted(ids)))).all()
    found = {int(row[0]): (bool(row[1]), bool(row[2])) for row in rows}
    refused: dict[int, str] = {}
    for user_id in ids:
        active, must_change = found.get(user_id, (False, False))
        if not active:
            refused[user_id] = "deactivated"
        elif must_change:
            refused[user_id] = "password_change"
    return refused


def ivr_lookup(memo: Any, load: Callable[[str], Awaitable[tuple[str, str] | None]],
               delays: tuple[float, ...] = IVR_RETRY_DELAYS) -> Callable[[str], Awaitable[str | None]]:
    """``decision id -> IVR path`` (None: none, or not found in time): this node's memo of the decisions it
    answered, else ``load`` (the decision log row; None while unwritten)."""

    async def ivr_of(decision_id: str) -> str | None:
        hit = memo.get(decision_id) if memo is not None else None
        if hit is not None:
            return str(hit[0]) or None
        try:
            for delay in delays:
                if delay:
                    await asyncio.sleep(delay)
                found = await load(decision_id)
                if found is not None:
                    return found[0] or None
        except Exception as exc:  # noqa: BLE001 - the card shows without the path rather than fail
            log.warning("screen pop: IVR path of a decision not read (%s)", type(exc).__name__)
        return None

    return ivr_of


def build_screenpop(config: Any, *, sessions: Any, run_blocking: Callable[..., Awaitable[Any]], users: Any,
                    redis: Any = None, hub: Any = None, leads: Callable[[str], bool] | None = None,
                    identification: Any = None, now: Callable[[], float] = time.time,
                    ws_host: str | None = None, ws_port: int | None = None,
                    decision_memo: Any = None) -> ScreenPopService:
    """``hub``/``leads``: the call-events hub and "does this node publish for that Asterisk" (None: no pops,
    only the listener). ``identification``: the identification service
    (``ccserver.identification.IdentificationService``), to find a caller by number when the call carries no
    ``CC_CUSTOMER_ID`` — its ``find``: cache, then SQL, within a deadline, no call counted. ``ccserver run`` gives
    it one of its own (own loop-lookup connections, not the routed calls'); the screen pop service closes it.
    ``decision_memo``: the IVR paths of the decisions this node answered
    (``ccserver.callrouting.decision_memo.DecisionMemo``)."""
    ws_conf = config.ws
    tickets: Any = RedisTickets(redis, now) if redis is not None else MemoryTickets(now)

    async def audit(action: str, grant: Grant | None, ip: str, detail: dict[str, Any]) -> None:
        await run_blocking(users.audit, action, grant.user_id if grant else None, grant.username if grant else "",
                           ip, detail)

    ws = WsServer(tickets, host=ws_host if ws_host is not None else ws_conf.listen.host,
                  port=ws_port if ws_port is not None else ws_conf.listen.port, public_url=ws_conf.public_url,
                  allowed_origins=ws_conf.allowed_origins, audit=audit)
    ws.users_refused = lambda ids: run_blocking(refused_user_ids, sessions, ids)
    replay = config.screenpop.replay_frames
    bus: Any = RedisBus(redis, replay) if redis is not None else MemoryBus(replay)
    pop = None
    if hub is not None:

        async def identify(raw: str) -> tuple[int | None, list[tuple[str, str]]]:
            if identification is None:
                return None, []
            identified = await identification.find(raw, context="screen-pop")
            found = identified.customer
            cid = int(found.id) if found is not None and str(found.id).isdigit() else None
            others = list(identified.others)
            # Most numbers belong to one customer: no second trip to a worker thread for nobody's names.
            variants = await run_blocking(names_of, sessions, others) if others else []
            return cid, variants

        from ccserver.callrouting.decision_memo import load_ivr_of

        ivr_of = ivr_lookup(decision_memo, lambda decision_id: run_blocking(load_ivr_of, sessions, decision_id))
        cards = CardCache(lambda cid: run_blocking(load_card_data, sessions, cid), identify, now=now, ivr_of=ivr_of)
        agents = AgentDirectory(lambda: run_blocking(load_agent_map, sessions), now=now)
        tz = ZoneInfo(config.server.time_zone)
        pop = ScreenPop(bus, agents, cards, leads=leads or (lambda _server: True),
                        mask_roles=config.screenpop.mask_roles, today=lambda: datetime.now(tz).date())
    service = ScreenPopService(ws, bus, pop, hub)
    if identification is not None:
        service.closers.append(identification.aclose)
    return service
