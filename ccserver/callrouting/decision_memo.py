"""The IVR path (``CC_IVR``) and the ticket it filed (``CC_TICKET_ID``) by routing decision, for the screen pop.

No AMI event carries ``CC_IVR`` (the channel's ``channelvars`` carry the decision id only), and the decision log
row that stores it (``routing_decisions.variables``) is written behind, about once a second — after the caller
has joined the queue. So the node that answered the AGI keeps its recent decisions' paths in memory
(:class:`DecisionMemo`, fed by ``RoutingService.on_decision``); a node leading the call's Asterisk that did not
answer its AGI reads the logged row instead (:func:`load_ivr_of`), off the ring's hot path.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["DecisionMemo", "load_ivr_of"]

MEMO_SIZE = 20_000  # decisions remembered (a busy hour's IVR calls many times over; ~100 bytes each)


class DecisionMemo:
    """decision id → (IVR path, ticket id) for the decisions this node answered lately; bounded, oldest out."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self._by_id: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def note(self, record: dict[str, Any]) -> None:
        """A decision record (``records.decision_record``): kept when the IVR handed the call over."""
        variables = record.get("variables") or {}
        path = variables.get("CC_IVR")
        decision_id = record.get("decision_id")
        if not path or not decision_id:
            return
        self._by_id[decision_id] = (path, variables.get("CC_TICKET_ID") or "")
        if len(self._by_id) > self.size:
            self._by_id.popitem(last=False)

    def get(self, decision_id: str) -> tuple[str, str] | None:
        return self._by_id.get(decision_id)


def load_ivr_of(session_factory: Callable[[], Any], decision_id: str) -> tuple[str, str] | None:
    """The logged decision's (IVR path, ticket id) — ``("", "")`` for a decision without the IVR — or None while
    its row is not written yet (blocking: the thread pool)."""
    from sqlalchemy import select

    from ccserver.db.models import RoutingDecision

    with session_factory() as s:
        row = s.execute(select(RoutingDecision.variables).where(RoutingDecision.decision_id == decision_id)).first()
    if row is None:
        return None
    variables = row[0] or {}
    return str(variables.get("CC_IVR") or ""), str(variables.get("CC_TICKET_ID") or "")
