"""Who sees which tickets (pure rules, and the same rules as SQL).

- ``admin`` and ccserver itself (``system``: the IVR, jobs): every ticket.
- ``supervisor``: every ticket; a store manager (a supervisor with a store) only that store's.
- ``agent`` and ``campaign_manager``: their store's tickets; without a store (the group call centre) every store's.
- ``department`` staff: their department's tickets — of their store when they have one — and any ticket assigned
  to them personally.

A ticket the actor may not see is "not found" to them (404), so ids reveal nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, or_, true

__all__ = ["Actor"]


@dataclass(frozen=True)
class Actor:
    """The user (or part of ccserver) acting on tickets, with what decides their view."""

    user_id: int | None
    name: str
    role: str  # a users.role, or "system"
    store_id: int | None = None
    department: str | None = None
    ip: str | None = None

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(None, name, "system")

    @property
    def sees_everything(self) -> bool:
        if self.role in ("admin", "system"):
            return True
        return self.role in ("supervisor", "agent", "campaign_manager") and self.store_id is None

    def may_see(self, store_id: int | None, department: str | None, assignee_id: int | None) -> bool:
        if self.sees_everything:
            return True
        if self.role == "department":
            if self.user_id is not None and assignee_id == self.user_id:
                return True
            return (self.department is not None and department == self.department
                    and (self.store_id is None or store_id == self.store_id))
        if self.role in ("supervisor", "agent", "campaign_manager"):
            return store_id == self.store_id
        return False

    def where(self, table: Any) -> Any:
        """The same rule as a SQL condition on a ``tickets`` table (or alias)."""
        if self.sees_everything:
            return true()
        if self.role == "department":
            mine = table.c.assignee_id == self.user_id if self.user_id is not None else false()
            if self.department is None:
                return mine
            dept = table.c.department == self.department
            if self.store_id is not None:
                dept = and_(dept, table.c.store_id == self.store_id)
            return or_(dept, mine)
        if self.role in ("supervisor", "agent", "campaign_manager"):
            return table.c.store_id == self.store_id
        return false()
