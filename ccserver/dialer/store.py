"""What the dialer reads and writes in SQL (blocking; the dialer calls it through ``run_blocking``).

An attempt row is written *before* its Originate is sent (with the ActionID), and the target is marked
``active``: after a crash, every Originate that may have gone out is known, and is reconciled, never re-sent.
The dialer writes its rows ahead of time (``prepare_attempts``: ``sent_at`` empty); ``settle`` then records, in
one transaction, which of them left (``sent_at``), which never will (outcome ``unsent``: the target goes back to
``pending`` without an attempt counted, or is dropped when the gate refused it for good) and the outcomes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from ccserver.campaigns.compliance import FINAL_OUTCOMES
from ccserver.db.models import Campaign, CampaignAttempt, CampaignTarget, Customer, Did, DncNumber, Store

__all__ = ["CampaignRow", "DialerStore", "TargetRow", "caller_ids"]

_ATTEMPTS = cast(Table, CampaignAttempt.__table__)  # Core statements for the batched writes


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
    store_code: str | None = None


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


def caller_ids(session: Session, store_ids: Iterable[int | None], *,
               without: int | None = None) -> dict[int | None, str | None]:
    """The number the campaigns of each store (None: of no store) call from: the store's first DID, else the
    group's number (a group-wide DID first, else any store's), as a call must always carry a caller ID the callee
    can call back (the US TSR requires one; seen empty on a live Asterisk). None only when there is no DID at all.
    ``without``: as if that DID (its id) were gone — administration asks before deleting one."""
    wanted = set(store_ids)
    remaining = [Did.id != without] if without is not None else []
    own: dict[int, str] = {}
    stores = {s for s in wanted if s is not None}
    if stores:
        for store_id, number in session.execute(select(Did.store_id, Did.number)
                                                .where(Did.store_id.in_(stores), *remaining).order_by(Did.id)):
            if store_id is not None:
                own.setdefault(store_id, number)
    group = None
    if any(s not in own for s in wanted):
        group = session.scalar(select(Did.number).where(*remaining)
                               .order_by(Did.store_id.is_not(None), Did.id).limit(1))
    return {s: own.get(s, group) if s is not None else group for s in wanted}


class DialerStore:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.sessions = session_factory

    def running_campaigns(self) -> list[CampaignRow]:
        with self.sessions() as session:
            rows = session.execute(
                select(Campaign, Store.time_zone, Store.name, Store.code)
                .outerjoin(Store, Store.id == Campaign.store_id).where(Campaign.status == "running")).all()
            numbers = caller_ids(session, {c.store_id for c, _, _, _ in rows})
            return [CampaignRow(c.id, c.type, c.mode, c.queue, c.window, c.tiers_first, c.max_attempts, tz,
                                numbers[c.store_id], name, code)
                    for c, tz, name, code in rows]

    def open_targets(self, campaign_id: int, *, status: str = "pending", only: int | None = None) -> list[TargetRow]:
        """A campaign's targets in ``status`` (``only``: just that one — preview mode's held target)."""
        with self.sessions() as session:
            query = (select(CampaignTarget, Customer.do_not_call, Customer.consent)
                     .outerjoin(Customer, Customer.id == CampaignTarget.customer_id)
                     .where(CampaignTarget.campaign_id == campaign_id, CampaignTarget.status == status))
            if only is not None:
                query = query.where(CampaignTarget.id == only)
            rows = session.execute(query).all()
            return [TargetRow(t.id, t.customer_id, t.e164, t.tier, t.order_at, t.attempts, t.last_outcome,
                              t.last_attempt_at, bool(dnc), bool(consent) if t.customer_id is not None else False)
                    for t, dnc, consent in rows]

    def dnc_numbers(self) -> set[str]:
        with self.sessions() as session:
            return set(session.scalars(select(DncNumber.e164)))

    def barred_customers(self, customer_ids: list[int]) -> tuple[set[int], set[int]]:
        """Of these customers, the ones ``do_not_call`` now and the ones without ``consent`` now — whatever path
        changed them (the customer page, a CRM import, an erasure): (do-not-call ids, no-consent ids)."""
        with self.sessions() as session:
            rows = session.execute(select(Customer.id, Customer.do_not_call, Customer.consent)
                                   .where(Customer.id.in_(customer_ids))).all()
        return {r[0] for r in rows if r[1]}, {r[0] for r in rows if not r[2]}

    def begin_attempts(self, rows: list[tuple[int, int, int | None, str, str, str, datetime]], *,
                       sent: bool = True) -> set[str]:
        """Write attempts and mark their targets active — each only if its target is still pending (else someone
        else has it). ``rows``: (campaign, target, customer, action id, node, server, at). ``sent=False``: written
        ahead, ``sent_at`` left empty until :meth:`settle` says the Originate left. Returns the action ids
        written."""
        if not rows:
            return set()
        with self.sessions.begin() as session:
            # Two statements for the whole batch: the targets still pending become active (RETURNING says which),
            # then their attempt rows in one executemany.
            taken = set(session.scalars(
                update(CampaignTarget)
                .where(CampaignTarget.id.in_([r[1] for r in rows]), CampaignTarget.status == "pending")
                .values(status="active").returning(CampaignTarget.id)
                .execution_options(synchronize_session=False)))
            mine = [r for r in rows if r[1] in taken]
            if mine:
                session.execute(insert(_ATTEMPTS), [
                    {"campaign_id": campaign_id, "target_id": target_id, "customer_id": customer_id,
                     "action_id": action_id, "node": node, "server": server, "originated_at": at,
                     "sent_at": at if sent else None}
                    for campaign_id, target_id, customer_id, action_id, node, server, at in mine])
        return {r[3] for r in mine}

    def prepare_attempts(self, rows: list[tuple[int, int, int | None, str, str, str, datetime]]) -> set[str]:
        """:meth:`begin_attempts` ahead of the Originates (``sent_at`` empty)."""
        return self.begin_attempts(rows, sent=False)

    def settle(self, sent: list[tuple[str, datetime]], finished: list[tuple[str, str, datetime, str | None,
                                                                            str | None, datetime | None]],
               unsent: list[tuple[str, datetime, str | None]]) -> None:
        """In one transaction: Originates that left (action id, when: ``sent_at`` and ``originated_at``), then
        outcomes (as :meth:`finish_attempts`), then rows written ahead that were never sent (action id, when,
        drop reason or None — see :meth:`release_unsent`)."""
        with self.sessions.begin() as session:
            if sent:  # one executemany
                table = _ATTEMPTS
                session.execute(update(table)
                                .where(table.c.action_id == bindparam("b_action"), table.c.sent_at.is_(None))
                                .values(sent_at=bindparam("b_at"), originated_at=bindparam("b_at")),
                                [{"b_action": action_id, "b_at": at} for action_id, at in sent])
            self._finish(session, finished)
            self._unsent(session, unsent)

    def release_unsent(self, items: list[tuple[str, datetime, str | None]]) -> None:
        """Rows written ahead whose Originate was never sent: outcome ``unsent`` (not an attempt); the target goes
        back to ``pending`` — or is ``dropped`` with the reason when the gate refused it for good (DNC, consent)."""
        with self.sessions.begin() as session:
            self._unsent(session, items)

    @staticmethod
    def _unsent(session: Session, items: list[tuple[str, datetime, str | None]]) -> None:
        for action_id, at, drop in items:
            row = session.execute(select(CampaignAttempt.id, CampaignAttempt.target_id).where(
                CampaignAttempt.action_id == action_id, CampaignAttempt.outcome.is_(None),
                CampaignAttempt.sent_at.is_(None))).one_or_none()
            if row is None:
                continue  # settled, or sent after all
            session.execute(update(CampaignAttempt).where(CampaignAttempt.id == row.id)
                            .values(outcome="unsent", ended_at=at).execution_options(synchronize_session=False))
            values: dict[str, Any] = ({"status": "dropped", "drop_reason": drop[:24]} if drop else
                                      {"status": "pending"})
            session.execute(update(CampaignTarget)
                            .where(CampaignTarget.id == row.target_id, CampaignTarget.status == "active")
                            .values(**values).execution_options(synchronize_session=False))

    def begin_attempt(self, campaign_id: int, target_id: int, customer_id: int | None, action_id: str,
                      node: str, server: str, at: datetime) -> bool:
        return action_id in self.begin_attempts([(campaign_id, target_id, customer_id, action_id, node, server, at)])

    def answered(self, action_id: str, uniqueid: str | None, at: datetime) -> None:
        with self.sessions.begin() as session:
            session.execute(update(CampaignAttempt).where(CampaignAttempt.action_id == action_id)
                            .values(answered_at=at, uniqueid=uniqueid))

    def finish_attempt(self, action_id: str, outcome: str, at: datetime, *, agent_interface: str | None = None,
                       uniqueid: str | None = None, answered_at: datetime | None = None) -> None:
        self.finish_attempts([(action_id, outcome, at, agent_interface, uniqueid, answered_at)])

    def finish_attempts(self, items: list[tuple[str, str, datetime, str | None, str | None, datetime | None]]) -> None:
        """Attempts' outcomes, in one transaction: (action id, outcome, at, agent interface, uniqueid, answered at).
        Each target goes back to ``pending`` (retried after the spacing) or to ``done`` (a final outcome, or its
        attempts used up). An attempt already settled is left as it is (a repeated event)."""
        with self.sessions.begin() as session:
            self._finish(session, items)

    @staticmethod
    def _finish(session: Session, items: list[tuple[str, str, datetime, str | None, str | None, datetime | None]]
                ) -> None:
        for action_id, outcome, at, agent_interface, uniqueid, answered_at in items:
            row = session.execute(
                select(CampaignAttempt.id, CampaignAttempt.outcome, CampaignAttempt.target_id,
                       CampaignAttempt.originated_at, Campaign.max_attempts)
                .join(Campaign, Campaign.id == CampaignAttempt.campaign_id)
                .where(CampaignAttempt.action_id == action_id)).one_or_none()
            if row is None or row.outcome is not None:
                continue
            values: dict[str, Any] = {"outcome": outcome, "ended_at": at}
            if agent_interface:
                values["agent_interface"] = agent_interface
            attempt_values = session.execute(select(CampaignAttempt.uniqueid, CampaignAttempt.answered_at,
                                                    CampaignAttempt.sent_at)
                                             .where(CampaignAttempt.id == row.id)).one()
            if attempt_values.sent_at is None:  # an outcome means it was sent (its confirmation came later)
                values["sent_at"] = row.originated_at
            if attempt_values.uniqueid is None and uniqueid:
                values["uniqueid"] = uniqueid
            if attempt_values.answered_at is None and answered_at is not None:
                values["answered_at"] = answered_at
            session.execute(update(CampaignAttempt).where(CampaignAttempt.id == row.id).values(**values)
                            .execution_options(synchronize_session=False))
            target = session.execute(select(CampaignTarget.attempts, CampaignTarget.status)
                                     .where(CampaignTarget.id == row.target_id)).one_or_none()
            if target is None:
                continue
            attempts = target.attempts + 1
            status = target.status
            if status == "active":
                status = "done" if outcome in FINAL_OUTCOMES or attempts >= row.max_attempts else "pending"
            session.execute(update(CampaignTarget).where(CampaignTarget.id == row.target_id).values(
                attempts=attempts, last_outcome=outcome, last_attempt_at=row.originated_at, status=status)
                .execution_options(synchronize_session=False))

    def preview_outstanding(self) -> list[tuple[str, str | None, str, datetime | None]]:
        """Preview calls dialled (``sent_at``) and neither settled nor disposed: (action id, server, number, sent)."""
        with self.sessions() as session:
            rows = session.execute(
                select(CampaignAttempt.action_id, CampaignAttempt.server, CampaignTarget.e164,
                       CampaignAttempt.sent_at)
                .join(Campaign, Campaign.id == CampaignAttempt.campaign_id)
                .join(CampaignTarget, CampaignTarget.id == CampaignAttempt.target_id)
                .where(Campaign.mode == "preview", CampaignAttempt.outcome.is_(None),
                       CampaignAttempt.disposition.is_(None), CampaignAttempt.sent_at.is_not(None)))
            return [(r[0], r[1], r[2], r[3]) for r in rows]

    def release_undisposed(self, action_ids: list[str], at: datetime) -> None:
        """Preview calls that ended without a disposition: outcome ``undisposed`` (an attempt: retried after its
        spacing, or done at max attempts), the agent's hold on the target released."""
        with self.sessions.begin() as session:
            self._finish(session, [(a, "undisposed", at, None, None, None) for a in action_ids])
            targets = select(CampaignAttempt.target_id).where(CampaignAttempt.action_id.in_(action_ids),
                                                              CampaignAttempt.outcome == "undisposed")
            session.execute(update(CampaignTarget).where(CampaignTarget.id.in_(targets))
                            .values(held_by=None, held_until=None).execution_options(synchronize_session=False))

    def drop_target(self, target_id: int, reason: str) -> None:
        with self.sessions.begin() as session:
            session.execute(update(CampaignTarget)
                            .where(CampaignTarget.id == target_id, CampaignTarget.status == "pending")
                            .values(status="dropped", drop_reason=reason[:24]))

    def unsettled(self, node: str | None = None, before: datetime | None = None
                  ) -> list[tuple[str, int, str | None, str | None, bool]]:
        """The dialer's attempts without an outcome (written before ``before``; preview calls are the agents'):
        (action id, campaign, server, uniqueid, sent — False: written ahead, not known to have left)."""
        with self.sessions() as session:
            query = (select(CampaignAttempt.action_id, CampaignAttempt.campaign_id, CampaignAttempt.server,
                            CampaignAttempt.uniqueid, CampaignAttempt.sent_at)
                     .join(Campaign, Campaign.id == CampaignAttempt.campaign_id)
                     .where(CampaignAttempt.outcome.is_(None), Campaign.mode != "preview",
                            CampaignAttempt.agent_interface.is_(None)))
            if node is not None:
                query = query.where(CampaignAttempt.node == node)
            if before is not None:
                query = query.where(CampaignAttempt.originated_at < before)
            return [(r[0], r[1], r[2], r[3], r[4] is not None) for r in session.execute(query)]


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
