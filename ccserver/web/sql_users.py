"""The user store behind login, on the SQL database (blocking: called from worker threads)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ccserver.db.models import AuditLog, User
from ccserver.web.context import UserRecord


def _record(user: User | None) -> UserRecord | None:
    if user is None:
        return None
    return UserRecord(user.id, user.username, user.role, user.password_hash or "", bool(user.active),
                      bool(user.must_change_password))


class SQLUserStore:
    def __init__(self, session_factory: sessionmaker[Session]):
        self._sessions = session_factory

    def find(self, username: str) -> UserRecord | None:
        with self._sessions() as session:
            return _record(session.scalars(select(User).where(User.username == username)).one_or_none())

    def get(self, user_id: int) -> UserRecord | None:
        """The user as they are now (every request's session check, through a short cache)."""
        with self._sessions() as session:
            return _record(session.get(User, user_id))

    def change_password(self, user_id: int, password_hash: str, ip: str) -> None:
        from ccserver.admin.users import change_own_password

        change_own_password(self._sessions, user_id, password_hash, ip)

    def audit(self, action: str, actor_id: int | None, actor_name: str, ip: str, detail: dict[str, Any]) -> None:
        with self._sessions.begin() as session:
            session.add(
                AuditLog(at=dt.datetime.now(dt.UTC), actor_id=actor_id, actor_name=actor_name[:64], action=action,
                         ip=ip[:45], detail=detail)
            )
