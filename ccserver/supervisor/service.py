"""Supervisor actions, role-checked and audited; the HTTP API calls these.

- :meth:`SupervisorService.spy` — listen / whisper / barge on the call of the agent signed in with an extension:
  the supervisor's phone is rung (AMI Originate, :mod:`.spy`) and, answered, spies on the agent's channel.
- :meth:`force_pause` / :meth:`force_logout` — through the agents service (which audits ``agent.pause`` /
  ``agent.logout`` with the supervisor as actor), refused here first to anyone who does not supervise.
- :meth:`change_priority` — a waiting caller's priority (AMI QueueChangePriorityCaller), from live state.

Every refusal is an :class:`ccserver.agents.AgentError` (status + message), as the agents service raises.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from ccserver.agents import Actor, AgentError, AgentService
from ccserver.agents.service import INTERFACE
from ccserver.logs import exception_summary, log_pii_enabled
from ccserver.supervisor.ami import SupervisorActionFailed, SupervisorAMI
from ccserver.supervisor.spy import SPY_OPTIONS, SpyError, originate_headers
from ccserver.texts import RoleName, T, message_of

log = logging.getLogger("ccserver.supervisor")

UNIQUEID = re.compile(r"^[0-9]{1,20}\.[0-9]{1,10}$")
MAX_PRIORITY = 1000
ON_A_CALL = ("talking",)
WAITING = ("queued", "ringing")


class SupervisorService:
    def __init__(self, agents: AgentService, ami: SupervisorAMI, *, run_blocking: Callable[..., Awaitable[Any]],
                 tracker: Any = None, originate_timeout: int = 30) -> None:
        self.agents = agents
        self.ami = ami
        self._run = run_blocking
        self.tracker = tracker
        self.originate_timeout = originate_timeout

    @staticmethod
    def _require(actor: Actor) -> None:
        if not actor.supervises:
            raise AgentError(403, T("role {role} may not do supervisor actions", role=RoleName(actor.role)))

    async def spy(self, actor: Actor, extension: object, mode: object, phone: object = None) -> dict[str, Any]:
        """Ring the supervisor's phone (``phone``, else their user's own) into ChanSpy on the agent's call."""
        self._require(actor)
        if not isinstance(mode, str) or mode not in SPY_OPTIONS:
            raise AgentError(400, T("mode must be one of {modes}", modes=', '.join(SPY_OPTIONS)),
                             field="mode")
        if not isinstance(extension, str):
            raise AgentError(400, T("agent must be an extension"), field="agent")
        store = self.agents.store
        target = await self.agents._target(actor, extension)  # noqa: SLF001 - the same checks as every agent action
        row = await self._run(store.active, extension)
        interface = row.interface if row is not None else target.interface
        server = row.server if row is not None else self.agents.default_server
        if not interface:
            raise AgentError(409, T("extension {extension} is not signed in and has no phone", extension=extension))
        state = self.tracker.agents.get((server, interface)) if self.tracker is not None else None
        if state is None or state.state not in ON_A_CALL or not state.current_call:
            raise AgentError(409, T("agent {extension} is not on a call", extension=extension), field="agent")
        if phone is None:
            me = await self._run(store.user_by_id, actor.user_id) if actor.user_id is not None else None
            phone = me.interface if me is not None else None
            if not phone:
                raise AgentError(409, T("your user has no phone on record; pass phone (e.g. PJSIP/8100)"),
                                 field="phone")
        if not isinstance(phone, str) or not INTERFACE.match(phone):
            raise AgentError(400, T("phone must be an Asterisk interface such as PJSIP/8100"), field="phone")
        if phone == interface:
            raise AgentError(400, T("phone is the agent's own phone"), field="phone")
        try:
            headers = originate_headers(mode, supervisor_phone=phone, agent_interface=interface,
                                        agent_extension=extension, supervisor=actor.username,
                                        timeout_seconds=self.originate_timeout)
        except SpyError as exc:
            raise AgentError(400, message_of(exc)) from None
        if not self.ami.connected(server):
            raise AgentError(503, T("Asterisk {server} is not connected; try again shortly", server=server))
        tracker = self.tracker

        def announce(action_id: str) -> None:  # the spy leg is recorded as an internal call, not a caller
            if tracker is not None:
                tracker.expect_originate(action_id, server=server, direction="internal")

        try:
            await self.ami.originate(server, headers, announce)
        except SupervisorActionFailed as exc:
            raise AgentError(502 if exc.refused else 503, message_of(exc)) from None
        detail = {"mode": mode, "phone": phone, "interface": interface, "server": server,
                  "call": state.current_call}
        await self._audit(actor, f"supervisor.{mode}", f"extension:{extension}", detail)
        log.info("%s: %s on agent %s from %s", actor.username, mode, extension, phone)
        return {"agent": extension, "mode": mode, "phone": phone, "call": state.current_call, "status": "ringing"}

    async def force_pause(self, actor: Actor, extension: str, reason: object) -> dict[str, Any]:
        self._require(actor)
        return await self.agents.pause(actor, extension, reason if reason is not None else "supervisor")

    async def force_logout(self, actor: Actor, extension: str) -> dict[str, Any]:
        self._require(actor)
        return await self.agents.logout(actor, extension, reason=f"signed out by {actor.username}")

    async def change_priority(self, actor: Actor, uniqueid: str, priority: object) -> dict[str, Any]:
        """Give a waiting caller ``priority`` in their queue (higher is served first)."""
        self._require(actor)
        if not UNIQUEID.match(uniqueid):
            raise AgentError(400, T("uniqueid must look like 1795416921.0"), field="uniqueid")
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
            raise AgentError(400, T("priority must be a whole number 0-{max_priority}", max_priority=MAX_PRIORITY),
                             field="priority")
        call = None
        if self.tracker is not None:
            call = next((c for (_srv, uid), c in list(self.tracker.calls.items()) if uid == uniqueid), None)
        if call is None or call.state not in WAITING or not call.queue or not call.channel:
            raise AgentError(409, T("call {uniqueid} is not waiting in a queue", uniqueid=uniqueid))
        if not self.ami.connected(call.server):
            raise AgentError(503, T("Asterisk {server} is not connected; try again shortly", server=call.server))
        try:
            await self.ami.change_priority(call.server, call.queue, call.channel, priority)
        except SupervisorActionFailed as exc:
            raise AgentError(409 if exc.refused else 503, message_of(exc)) from None
        await self._audit(actor, "supervisor.priority", f"call:{uniqueid}",
                          {"queue": call.queue, "from": call.priority, "to": priority, "server": call.server})
        return {"uniqueid": uniqueid, "queue": call.queue, "priority": priority, "previous": call.priority}

    async def _audit(self, actor: Actor, action: str, target: str, detail: dict[str, Any]) -> None:
        try:
            await self._run(self.agents.store.audit, action, actor.user_id, actor.username, target, detail, actor.ip)
        except Exception as exc:  # noqa: BLE001 - the action happened; a lost audit row is logged, not raised
            log.error("audit of %s for %s not written: %s", action, target,
                      exception_summary(exc, log_pii_enabled()))  # SQL errors carry the row: text only with log_pii
