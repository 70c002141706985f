"""The agent service: sign in to queues, sign out, pause and resume — for the HTTP API, the CLI and the desktop.

Every operation authorises its actor (any user with an extension for themselves; a supervisor or admin for
anyone), validates its input, then talks to Asterisk (AMI member actions, :mod:`.queue_actions`) and records the
result in SQL (:mod:`.store`), which is the desired state that :meth:`AgentService.reconcile` restores after
every resync. A sign-in always includes the agent's personal queue (``agent-<ext>``), through which
preferred-agent routing rings them first; penalties come from the agent's skills (:mod:`.penalties`).

Which Asterisk serves a phone (several ``ami.servers``): the one named in the request; else the one whose live
state already shows that interface (as a queue member or agent); else the server of the agent's previous
sign-in; else ``callrouting.server`` (the Asterisk running the dialplan).

All methods are coroutines on the server's event loop; SQL runs through ``run_blocking`` (the thread pool).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ccserver.agents.penalties import member_penalty
from ccserver.agents.queue_actions import ALREADY, NO_SUCH_QUEUE, NOT_MEMBER, MemberActionFailed, QueueActions
from ccserver.agents.reconcile import MemberFacts, Plan, SignIn, plan_reconcile
from ccserver.agents.store import AgentStore, AgentUser, SessionConflict, SessionRow
from ccserver.texts import RoleName, T, message_of
from routing.decision import personal_queue
from routing.rules import SAFE_NAME, RoutingRules

log = logging.getLogger("ccserver.agents")

SUPERVISING_ROLES = ("supervisor", "admin")
EXTENSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,19}$")
# An Asterisk dial string: Tech/resource (PJSIP/8001, Local/8001@agent-phones/n, SIP/trunk/123). No spaces, commas,
# quotes or '$': it travels in AMI headers and app_queue's member list.
INTERFACE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,15}/[A-Za-z0-9_.@:+#*\-/]{1,100}$")
MAX_REASON = 40
MAX_QUEUES = 50


class AgentError(Exception):
    """A refused operation: ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: a logged-in user (from their token or session), or the CLI (``Actor.system()``)."""

    user_id: int | None
    username: str
    role: str
    ip: str | None = None
    auth_session_id: str | None = None  # the web login: when it ends, sign-ins it started end too
    expires_at: datetime | None = None

    @classmethod
    def system(cls, name: str = "cli") -> Actor:
        return cls(None, name, "admin")

    @property
    def supervises(self) -> bool:
        return self.role in SUPERVISING_ROLES


def check_pause_reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise AgentError(400, T("reason is required: a short pause code such as 'lunch'"), field="reason")
    text = reason.strip()
    if len(text) > MAX_REASON or not text.isprintable() or any(c in text for c in ",|;"):
        raise AgentError(400, T("reason must be printable text of at most {max_reason} characters, without , | ;",
                                max_reason=MAX_REASON),
                         field="reason")
    return text


class AgentService:
    def __init__(self, store: AgentStore, actions: QueueActions, *, rules: RoutingRules,
                 run_blocking: Callable[..., Awaitable[Any]], servers: Sequence[str], default_server: str,
                 tracker: Any = None, clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.actions = actions
        self.rules = rules
        self._run = run_blocking
        self.servers = tuple(servers)
        self.default_server = default_server if default_server in servers or not servers else servers[0]
        self.tracker = tracker
        self._now = clock or (lambda: datetime.now(UTC))
        self._locks: dict[str, asyncio.Lock] = {}

    # -- the operations --------------------------------------------------------------------------------------
    async def login(self, actor: Actor, extension: str, queues: Iterable[object], *, interface: str | None = None,
                    state_interface: str | None = None, server: str | None = None,
                    force: bool = False) -> dict[str, Any]:
        """Sign ``extension`` in to ``queues`` (and their personal queue) from ``interface`` (default: the
        user's own phone). Re-signing in replaces the previous sign-in (other queues, another phone)."""
        user = await self._target(actor, extension)
        wanted = self._queue_names(queues)
        phone = self._interface(interface if interface is not None else user.interface, "interface")
        state_phone = self._interface(state_interface, "state_interface") if state_interface else None
        async with self._lock(extension):
            previous = await self._run(self.store.active, extension)
            where = self._server_for(phone, server, previous)
            await self._require_connected(where)
            holder = await self._run(self.store.active_on, where, phone)
            if holder is not None and holder.extension != extension:
                if not (force and actor.supervises):
                    raise AgentError(409, T("phone {phone} is signed in by extension {extension}", phone=phone,
                                            extension=holder.extension),
                                     holder=holder.extension)
                await self._sign_out(holder, f"replaced by {extension}", actor)
            lines = await self._run(self.store.queue_lines)
            self._check_queues_exist(where, wanted, lines)
            own = personal_queue(self.rules, extension)
            penalties = {q: member_penalty(user.skills, q, lines.get(q), fallback_queue=self.rules.fallback_queue)
                         for q in wanted}
            if own:
                penalties[own] = member_penalty(user.skills, own, None, personal=True)
            results: dict[str, str] = {}
            warnings: list[str] = []
            if previous is not None:
                moved = previous.interface != phone or previous.server != where
                dropped = set(previous.queues) if moved else set(previous.queues) - set(penalties)
                for q in sorted(dropped):
                    await self._member(self.actions.remove, previous.server, q, previous.interface)
            member_name = (user.display_name or user.username)[:120]
            for q, penalty in penalties.items():
                outcome = await self._member(self.actions.add, where, q, phone, penalty=penalty,
                                             member_name=member_name, state_interface=state_phone, paused=False,
                                             reason="")
                if outcome == ALREADY:  # already a member (e.g. persistentmembers): make it match
                    await self._member(self.actions.penalty, where, q, phone, penalty)
                    await self._member(self.actions.pause, where, phone, paused=False, reason="", queue=q)
                if outcome == NO_SUCH_QUEUE:
                    warnings.append(f"queue {q} is not defined in Asterisk {where}"
                                    + ("; preferred-agent calls will skip this agent" if q == own else ""))
                results[q] = "joined" if outcome != NO_SUCH_QUEUE else "no such queue"
            joined = {q: p for q, p in penalties.items() if results[q] == "joined"}
            if wanted and not any(results[q] == "joined" for q in wanted):
                for q in joined:
                    await self._member(self.actions.remove, where, q, phone)
                raise AgentError(422, T("none of the queues exists in Asterisk {where}: {wanted}", where=where,
                                        wanted=', '.join(wanted)),
                                 field="queues")
            row = SessionRow(0, user.id, extension, phone, member_name, where, joined,
                             state_interface=state_phone, auth_session_id=actor.auth_session_id,
                             expires_at=actor.expires_at, started_by=actor.username)
            try:
                row = await self._run(self.store.start, row)
            except SessionConflict as exc:
                raise AgentError(409, message_of(exc)) from None
            await self._audit(actor, "agent.login", extension, {"interface": phone, "server": where,
                                                                "queues": joined, "warnings": warnings})
        log.info("agent %s signed in from %s on %s to %s (by %s)", extension, phone, where,
                 ", ".join(sorted(joined)) or "-", actor.username)
        return {**self._view(row), "results": results, "warnings": warnings}

    async def logout(self, actor: Actor, extension: str, reason: str = "logout") -> dict[str, Any]:
        """Sign ``extension`` out of every queue. Idempotent: an agent not signed in gets ``signed_in: false``."""
        await self._target(actor, extension)
        async with self._lock(extension):
            row = await self._run(self.store.active, extension)
            if row is None:
                return {"extension": extension, "signed_in": False, "warnings": []}
            await self.actions.ready(row.server)  # a one-shot command connects here; unreachable: signed out anyway
            warnings = await self._sign_out(row, reason, actor)
        return {"extension": extension, "signed_in": False, "warnings": warnings}

    async def pause(self, actor: Actor, extension: str, reason: object) -> dict[str, Any]:
        text = check_pause_reason(reason)
        return await self._set_pause(actor, extension, True, text)

    async def unpause(self, actor: Actor, extension: str) -> dict[str, Any]:
        return await self._set_pause(actor, extension, False, "")

    async def status(self, actor: Actor, extension: str) -> dict[str, Any]:
        await self._target(actor, extension)
        row = await self._run(self.store.active, extension)
        if row is None:
            return {"extension": extension, "signed_in": False}
        return self._view(row)

    async def signed_in(self) -> list[dict[str, Any]]:
        return [self._view(r) for r in await self._run(self.store.all_active)]

    # -- sessions ending elsewhere -------------------------------------------------------------------------------
    async def end_auth_session(self, auth_session_id: str, reason: str) -> int:
        """The web login ``auth_session_id`` ended (logout, expiry, deactivation): sign its agents out."""
        rows = await self._run(self.store.for_auth_session, auth_session_id)
        for row in rows:
            async with self._lock(row.extension):
                await self._sign_out(row, reason, Actor.system("session"))
        return len(rows)

    async def sweep(self) -> int:
        """End the sign-ins whose web login expired or whose user left (inactive, no longer that extension)."""
        due = await self._run(self.store.due_to_end)
        for row, reason in due:
            async with self._lock(row.extension):
                await self._sign_out(row, reason, Actor.system("sweep"))
        return len(due)

    async def reconcile(self, server: str) -> Plan:
        """Bring Asterisk ``server``'s members to the sign-ins (after a resync: the tracker holds its truth)."""
        if self.tracker is None:
            return Plan()
        rows = await self._run(self.store.all_active, server)
        managed = await self._run(self.store.managed_interfaces, server)
        members = list(_members(self.tracker, server))
        known = _known_queues(self.tracker, server)
        plan = plan_reconcile((_sign_in(r) for r in rows), members, managed, known)
        done = 0
        for action in plan.actions:
            try:
                if action.kind == "add":
                    await self.actions.add(server, action.queue, action.interface, penalty=action.penalty,
                                           member_name=action.member_name, state_interface=action.state_interface,
                                           paused=action.paused, reason=action.reason)
                elif action.kind == "remove":
                    await self.actions.remove(server, action.queue, action.interface)
                elif action.kind == "penalty":
                    await self.actions.penalty(server, action.queue, action.interface, action.penalty)
                else:
                    await self.actions.pause(server, action.interface, paused=action.paused, reason=action.reason,
                                             queue=action.queue)
                done += 1
            except MemberActionFailed as exc:
                log.warning("reconcile %s: %s %s %s failed: %s", server, action.kind, action.queue, action.interface,
                            exc)
        for extension, queue in plan.missing_queues:
            log.warning("reconcile %s: agent %s is signed in to queue %s, which Asterisk does not have", server,
                        extension, queue)
        if plan.actions:
            log.info("reconcile %s: %d of %d member actions applied", server, done, len(plan.actions))
        return plan

    # -- helpers -------------------------------------------------------------------------------------------------
    def _lock(self, extension: str) -> asyncio.Lock:
        lock = self._locks.get(extension)
        if lock is None:
            lock = self._locks[extension] = asyncio.Lock()
        return lock

    async def _target(self, actor: Actor, extension: object) -> AgentUser:
        if not isinstance(extension, str) or not EXTENSION.match(extension):
            raise AgentError(400, T("extension must be letters and digits (at most 20)"), field="extension")
        user = await self._run(self.store.user_by_extension, extension)
        if user is None or not user.active:
            raise AgentError(404, T("no active user has extension {extension}", extension=extension))
        if not actor.supervises and actor.user_id != user.id:
            raise AgentError(403, T("role {role} may sign in only its own extension", role=RoleName(actor.role)))
        return user

    @staticmethod
    def _interface(value: object, field: str) -> str:
        if not value:
            raise AgentError(400, T("{field} is required (this user has no phone on record)", field=field), field=field)
        if not isinstance(value, str) or not INTERFACE.match(value):
            raise AgentError(400, T("{field} must be an Asterisk interface such as PJSIP/8001", field=field),
                             field=field)
        return value

    @staticmethod
    def _queue_names(queues: Iterable[object]) -> list[str]:
        if isinstance(queues, str | bytes) or not isinstance(queues, Iterable):
            raise AgentError(400, T("queues must be a list of queue names"), field="queues")
        names: list[str] = []
        for q in queues:
            if not isinstance(q, str) or not SAFE_NAME.match(q):
                raise AgentError(400, T("bad queue name {q}", q=repr(q)), field="queues")
            if q not in names:
                names.append(q)
        if len(names) > MAX_QUEUES:
            raise AgentError(400, T("at most {max_queues} queues", max_queues=MAX_QUEUES), field="queues")
        return names

    def _server_for(self, interface: str, asked: str | None, previous: SessionRow | None) -> str:
        if asked:
            if asked not in self.servers:
                raise AgentError(400, T("unknown Asterisk server {asked} (configured: {servers})", asked=repr(asked),
                                        servers=', '.join(self.servers)),
                                 field="server")
            return asked
        if self.tracker is not None and len(self.servers) > 1:
            seen = {srv for (srv, iface) in self.tracker.agents if iface == interface}
            if len(seen) == 1:
                return seen.pop()
        if previous is not None and previous.server in self.servers:
            return previous.server
        return self.default_server

    async def _require_connected(self, server: str) -> None:
        if not self.servers:
            raise AgentError(503, T("no Asterisk is configured (ami.host / ami.servers)"))
        if not await self.actions.ready(server):
            raise AgentError(503, T("Asterisk {server} is not connected; try again shortly", server=server))

    def _check_queues_exist(self, server: str, wanted: list[str], lines: dict[str, str | None]) -> None:
        known = _known_queues(self.tracker, server) if self.tracker is not None else None
        if known is None and lines:
            known = set(lines)  # before the first resync: ccserver's own queue table
        if known is None:
            return
        unknown = [q for q in wanted if q not in known]
        if unknown:
            raise AgentError(400, T("unknown queue(s): {unknown}", unknown=', '.join(unknown)), field="queues",
                             unknown=unknown)

    async def _member(self, method: Callable[..., Awaitable[str]], *args: Any, **kwargs: Any) -> str:
        try:
            return await method(*args, **kwargs)
        except MemberActionFailed as exc:
            raise AgentError(503, message_of(exc)) from None

    async def _sign_out(self, row: SessionRow, reason: str, actor: Actor) -> list[str]:
        """Remove ``row``'s phone from its queues (and any other queue live state shows it in), end the sign-in.
        With Asterisk unreachable the sign-in still ends; the next resync's reconcile removes the members."""
        warnings: list[str] = []
        queues = set(row.queues)
        if self.tracker is not None:
            queues |= {m.queue for m in _members(self.tracker, row.server) if m.interface == row.interface and
                       m.dynamic}
        for q in sorted(queues):
            try:
                await self.actions.remove(row.server, q, row.interface)
            except MemberActionFailed as exc:
                warnings.append(f"{q}: {exc}; removed at the next reconnect")
        await self._run(self.store.end, row.id, reason)
        await self._audit(actor, "agent.logout", row.extension, {"interface": row.interface, "server": row.server,
                                                                 "reason": reason, "warnings": warnings})
        log.info("agent %s signed out from %s on %s (%s, by %s)", row.extension, row.interface, row.server, reason,
                 actor.username)
        return warnings

    async def _set_pause(self, actor: Actor, extension: str, paused: bool, reason: str) -> dict[str, Any]:
        await self._target(actor, extension)
        async with self._lock(extension):
            row = await self._run(self.store.active, extension)
            if row is None:
                raise AgentError(409, T("extension {extension} is not signed in", extension=extension))
            await self._require_connected(row.server)
            outcome = await self._member(self.actions.pause, row.server, row.interface, paused=paused, reason=reason)
            if outcome == NOT_MEMBER:
                raise AgentError(409, T("{interface} is in no queue on Asterisk {server}; sign in again",
                                        interface=row.interface, server=row.server))
            await self._run(self.store.set_pause, row.id, paused, reason)
            await self._audit(actor, "agent.pause" if paused else "agent.unpause", extension,
                              {"interface": row.interface, "reason": reason})
        log.info("agent %s %s%s (by %s)", extension, "paused" if paused else "resumed",
                 f": {reason}" if reason else "", actor.username)
        return self._view(replace(row, paused=paused, pause_reason=reason))

    async def _audit(self, actor: Actor, action: str, extension: str, detail: dict[str, Any]) -> None:
        try:
            await self._run(self.store.audit, action, actor.user_id, actor.username, f"extension:{extension}",
                            detail, actor.ip)
        except Exception:  # noqa: BLE001 - the member action happened; a lost audit row is logged, not raised
            log.exception("audit of %s for %s not written", action, extension)

    @staticmethod
    def _view(row: SessionRow) -> dict[str, Any]:
        return {
            "extension": row.extension,
            "signed_in": True,
            "interface": row.interface,
            "server": row.server,
            "queues": [{"queue": q, "penalty": p} for q, p in sorted(row.queues.items())],
            "paused": row.paused,
            "pause_reason": row.pause_reason or None,
            "since": row.started_at.isoformat() if row.started_at else None,
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        }


def reconcile_after_resync(hub: Any, agents: AgentService, leading: Any) -> Any:
    """Subscribe ``agents`` to the hub: after each ``Resynced`` of a server this node leads (``leading``: the set of
    server names whose AMI it consumes), Asterisk's queue members are brought to the sign-ins."""
    from ccserver.events import Resynced

    async def on_resynced(event: Resynced) -> None:
        if event.server in leading:
            await agents.reconcile(event.server)

    return hub.subscribe("agent-reconcile", on_resynced, kinds=(Resynced,))


def _sign_in(row: SessionRow) -> SignIn:
    return SignIn(row.extension, row.interface, row.member_name, row.queues, row.paused, row.pause_reason,
                  row.state_interface)


def _members(tracker: Any, server: str) -> Iterable[MemberFacts]:
    for (srv, name), q in list(tracker.queues.items()):
        if srv != server:
            continue
        for iface, m in q.members.items():
            yield MemberFacts(name, iface, m.penalty, m.paused, m.paused_reason or "",
                              (m.membership or "dynamic") == "dynamic")


def _known_queues(tracker: Any, server: str) -> set[str] | None:
    if tracker is None or not tracker.queues_complete(server):
        return None
    return {name for (srv, name) in tracker.queues if srv == server}
