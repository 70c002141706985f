"""The ticket lifecycle: which status may follow which (pure).

    new → assigned → in_progress → resolved → customer_called_back → closed, and cancelled from any open state.

- ``assigned`` and ``in_progress`` may hand back (in_progress → assigned) and a ticket may be picked up at once
  (new → in_progress).
- ``resolved`` may be reopened (→ in_progress) and, for kinds that need no call back, closed at once. A complaint
  or a repair must be called back first (→ customer_called_back, with the customer's satisfaction), so the
  customer always hears the result.
- ``customer_called_back`` → closed, or reopened (→ in_progress) when the customer is not satisfied.
- ``closed`` and ``cancelled`` are final.

The first move out of ``new`` is the first response (it stops that SLA clock); ``resolved`` stops the resolution
clock.
"""

from __future__ import annotations

from typing import Final

from ccserver.db.models import TICKET_STATUSES

__all__ = ["CALL_BACK_KINDS", "FINAL", "IllegalTransition", "OPEN", "WORKING", "allowed_next", "check"]

# Kinds whose resolution the customer is called back about (a resolution-callback task is made on resolve).
CALL_BACK_KINDS: Final = frozenset({"complaint", "repair"})
# Not yet resolved: the resolution SLA clock runs.
WORKING: Final = ("new", "assigned", "in_progress")
# Neither closed nor cancelled.
OPEN: Final = ("new", "assigned", "in_progress", "resolved", "customer_called_back")
FINAL: Final = ("closed", "cancelled")

_NEXT: Final[dict[str, tuple[str, ...]]] = {
    "new": ("assigned", "in_progress", "cancelled"),
    "assigned": ("in_progress", "cancelled"),
    "in_progress": ("resolved", "assigned", "cancelled"),
    "resolved": ("customer_called_back", "closed", "in_progress"),
    "customer_called_back": ("closed", "in_progress"),
    "closed": (),
    "cancelled": (),
}
assert set(_NEXT) == set(TICKET_STATUSES)


class IllegalTransition(ValueError):
    """``current`` → ``to`` is not allowed; ``allowed`` lists what is (HTTP 409)."""

    def __init__(self, current: str, to: str, allowed: tuple[str, ...]) -> None:
        listed = ", ".join(allowed) if allowed else "none (the ticket is final)"
        super().__init__(f"a {current} ticket cannot become {to}; allowed next: {listed}")
        self.current, self.to, self.allowed = current, to, allowed


def allowed_next(kind: str, status: str) -> tuple[str, ...]:
    """The statuses a ``kind`` ticket in ``status`` may move to."""
    nxt = _NEXT.get(status, ())
    if status == "resolved" and kind in CALL_BACK_KINDS:
        nxt = tuple(s for s in nxt if s != "closed")
    return nxt


def check(kind: str, current: str, to: str) -> None:
    """Raise IllegalTransition unless ``current`` → ``to`` is legal for ``kind``."""
    allowed = allowed_next(kind, current)
    if to not in allowed:
        raise IllegalTransition(current, to, allowed)
