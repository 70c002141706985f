"""Forced wrap-up: after each answered call of a signed-in agent, a pause with reason ``wrapup`` for
``desktop.wrapup_seconds``, then back to what the agent was before (ready, or their earlier pause).

Why a pause and not app_queue's ``wrapuptime``: the agent ends it early by submitting the call's disposition, and
the time is the same for every queue the agent is in (the shipped queues set ``wrapuptime = 0`` so the two never
add up). Subscribed to the events hub (``CallEnded``); acts only for the Asterisk servers this node leads, so a
cluster pauses an agent once. Timers run on the injectable :class:`~ccserver.clock.Clock`.

If the agent chooses another pause code during wrap-up, that choice stands: the end of wrap-up restores only a
pause whose reason is still ``wrapup``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ccserver.agents import Actor, AgentError
from ccserver.desktop.settings import WRAPUP_REASON

__all__ = ["ForcedWrapUp", "WrapUp"]

log = logging.getLogger("ccserver.desktop.wrapup")
SYSTEM = Actor.system("wrapup")


@dataclass
class WrapUp:
    extension: str
    uniqueid: str
    started: float
    until: float
    was_paused: bool
    was_reason: str
    timer: Any = None  # the Clock's handle (cancel())

    def json(self) -> dict[str, Any]:
        return {"uniqueid": self.uniqueid, "started": self.started, "until": self.until}


class ForcedWrapUp:
    """``agents``: the :class:`~ccserver.agents.AgentService` (pause / unpause / its store's sign-ins, read through
    ``run_blocking``);
    ``seconds``: the wrap-up length (0: none); ``leads(server)``: whether this node consumes that Asterisk."""

    def __init__(self, agents: Any, seconds: float, clock: Any, run_blocking: Callable[..., Any], *,
                 leads: Callable[[str], bool] = lambda _server: True,
                 on_change: Callable[[str, WrapUp | None], None] | None = None) -> None:
        self.agents = agents
        self._run = run_blocking
        self.seconds = seconds
        self.clock = clock
        self.leads = leads
        self.on_change = on_change
        self.active: dict[str, WrapUp] = {}  # extension -> the wrap-up running
        self._ending: set[asyncio.Future[bool]] = set()  # timers that ran out, now restoring the agent

    def subscribe(self, hub: Any) -> Any:
        from ccserver.events import CallEnded

        return hub.subscribe("desktop-wrapup", self._on_calls_ended, kinds=(CallEnded,), batch=True)

    def _wanted(self, event: Any) -> bool:
        return bool(self.seconds > 0 and event.outcome == "answered" and event.interface and self.leads(event.server))

    def _on_calls_ended(self, events: list[Any]) -> Any:
        """The hub's handler (a batch: the calls ended since its last call): a coroutine only when one of them may
        start a wrap-up, and then one query for all of their phones' sign-ins."""
        wanted = [e for e in events if self._wanted(e)]
        return self._start_all(wanted) if wanted else None

    async def _start_all(self, events: list[Any]) -> None:
        rows = await self._run(self.agents.store.active_on_many, [(e.server, e.interface) for e in events])
        for event in events:
            row = rows.get((event.server, event.interface))
            if row is None:
                continue  # not signed in through ccserver (a static member, another tool's agent)
            try:
                await self.start(row.extension, event.uniqueid, row.paused, row.pause_reason or "")
            except Exception:  # noqa: BLE001 - one agent's failure must not cost the others their wrap-up
                log.exception("wrap-up for %s after call %s failed", row.extension, event.uniqueid)

    async def on_call_ended(self, event: Any) -> None:
        if not self._wanted(event):
            return
        row = await self._run(self.agents.store.active_on, event.server, event.interface)
        if row is None:
            return  # not signed in through ccserver (a static member, another tool's agent)
        await self.start(row.extension, event.uniqueid, row.paused, row.pause_reason or "")

    async def start(self, extension: str, uniqueid: str, paused: bool, reason: str) -> WrapUp | None:
        earlier = self.active.pop(extension, None)
        if earlier is not None:  # a second call ended during wrap-up: restart the timer, keep the first "before"
            if earlier.timer is not None:
                earlier.timer.cancel()
            paused, reason = earlier.was_paused, earlier.was_reason
        elif paused and reason == WRAPUP_REASON:
            paused, reason = False, ""  # a wrap-up this process forgot (restart): end it as ready
        try:
            await self.agents.pause(SYSTEM, extension, WRAPUP_REASON)
        except AgentError as exc:
            log.warning("wrap-up for %s not started: %s", extension, exc.message)
            return None
        now = self.clock.time()
        wrap = WrapUp(extension, uniqueid, now, now + self.seconds, paused, reason)
        self.active[extension] = wrap
        wrap.timer = self.clock.call_later(self.seconds, self._due, wrap)
        self._changed(extension, wrap)
        log.info("agent %s in wrap-up for %gs after call %s", extension, self.seconds, uniqueid)
        return wrap

    def _due(self, wrap: WrapUp) -> None:
        """The timer ran out (a Clock callback): restore the agent in a task of its own."""
        if self.active.get(wrap.extension) is not wrap:
            return
        wrap.timer = None  # finishing now: nothing to cancel
        task = asyncio.ensure_future(self.finish(wrap.extension, "timer"))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def settled(self) -> None:
        """Wait until every wrap-up whose timer ran out has restored its agent (tests; shutdown)."""
        while self._ending:
            await asyncio.gather(*list(self._ending), return_exceptions=True)

    async def finish(self, extension: str, why: str = "disposition") -> bool:
        """End ``extension``'s wrap-up now (the timer ran out, or the agent gave the disposition)."""
        wrap = self.active.pop(extension, None)
        if wrap is None:
            return False
        if wrap.timer is not None:
            wrap.timer.cancel()
        self._changed(extension, None)
        row = await self._run(self.agents.store.active, extension)
        if row is None or not row.paused or (row.pause_reason or "") != WRAPUP_REASON:
            return True  # signed out, or the agent chose another pause meanwhile: that stands
        try:
            if wrap.was_paused and wrap.was_reason:
                await self.agents.pause(SYSTEM, extension, wrap.was_reason)
            else:
                await self.agents.unpause(SYSTEM, extension)
        except AgentError as exc:
            log.warning("end of wrap-up for %s: %s", extension, exc.message)
        log.info("agent %s: wrap-up ended (%s)", extension, why)
        return True

    def current(self, extension: str) -> WrapUp | None:
        return self.active.get(extension)

    def _changed(self, extension: str, wrap: WrapUp | None) -> None:
        if self.on_change is not None:
            self.on_change(extension, wrap)

    async def stop(self) -> None:
        for wrap in list(self.active.values()):
            if wrap.timer is not None:
                wrap.timer.cancel()
