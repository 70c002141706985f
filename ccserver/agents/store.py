"""Agent sign-ins in SQL (blocking: call from the thread pool). The desired state of queue membership lives here;
Asterisk is brought to it (see :mod:`ccserver.agents.reconcile`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ccserver.db.models import AgentSession, AuditLog, Queue, User

# Interfaces of sign-ins ended this long ago are still ccserver's to clean up after a resync.
MANAGED_HISTORY = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class AgentUser:
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    extension: str | None
    interface: str | None
    skills: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: int
    user_id: int | None
    extension: str
    interface: str
    member_name: str
    server: str
    queues: dict[str, int] = field(default_factory=dict)
    paused: bool = False
    pause_reason: str = ""
    state_interface: str | None = None
    auth_session_id: str | None = None
    expires_at: datetime | None = None
    started_at: datetime | None = None
    started_by: str | None = None


class SessionConflict(Exception):
    """Another active sign-in holds the extension or the phone (a race between two sign-ins)."""


def _user(u: User) -> AgentUser:
    return AgentUser(u.id, u.username, u.display_name, u.role, bool(u.active), u.extension, u.interface,
                     tuple(str(s) for s in (u.skills or ())))


def _row(s: AgentSession) -> SessionRow:
    return SessionRow(s.id, s.user_id, s.extension, s.interface, s.member_name, s.server, dict(s.queues or {}),
                      bool(s.paused), s.pause_reason or "", s.state_interface, s.auth_session_id, s.expires_at,
                      s.started_at, s.started_by)


class AgentStore:
    def __init__(self, session_factory: Callable[[], Session], clock: Callable[[], datetime] | None = None) -> None:
        self._sessions = session_factory
        self._now = clock or (lambda: datetime.now(UTC))

    # -- users and queues --------------------------------------------------------------------------------
    def user_by_extension(self, extension: str) -> AgentUser | None:
        with self._sessions() as s:
            u = s.scalars(select(User).where(User.extension == extension).order_by(User.active.desc(), User.id)
                          ).first()
            return _user(u) if u is not None else None

    def user_by_id(self, user_id: int) -> AgentUser | None:
        with self._sessions() as s:
            u = s.get(User, user_id)
            return _user(u) if u is not None else None

    def queue_lines(self) -> dict[str, str | None]:
        """Every queue ccserver knows from its own table: name → line (None when it has none)."""
        with self._sessions() as s:
            return {name: line for name, line in s.execute(select(Queue.name, Queue.line))}

    # -- sessions ----------------------------------------------------------------------------------------
    def active(self, extension: str) -> SessionRow | None:
        with self._sessions() as s:
            row = s.scalars(select(AgentSession).where(AgentSession.extension == extension,
                                                       AgentSession.ended_at.is_(None))).first()
            return _row(row) if row is not None else None

    def active_on_many(self, phones: Iterable[tuple[str, str]]) -> dict[tuple[str, str], SessionRow]:
        """:meth:`active_on` for many (server, interface) pairs in one query: the pairs signed in, with their row."""
        wanted = set(phones)
        if not wanted:
            return {}
        out: dict[tuple[str, str], SessionRow] = {}
        with self._sessions() as s:
            for row in s.scalars(select(AgentSession).where(
                    AgentSession.interface.in_(sorted({i for _s, i in wanted})), AgentSession.ended_at.is_(None))):
                key = (row.server, row.interface)
                if key in wanted and key not in out:
                    out[key] = _row(row)
        return out

    def active_on(self, server: str, interface: str) -> SessionRow | None:
        with self._sessions() as s:
            row = s.scalars(select(AgentSession).where(AgentSession.server == server,
                                                       AgentSession.interface == interface,
                                                       AgentSession.ended_at.is_(None))).first()
            return _row(row) if row is not None else None

    def all_active(self, server: str | None = None) -> list[SessionRow]:
        with self._sessions() as s:
            stmt = select(AgentSession).where(AgentSession.ended_at.is_(None)).order_by(AgentSession.extension)
            if server is not None:
                stmt = stmt.where(AgentSession.server == server)
            return [_row(r) for r in s.scalars(stmt)]

    def start(self, new: SessionRow) -> SessionRow:
        """Record a sign-in, ending the extension's previous one (moved desks, changed queues) in the same
        transaction. Raises SessionConflict when another agent's sign-in holds the phone."""
        now = self._now()
        try:
            with self._sessions.begin() as s:  # type: ignore[attr-defined]
                for old in s.scalars(select(AgentSession).where(AgentSession.extension == new.extension,
                                                                AgentSession.ended_at.is_(None))):
                    old.ended_at, old.end_reason = now, "replaced"
                s.flush()
                row = AgentSession(user_id=new.user_id, extension=new.extension, interface=new.interface,
                                   state_interface=new.state_interface, member_name=new.member_name,
                                   server=new.server, queues=dict(new.queues), paused=new.paused,
                                   pause_reason=new.pause_reason or None, auth_session_id=new.auth_session_id,
                                   expires_at=new.expires_at, started_at=now, started_by=new.started_by)
                s.add(row)
                s.flush()
                return _row(row)
        except IntegrityError:
            raise SessionConflict(f"phone {new.interface} or extension {new.extension} is already signed in") \
                from None

    def set_pause(self, session_id: int, paused: bool, reason: str) -> None:
        with self._sessions.begin() as s:  # type: ignore[attr-defined]
            row = s.get(AgentSession, session_id)
            if row is not None and row.ended_at is None:
                row.paused, row.pause_reason = paused, (reason or None) if paused else None

    def end(self, session_id: int, reason: str) -> bool:
        with self._sessions.begin() as s:  # type: ignore[attr-defined]
            row = s.get(AgentSession, session_id)
            if row is None or row.ended_at is not None:
                return False
            row.ended_at, row.end_reason = self._now(), reason[:40]
            return True

    def for_auth_session(self, auth_session_id: str) -> list[SessionRow]:
        with self._sessions() as s:
            return [_row(r) for r in s.scalars(select(AgentSession).where(
                AgentSession.auth_session_id == auth_session_id, AgentSession.ended_at.is_(None)))]

    def due_to_end(self) -> list[tuple[SessionRow, str]]:
        """Active sign-ins that must end: their web login expired, or their user is gone, inactive, or no longer
        has that extension."""
        now = self._now()
        out: list[tuple[SessionRow, str]] = []
        with self._sessions() as s:
            stmt = (select(AgentSession, User).outerjoin(User, User.id == AgentSession.user_id)
                    .where(AgentSession.ended_at.is_(None))
                    .where(or_(AgentSession.expires_at <= now, AgentSession.user_id.is_(None), User.id.is_(None),
                               User.active.is_(False), User.extension.is_(None),
                               User.extension != AgentSession.extension)))
            for row, user in s.execute(stmt):
                if row.expires_at is not None and row.expires_at <= now:
                    reason = "expired"
                elif user is None:
                    reason = "user removed"
                elif not user.active:
                    reason = "user deactivated"
                else:
                    reason = "extension changed"
                out.append((_row(row), reason))
        return out

    def managed_interfaces(self, server: str) -> set[str]:
        """Phones ccserver owns on ``server``: every user's interface and every recent sign-in's."""
        since = self._now() - MANAGED_HISTORY
        with self._sessions() as s:
            users = {i for i in s.scalars(select(User.interface).where(User.interface.is_not(None))) if i}
            signed = set(s.scalars(select(AgentSession.interface).where(
                AgentSession.server == server,
                or_(AgentSession.ended_at.is_(None), AgentSession.ended_at >= since))))
        return users | signed

    def audit(self, action: str, actor_id: int | None, actor_name: str, target: str, detail: dict[str, Any],
              ip: str | None = None) -> None:
        with self._sessions.begin() as s:  # type: ignore[attr-defined]
            s.add(AuditLog(at=self._now(), actor_id=actor_id, actor_name=actor_name[:64], action=action,
                           target=target[:200], ip=(ip or "")[:45] or None, detail=detail))
