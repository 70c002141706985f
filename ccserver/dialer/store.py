"""What the dialer reads and writes in SQL (blocking; the dialer calls it through ``run_blocking``).

An attempt row is written *before* its Originate is sent (with the ActionID), and the target is marked
``active``: after a crash, every Originate that may have gone out is known, and is reconciled, never re-sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ccserver.campaigns.compliance import FINAL_OUTCOMES
from ccserver.db.models import Campaign, CampaignAttempt, CampaignTarget, Customer, Did, DncNumber, Store

__all__ = ["CampaignRow", "DialerStore", "TargetRow"]


@dataclass(frozen=True)
class CampaignRow:
    id: int
    type: str
    mode: str
    queue: str
    window: dict[str, Any]
    tiers_first: bool
    max_attempts: int
    time_zone: str | None  # the store's: the fallback for numbers without one
    caller_id: str | None  # the store's DID
    store_name: str | None


@dataclass(frozen=True)
class TargetRow:
    id: int
    customer_id: int | None
    e164: str
    tier: str | None
    order_at: datetime | None
    attempts: int
    last_outcome: str | None
    last_attempt_at: datetime | None
    do_not_call: bool
    consent: bool


class DialerStore:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.sessions = session_factory

    def running_campaigns(self) -> list[CampaignRow]:
        with self.sessions() as session:
            rows = session.execute(
                select(Campaign, Store.time_zone, Store.name)
                .outerjoin(Store, Store.id == Campaign.store_id).where(Campaign.status == "running")).all()
            dids: dict[int, str] = {}
            store_ids = {c.store_id for c, _, _ in rows if c.store_id is not None}
            if store_ids:
                for store_id, number in session.execute(select(Did.store_id, Did.number)
                                                        .where(Did.store_id.in_(store_ids)).order_by(Did.id)):
                    if store_id is not None:
                        dids.setdefault(store_id, number)
            return [CampaignRow(c.id, c.type, c.mode, c.queue, c.window, c.tiers_first, c.max_attempts, tz,
                                dids.get(c.store_id) if c.store_id is not None else None, name)
                    for c, tz, name in rows]

    def open_targets(self, campaign_id: int) -> list[TargetRow]:
        with self.sessions() as session:
            rows = session.execute(
                select(CampaignTarget, Customer.do_not_call, Customer.consent)
                .outerjoin(Customer, Customer.id == CampaignTarget.customer_id)
                .where(CampaignTarget.campaign_id == campaign_id, CampaignTarget.status == "pending")).all()
            return [TargetRow(t.id, t.customer_id, t.e164, t.tier, t.order_at, t.attempts, t.last_outcome,
                              t.last_attempt_at, bool(dnc), bool(consent) if t.customer_id is not None else False)
                    for t, dnc, consent in rows]

    def dnc_numbers(self) -> set[str]:
        with self.sessions() as session:
            return set(session.scalars(select(DncNumber.e164)))

    def begin_attempt(self, campaign_id: int, target_id: int, customer_id: int | None, action_id: str,
                      node: str, server: str, at: datetime) -> bool:
        """Write the attempt and mark the target active — only if it is still pending (False: someone else)."""
        with self.sessions.begin() as session:
            taken = session.execute(update(CampaignTarget)
                                    .where(CampaignTarget.id == target_id, CampaignTarget.status == "pending")
                                    .values(status="active"))
            if not getattr(taken, "rowcount", 0):
                return False
            session.add(CampaignAttempt(campaign_id=campaign_id, target_id=target_id, customer_id=customer_id,
                                        action_id=action_id, node=node, server=server, originated_at=at))
            return True

    def answered(self, action_id: str, uniqueid: str | None, at: datetime) -> None:
        with self.sessions.begin() as session:
            session.execute(update(CampaignAttempt).where(CampaignAttempt.action_id == action_id)
                            .values(answered_at=at, uniqueid=uniqueid))

    def finish_attempt(self, action_id: str, outcome: str, at: datetime, *, agent_interface: str | None = None,
                       uniqueid: str | None = None, answered_at: datetime | None = None) -> None:
        """The attempt's outcome; its target goes back to ``pending`` (to be retried after the spacing) or to
        ``done`` (a final outcome, or its attempts used up)."""
        with self.sessions.begin() as session:
            attempt = session.scalar(select(CampaignAttempt).where(CampaignAttempt.action_id == action_id))
            if attempt is None or attempt.outcome is not None:
                return  # already settled (a repeated event)
            attempt.outcome, attempt.ended_at = outcome, at
            if agent_interface:
                attempt.agent_interface = agent_interface
            attempt.uniqueid = attempt.uniqueid or uniqueid
            attempt.answered_at = attempt.answered_at or answered_at
            target = session.get(CampaignTarget, attempt.target_id)
            campaign = session.get(Campaign, attempt.campaign_id)
            if target is None or campaign is None:
                return
            target.attempts += 1
            target.last_outcome, target.last_attempt_at = outcome, attempt.originated_at
            if target.status == "active":
                final = outcome in FINAL_OUTCOMES or target.attempts >= campaign.max_attempts
                target.status = "done" if final else "pending"

    def drop_target(self, target_id: int, reason: str) -> None:
        with self.sessions.begin() as session:
            session.execute(update(CampaignTarget)
                            .where(CampaignTarget.id == target_id, CampaignTarget.status == "pending")
                            .values(status="dropped", drop_reason=reason[:24]))

    def unsettled(self, node: str | None = None) -> list[tuple[str, int, str | None, str | None]]:
        """Attempts sent but without an outcome: (action id, campaign id, server, uniqueid)."""
        with self.sessions() as session:
            query = select(CampaignAttempt.action_id, CampaignAttempt.campaign_id, CampaignAttempt.server,
                           CampaignAttempt.uniqueid).where(CampaignAttempt.outcome.is_(None))
            if node is not None:
                query = query.where(CampaignAttempt.node == node)
            return [tuple(r) for r in session.execute(query)]  # type: ignore[misc]


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
