"""The campaigns service: create campaigns and their targets, start / pause / resume, progress, the DNC list, and
what a disposition does (a refusal stops every marketing campaign for the customer). asyncio; SQL runs in the
thread pool (``run_blocking``), one transaction per call.

Targets are resolved once, at creation: a saved filter (tier, store, vehicle model, due dates, consent) or a list
of customer ids, each customer's primary number (else its first). The compliance gate is *not* applied here — the
dialer asks it at the moment of every dial — so the counts shown before start include everyone the filter matched.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ccserver.campaigns.settings import CampaignSettings
from ccserver.campaigns.spec import CampaignSpec
from ccserver.clock import LoopClock
from ccserver.db.models import (
    Campaign,
    CampaignAttempt,
    CampaignTarget,
    Customer,
    DncNumber,
    PhoneNumber,
    Queue,
    ServiceVisit,
    Store,
    Vehicle,
    customer_phones,
)
from ccserver.phonetext import number_reason
from ccserver.texts import Field, T
from routing.numbers import normalize

__all__ = ["CampaignError", "CampaignService", "Manager"]

log = logging.getLogger("ccserver.campaigns")

# status -> the actions allowed from it, and where each leads.
MOVES = {"start": ({"draft"}, "running"), "pause": ({"running"}, "paused"), "resume": ({"paused"}, "running")}
REFUSAL = "refused"
# What an agent may say of an answered attempt; the ones that open a ticket, and of which kind.
DISPOSITIONS = ("reached", "booked", "callback", "complaint", "refused", "wrong_number", "no_answer", "busy")
# Preview mode: the agent's disposition is the attempt's outcome (the dialer does not follow those calls); these
# two say the customer was not reached, so only a preview attempt may have them.
UNREACHED = ("no_answer", "busy")
TICKET_FOR = {"booked": "appointment", "callback": "callback", "complaint": "complaint"}


class CampaignError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


@dataclass(frozen=True)
class Manager:
    user_id: int | None
    name: str


def _sent_attempt() -> Any:
    """Attempts that were dialled: not the dialer's lines written ahead and never sent (``unsent``)."""
    return or_(CampaignAttempt.outcome.is_(None), CampaignAttempt.outcome != "unsent")


def _rowcount(result: Any) -> int:
    return int(result.rowcount or 0)  # a CursorResult for DML (the typing says Result)


def _now_iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


class CampaignService:
    def __init__(self, session_factory: sessionmaker[Session], run_blocking: Callable[..., Awaitable[Any]], *,
                 settings: CampaignSettings | None = None, clock: Any = None, default_region: str = "CN",
                 default_zone: str = "UTC") -> None:
        self.sessions = session_factory
        self.settings = settings or CampaignSettings()
        self.clock = clock if clock is not None else LoopClock()
        self.region = default_region
        self.default_zone = default_zone  # for numbers without a zone of their own, when the store has none
        self.invalidator: Any = None  # ccserver.customers.changes.Invalidator: rescored customers leave the cache
        # Told after the commit of a DNC entry or a refusal (keywords numbers= / refused=): the dialer's forbid,
        # so a line it wrote ahead is not sent.
        self.on_forbid: list[Callable[..., None]] = []
        self._run = run_blocking
        # Who a target's number is (ccserver.identification): `ccserver run` gives the look-ups service; else one
        # over these sessions is made when first needed. Either way the rule is routing's.
        self.identification: Any = None

    def _forbid(self, **what: Any) -> None:
        for listener in self.on_forbid:
            try:
                listener(**what)
            except Exception:  # noqa: BLE001 - the dialer's next refresh reads the same from SQL
                log.exception("campaigns: a forbid listener failed")

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time(), UTC)

    def e164(self, raw: Any, field: str = "number") -> str:
        result = normalize(raw if isinstance(raw, str) else None, region=self.region)
        if not isinstance(raw, str) or result.e164 is None:
            raise CampaignError(400, T("{field} must be a phone number (E.164 such as +8613800138000)",
                                       field=Field(field)), field)
        return result.e164

    # -- campaigns ---------------------------------------------------------------------------------------------
    async def create(self, who: Manager, spec: CampaignSpec, *, tickets: Any = None,
                     actor: Any = None) -> dict[str, Any]:
        """``tickets`` (a TicketService) and ``actor`` (its Actor: whose worklist) for ``{"source": …}`` targets."""
        rows = await self._source_rows(spec, tickets, actor)
        result: dict[str, Any] = await self._run(self._create, who, spec, self.now(), rows)
        return result

    async def _source_rows(self, spec: CampaignSpec, tickets: Any, actor: Any
                           ) -> list[tuple[int | None, str, str | None, datetime | None]] | None:
        """Targets from the tickets service's call-back worklist (ccserver/campaigns/sources.py), or None."""
        source = spec.targets.get("source")
        if source is None:
            return None
        if tickets is None or actor is None:
            raise CampaignError(503, T("tickets are not configured"), "targets.source")
        from ccserver.campaigns.sources import worklist_targets

        items = await tickets.callbacks(actor, 10_000)
        rows, _unusable = worklist_targets(items, source, self.region)
        return rows

    def _store_id(self, session: Session, ref: int | str | None, field: str) -> int | None:
        if ref is None:
            return None
        column = Store.id if isinstance(ref, int) else Store.code
        found = session.scalar(select(Store.id).where(column == ref))
        if found is None:
            raise CampaignError(422, T("{field}: no such store", field=Field(field)), field)
        return int(found)

    def _create(self, who: Manager, spec: CampaignSpec, now: datetime,
                rows: list[tuple[int | None, str, str | None, datetime | None]] | None = None) -> dict[str, Any]:
        with self.sessions.begin() as session:
            store_id = self._store_id(session, spec.store, "store")
            if session.scalar(select(Queue.id).where(Queue.name == spec.queue)) is None:
                raise CampaignError(422, T("{field}: no queue named {queue}", field=Field("queue"),
                                           queue=repr(spec.queue)), "queue")
            campaign = Campaign(name=spec.name, type=spec.type, mode=spec.mode, status="draft", queue=spec.queue,
                                store_id=store_id, window=spec.window, targets_spec=spec.targets,
                                tiers_first=spec.tiers_first,
                                max_attempts=spec.max_attempts or self.settings.policy.max_attempts,
                                created_by=who.user_id, created_at=now, updated_at=now, script=spec.script)
            session.add(campaign)
            session.flush()
            if rows is None:
                rows = list(self._targets_now(session, spec.targets, now))
            if not rows:
                raise CampaignError(422, T("targets: no customer with a phone number matches"), "targets")
            session.execute(insert(CampaignTarget), [
                {"campaign_id": campaign.id, "customer_id": cid, "e164": e164, "tier": tier, "order_at": order,
                 "status": "pending", "attempts": 0} for cid, e164, tier, order in rows])
            return {"id": campaign.id, "targets": len(rows)}

    async def count(self, spec: CampaignSpec, *, tickets: Any = None, actor: Any = None) -> dict[str, Any]:
        """A dry run of ``create``: the same selection, then the compliance gate as it would answer now — how many
        targets may be called, how many the gate excludes and why (``dnc_customer``, ``dnc_number``,
        ``no_consent``), and how many are only outside the calling window now. Nothing is written."""
        rows = await self._source_rows(spec, tickets, actor)
        result: dict[str, Any] = await self._run(self._count, spec, self.now(), rows)
        return result

    def _count(self, spec: CampaignSpec, now: datetime,
               rows: list[tuple[int | None, str, str | None, datetime | None]] | None = None) -> dict[str, Any]:
        from ccserver.campaigns.compliance import check
        from ccserver.dialer.engine import plan_campaign
        from ccserver.dialer.store import CampaignRow, TargetRow

        with self.sessions() as session:
            store_id = self._store_id(session, spec.store, "store")
            if session.scalar(select(Queue.id).where(Queue.name == spec.queue)) is None:
                raise CampaignError(422, T("{field}: no queue named {queue}", field=Field("queue"),
                                           queue=repr(spec.queue)), "queue")
            zone = session.scalar(select(Store.time_zone).where(Store.id == store_id)) if store_id else None
            if rows is None:
                rows = list(self._targets_now(session, spec.targets, now))
            flags = {cid: (bool(dnc), bool(consent)) for cid, dnc, consent in session.execute(
                select(Customer.id, Customer.do_not_call, Customer.consent)
                .where(Customer.id.in_([r[0] for r in rows if r[0] is not None])))} if rows else {}
            dnc = set(session.scalars(select(DncNumber.e164)))
        campaign = CampaignRow(0, spec.type, spec.mode, spec.queue, spec.window, spec.tiers_first,
                               spec.max_attempts or self.settings.policy.max_attempts, zone, None, None)
        none = (False, False)  # a number no customer has: no do-not-call of its own, no consent
        targets = [TargetRow(i, cid, e164, tier, order, 0, None, None,
                             *(flags.get(cid, none) if cid is not None else none))
                   for i, (cid, e164, tier, order) in enumerate(rows)]
        _queue, contacts, rules = plan_campaign(campaign, targets, self.settings, self.default_zone)
        excluded: dict[str, int] = {}
        eligible = waiting = 0
        for contact in contacts.values():
            verdict = check(contact, rules.window, rules.policy, dnc, now, rules.marketing_types)
            if verdict.allowed:
                eligible += 1
            elif verdict.retry_at is not None:
                eligible += 1
                waiting += 1
            else:
                excluded[verdict.reason or "refused"] = excluded.get(verdict.reason or "refused", 0) + 1
        return {"matched": len(rows), "eligible": eligible, "outside_window_now": waiting,
                "excluded": dict(sorted(excluded.items())), "excluded_total": sum(excluded.values())}

    def _targets_now(self, session: Session, targets: dict[str, Any], now: datetime
                     ) -> list[tuple[int, str, str, datetime | None]]:
        if "due" in targets:  # today in the server's zone; the daily refresh adds those due later
            from zoneinfo import ZoneInfo

            return self._due(session, targets["due"], now.astimezone(ZoneInfo(self.default_zone)).date())
        return self._resolve(session, targets)

    def _resolve(self, session: Session, targets: dict[str, Any]) -> list[tuple[int, str, str, datetime | None]]:
        """(customer id, e164, tier, order) per matching customer with a number; one row per number."""
        order_col: Any = None
        query = select(Customer.id, Customer.tier)
        if "customer_ids" in targets:
            query = query.where(Customer.id.in_(targets["customer_ids"]))
        else:
            f = targets["filter"]
            if "tiers" in f:
                query = query.where(Customer.tier.in_(f["tiers"]))
            if "store" in f:
                query = query.where(Customer.home_store_id == self._store_id(session, f["store"],
                                                                             "targets.filter.store"))
            if "consent" in f:
                query = query.where(Customer.consent.is_(f["consent"]))
            vehicle_terms = []
            if "model" in f:
                vehicle_terms.append(Vehicle.model == f["model"])
            if "maintenance_due_before" in f:
                vehicle_terms.append(Vehicle.next_maintenance_due < date.fromisoformat(f["maintenance_due_before"]))
                order_col = func.min(Vehicle.next_maintenance_due)
            if "insurance_expiry_before" in f:
                vehicle_terms.append(Vehicle.insurance_expiry < date.fromisoformat(f["insurance_expiry_before"]))
                order_col = func.min(Vehicle.insurance_expiry)
            if vehicle_terms:
                sub = select(Vehicle.customer_id).where(and_(*vehicle_terms))
                query = query.where(Customer.id.in_(sub))
            if "last_visit_before" in f:
                cutoff = datetime.fromisoformat(f["last_visit_before"]).replace(tzinfo=UTC)
                last = (select(ServiceVisit.customer_id).group_by(ServiceVisit.customer_id)
                        .having(func.max(ServiceVisit.opened_at) < cutoff))
                query = query.where(Customer.id.in_(last))
        return self._numbers(session, dict(session.execute(query).all()), order_col)

    def _due(self, session: Session, due: dict[str, Any], today: date
             ) -> list[tuple[int, str, str, datetime | None]]:
        """The customers a due-date campaign takes on ``today`` (ccserver/campaigns/refresh.py), with numbers."""
        from ccserver.campaigns.refresh import due_range

        first, last = due_range(due["kind"], due.get("days"), today)
        order_col: Any = None
        if due["kind"] == "post_service":
            start = datetime(first.year, first.month, first.day, tzinfo=UTC)
            sub: Any = select(ServiceVisit.customer_id).where(
                ServiceVisit.opened_at >= start, ServiceVisit.opened_at < start + timedelta(days=1),
                ServiceVisit.status != "cancelled")
        else:
            column = {"maintenance": Vehicle.next_maintenance_due, "insurance": Vehicle.insurance_expiry,
                      "post_purchase": Vehicle.purchase_date}[due["kind"]]
            sub = select(Vehicle.customer_id).where(column >= first, column <= last)
            order_col = func.min(column)
        query = select(Customer.id, Customer.tier).where(Customer.id.in_(sub))
        return self._numbers(session, dict(session.execute(query).all()), order_col)

    async def refresh_due(self, today: date) -> dict[int, int]:
        """Add the customers due on ``today`` to every draft, running or paused due-date campaign (numbers a
        campaign has already are skipped). Returns {campaign id: targets added} for those that grew."""
        result: dict[int, int] = await self._run(self._refresh_due, today)
        return result

    def _refresh_due(self, today: date) -> dict[int, int]:
        added: dict[int, int] = {}
        with self.sessions.begin() as session:
            for campaign in session.scalars(select(Campaign).where(Campaign.status.in_(("draft", "running",
                                                                                         "paused")))):
                due = (campaign.targets_spec or {}).get("due")
                if not isinstance(due, dict):
                    continue
                have = set(session.scalars(select(CampaignTarget.e164)
                                           .where(CampaignTarget.campaign_id == campaign.id)))
                fresh = [r for r in self._due(session, due, today) if r[1] not in have]
                if fresh:
                    session.execute(insert(CampaignTarget), [
                        {"campaign_id": campaign.id, "customer_id": cid, "e164": e164, "tier": tier,
                         "order_at": order, "status": "pending", "attempts": 0} for cid, e164, tier, order in fresh])
                    added[campaign.id] = len(fresh)
        return added

    def _numbers(self, session: Session, customers: dict[int, Any], order_col: Any
                 ) -> list[tuple[int, str, str, datetime | None]]:
        orders: dict[int, Any] = {}
        if order_col is not None and customers:
            orders = dict(session.execute(select(Vehicle.customer_id, order_col)
                                          .where(Vehicle.customer_id.in_(list(customers)))
                                          .group_by(Vehicle.customer_id)).all())
        phones = session.execute(
            select(customer_phones.c.customer_id, PhoneNumber.e164)
            .join(PhoneNumber, PhoneNumber.id == customer_phones.c.phone_id)
            .where(customer_phones.c.customer_id.in_(list(customers)))
            .order_by(customer_phones.c.customer_id, customer_phones.c.is_primary.desc(), PhoneNumber.e164)).all()
        out: list[tuple[int, str, str, datetime | None]] = []
        seen_customer: set[int] = set()
        seen_number: set[str] = set()
        for cid, e164 in phones:
            if cid in seen_customer or e164 in seen_number:
                continue  # one number per customer; a shared number once
            seen_customer.add(cid)
            seen_number.add(e164)
            due = orders.get(cid)
            order = datetime(due.year, due.month, due.day, tzinfo=UTC) if isinstance(due, date) else None
            out.append((cid, e164, customers[cid], order))
        return out

    async def move(self, who: Manager, campaign_id: int, action: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._run(self._move, campaign_id, action, self.now())
        return result

    def _move(self, campaign_id: int, action: str, now: datetime) -> dict[str, Any]:
        allowed, to = MOVES[action]
        with self.sessions.begin() as session:
            campaign = session.get(Campaign, campaign_id, with_for_update=True)
            if campaign is None:
                raise CampaignError(404, T("no such campaign"))
            if campaign.status not in allowed:
                raise CampaignError(409, T("cannot {action} a {status} campaign", action=action,
                                           status=campaign.status), "status")
            before = campaign.status
            campaign.status, campaign.updated_at = to, now
            if action == "start":
                campaign.started_at = now
            return {"id": campaign_id, "status": to, "from": before}

    async def get(self, campaign_id: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._run(self._get, campaign_id)
        return result

    def _get(self, campaign_id: int) -> dict[str, Any]:
        with self.sessions() as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                raise CampaignError(404, T("no such campaign"))
            return self._describe(campaign, self._progress(session, [campaign_id]).get(campaign_id, {}))

    async def campaigns(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._run(self._list)
        return result

    def _list(self) -> list[dict[str, Any]]:
        with self.sessions() as session:
            campaigns = list(session.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(500)))
            progress = self._progress(session, [c.id for c in campaigns])
            return [self._describe(c, progress.get(c.id, {})) for c in campaigns]

    @staticmethod
    def _describe(c: Campaign, progress: dict[str, Any]) -> dict[str, Any]:
        return {"id": c.id, "name": c.name, "type": c.type, "mode": c.mode, "status": c.status, "queue": c.queue,
                "store_id": c.store_id, "window": c.window, "targets_spec": c.targets_spec,
                "tiers_first": c.tiers_first, "max_attempts": c.max_attempts, "created_at": _now_iso(c.created_at),
                "started_at": _now_iso(c.started_at), "script": c.script, "progress": progress}

    @staticmethod
    def _progress(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        out: dict[int, dict[str, Any]] = {
            i: {"targets": 0, "pending": 0, "done": 0, "dropped": 0, "dialed": 0, "answered": 0, "reached": 0,
                "abandoned": 0, "abandon_rate": 0.0, "appointments": 0} for i in ids}
        for cid, status, count in session.execute(
                select(CampaignTarget.campaign_id, CampaignTarget.status, func.count())
                .where(CampaignTarget.campaign_id.in_(ids)).group_by(CampaignTarget.campaign_id,
                                                                     CampaignTarget.status)):
            out[cid]["targets"] += count
            if status in ("pending", "active"):
                out[cid]["pending"] += count
            else:
                out[cid][status] += count
        a = CampaignAttempt
        for cid, dialed, answered, reached, abandoned, booked in session.execute(
                select(a.campaign_id, func.count(),
                       func.count(a.answered_at),
                       func.sum(case((a.outcome.in_(("reached", "refused")), 1), else_=0)),
                       func.sum(case((a.outcome == "abandoned", 1), else_=0)),
                       func.sum(case((a.disposition == "booked", 1), else_=0)))
                .where(a.campaign_id.in_(ids), _sent_attempt()).group_by(a.campaign_id)):
            row = out[cid]
            row.update(dialed=int(dialed), answered=int(answered), reached=int(reached or 0),
                       abandoned=int(abandoned or 0), appointments=int(booked or 0))
            row["abandon_rate"] = round(row["abandoned"] / row["answered"], 4) if row["answered"] else 0.0
        return out

    # -- targets from a CSV -------------------------------------------------------------------------------------
    async def import_targets(self, who: Manager, campaign_id: int, csv_text: str) -> dict[str, Any]:
        """Targets from a CSV (:mod:`ccserver.campaigns.target_csv`), row by row: good rows are added (a number a
        customer has is linked to that customer), bad ones reported; a number the campaign has already is counted,
        not added. Not into a finished campaign. The gate still applies at dial time."""
        from ccserver.campaigns.target_csv import parse_targets_csv

        parsed = parse_targets_csv(csv_text, self.region)
        # A company contact's number stays unlinked: the company's consent (and its one call at a time) is not
        # the contact's; the gate then treats it as a number without consent.
        owners = await self._identification().find_many([e164 for _, e164, _ in parsed.good],
                                                        company_contacts=False)
        added, already, linked = await self._run(self._import_targets, campaign_id, parsed.good, owners)
        return {"rows": parsed.rows, "added": added, "already": already, "duplicates": parsed.duplicates,
                "customers": linked, "errors": parsed.errors[:1000], "error_count": len(parsed.errors)}

    def _identification(self) -> Any:
        if self.identification is None:
            from ccserver.customers.directory import CustomerDirectory
            from ccserver.identification import IdentificationService

            self.identification = IdentificationService(CustomerDirectory(self.sessions), None, region=self.region,
                                                        run_blocking=self._run, clock=None)
        return self.identification

    def _import_targets(self, campaign_id: int, good: list[tuple[int, str, datetime | None]],
                        identities: dict[str, Any]) -> tuple[int, int, int]:
        with self.sessions.begin() as session:
            campaign = session.get(Campaign, campaign_id, with_for_update=True)
            if campaign is None:
                raise CampaignError(404, T("no such campaign"))
            if campaign.status == "finished":
                raise CampaignError(409, T("the campaign is finished"), "status")
            numbers = [e164 for _, e164, _ in good]
            have = set(session.scalars(select(CampaignTarget.e164).where(
                CampaignTarget.campaign_id == campaign_id, CampaignTarget.e164.in_(numbers)))) if numbers else set()
            # The customer a call from the number would be identified as (identification's rule), and its tier.
            owners = {e164: (int(identity.customer.id), identity.customer.tier)
                      for e164, identity in identities.items() if identity.customer is not None}
            fresh = [(e164, order) for _, e164, order in good if e164 not in have]
            if fresh:
                session.execute(insert(CampaignTarget), [
                    {"campaign_id": campaign_id, "customer_id": owners.get(e164, (None, None))[0], "e164": e164,
                     "tier": owners.get(e164, (None, None))[1], "order_at": order, "status": "pending",
                     "attempts": 0} for e164, order in fresh])
            return len(fresh), len(good) - len(fresh), sum(1 for e164, _ in fresh if e164 in owners)

    # -- results ------------------------------------------------------------------------------------------------
    async def attempts(self, campaign_id: int) -> list[dict[str, Any]]:
        """The campaign's attempts, oldest first (for the results per day and the CSV export)."""
        result: list[dict[str, Any]] = await self._run(self._attempts, campaign_id)
        return result

    def _attempts(self, campaign_id: int) -> list[dict[str, Any]]:
        with self.sessions() as session:
            if session.get(Campaign, campaign_id) is None:
                raise CampaignError(404, T("no such campaign"))
            a = CampaignAttempt
            rows = session.execute(
                select(a.id, a.target_id, a.customer_id, CampaignTarget.e164, a.originated_at, a.answered_at,
                       a.ended_at, a.outcome, a.disposition, a.ticket_id, a.agent_interface)
                .join(CampaignTarget, CampaignTarget.id == a.target_id)
                .where(a.campaign_id == campaign_id, _sent_attempt()).order_by(a.originated_at, a.id))
            keys = ("attempt_id", "target_id", "customer_id", "number", "originated_at", "answered_at", "ended_at",
                    "outcome", "disposition", "ticket_id", "agent_interface")
            return [dict(zip(keys, row, strict=True)) for row in rows]

    async def dnc_list(self, limit: int = 1000) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._run(self._dnc_list, limit)
        return result

    def _dnc_list(self, limit: int) -> list[dict[str, Any]]:
        with self.sessions() as session:
            return [{"number": d.e164, "added_at": _now_iso(d.added_at), "source": d.source}
                    for d in session.scalars(select(DncNumber).order_by(DncNumber.added_at.desc(), DncNumber.e164)
                                             .limit(limit))]

    # -- the number-level DNC list ---------------------------------------------------------------------------
    async def dnc_add(self, who: Manager, raw: Any, source: str = "api") -> dict[str, Any]:
        number = self.e164(raw)
        result: dict[str, Any] = await self._run(self._dnc_add, who, number, source, self.now())
        self._forbid(numbers=[number])
        return result

    def _dnc_add(self, who: Manager, number: str, source: str, now: datetime) -> dict[str, Any]:
        with self.sessions.begin() as session:
            if session.get(DncNumber, number) is not None:
                return {"number": number, "added": False}
            session.add(DncNumber(e164=number, added_at=now, added_by=who.user_id, source=source))
            return {"number": number, "added": True}

    async def dnc_import(self, who: Manager, csv_text: str) -> dict[str, Any]:
        """A CSV of numbers (a ``number`` column, or the first column; a header row is optional), checked row by
        row: valid numbers are added, each bad row is reported with its row number and why; nothing else stops
        the import."""
        import csv
        import io

        numbers: list[str] = []
        errors: list[dict[str, Any]] = []
        rows = list(csv.reader(io.StringIO(csv_text)))
        column = 0
        start = 0
        if rows and any(cell.strip().lower() in ("number", "phone", "号码", "电话") for cell in rows[0]):
            column = next(i for i, cell in enumerate(rows[0])
                          if cell.strip().lower() in ("number", "phone", "号码", "电话"))
            start = 1
        for index, row in enumerate(rows[start:], start=start + 1):
            if not row or not any(cell.strip() for cell in row):
                continue
            raw = row[column].strip() if column < len(row) else ""
            result = normalize(raw, region=self.region)
            if result.e164 is None:
                errors.append({"row": index, "value": raw[:40], "error": T("not a phone number ({reason})",
                                                                              reason=number_reason(result.reason))})
            else:
                numbers.append(result.e164)
        added: int = await self._run(self._dnc_add_many, who, sorted(set(numbers)), self.now())
        self._forbid(numbers=sorted(set(numbers)))
        return {"rows": len(numbers) + len(errors), "added": added, "already": len(set(numbers)) - added,
                "duplicates": len(numbers) - len(set(numbers)), "errors": errors[:1000], "error_count": len(errors)}

    def _dnc_add_many(self, who: Manager, numbers: list[str], now: datetime) -> int:
        with self.sessions.begin() as session:
            have = set(session.scalars(select(DncNumber.e164).where(DncNumber.e164.in_(numbers)))) if numbers else set()
            fresh = [n for n in numbers if n not in have]
            if fresh:
                session.execute(insert(DncNumber), [{"e164": n, "added_at": now, "added_by": who.user_id,
                                                     "source": "csv"} for n in fresh])
            return len(fresh)

    async def dnc_remove(self, who: Manager, raw: Any) -> dict[str, Any]:
        number = self.e164(raw)
        result: dict[str, Any] = await self._run(self._dnc_remove, number)
        return result

    def _dnc_remove(self, number: str) -> dict[str, Any]:
        with self.sessions.begin() as session:
            gone = _rowcount(session.execute(delete(DncNumber).where(DncNumber.e164 == number)))
            if not gone:
                raise CampaignError(404, T("number not on the DNC list"), "number")
            return {"number": number, "removed": True}

    async def dnc_numbers(self) -> set[str]:
        result: set[str] = await self._run(self._dnc_numbers)
        return result

    def _dnc_numbers(self) -> set[str]:
        with self.sessions() as session:
            return set(session.scalars(select(DncNumber.e164)))

    # -- dispositions ------------------------------------------------------------------------------------------
    async def dispose(self, who: Manager, campaign_id: int, attempt_id: int, disposition: Any, note: Any = None,
                      *, tickets: Any = None, actor: Any = None) -> dict[str, Any]:
        """The agent's disposition of an answered attempt. ``callback`` / ``booked`` / ``complaint`` open a ticket
        through the tickets service (``tickets``: a TicketService, ``actor``: its Actor); ``refused`` ends the
        contact and stops every marketing campaign for the customer (consent withdrawn)."""
        if disposition not in DISPOSITIONS:
            raise CampaignError(400, T("disposition must be one of {dispositions}",
                                       dispositions=', '.join(DISPOSITIONS)), "disposition")
        if note is not None and (not isinstance(note, str) or len(note) > 2000):
            raise CampaignError(400, T("note must be text of at most 2000 characters"), "note")
        facts: dict[str, Any] = await self._run(self._attempt_facts, campaign_id, attempt_id)
        if disposition in UNREACHED and not facts["preview"]:
            raise CampaignError(400, T("{disposition} is for preview calls; the dialer records outcomes itself",
                                       disposition=disposition),
                                "disposition")
        ticket_id = None
        kind = TICKET_FOR.get(disposition)
        if kind is not None:
            if tickets is None:
                raise CampaignError(503, T("tickets are not configured"))
            from ccserver.tickets.store import NewTicket, TicketError

            subject = f"{facts['campaign_name']}: {disposition}"[:200]
            try:
                ticket = await tickets.create(NewTicket(
                    kind=kind, subject=subject, body=note or None, store_id=facts["store_id"],
                    customer_id=facts["customer_id"], uniqueid=facts["uniqueid"], contact_e164=facts["e164"]), actor)
            except TicketError as exc:
                raise CampaignError(exc.status, exc.message, exc.field) from None
            ticket_id = int(ticket["id"])
        if facts["preview"] and facts["outcome"] is None:
            # The agent's word settles the preview attempt (attempts counted, the target done or back to the pool).
            from ccserver.dialer.store import DialerStore

            now = self.now()
            outcome = disposition if disposition in UNREACHED else REFUSAL if disposition == REFUSAL else "reached"
            await self._run(DialerStore(self.sessions).finish_attempts, [
                (facts["action_id"], outcome, now, None, None, None if disposition in UNREACHED else now)])
            await self._run(self._release_hold, attempt_id)
        result: dict[str, Any] = await self._run(self._dispose, attempt_id, disposition, ticket_id, self.now())
        invalidation = result.pop("_invalidation", None)
        if invalidation and self.invalidator is not None:
            await self.invalidator.apply(invalidation)
        if disposition == REFUSAL and facts["customer_id"] is not None:
            result["marketing_stopped"] = await self.refused(int(facts["customer_id"]))
        return result

    def _attempt_facts(self, campaign_id: int, attempt_id: int) -> dict[str, Any]:
        with self.sessions() as session:
            row = session.execute(
                select(CampaignAttempt, Campaign.name, Campaign.store_id, CampaignTarget.e164)
                .join(Campaign, Campaign.id == CampaignAttempt.campaign_id)
                .join(CampaignTarget, CampaignTarget.id == CampaignAttempt.target_id)
                .where(CampaignAttempt.id == attempt_id, CampaignAttempt.campaign_id == campaign_id)).one_or_none()
            if row is None:
                raise CampaignError(404, T("no such attempt in this campaign"), "attempt_id")
            attempt, name, store_id, e164 = row
            preview = session.scalar(select(Campaign.mode).where(Campaign.id == campaign_id)) == "preview"
            if attempt.answered_at is None and not (preview and attempt.outcome is None):
                raise CampaignError(409, T("the attempt was not answered"), "attempt_id")
            if attempt.disposition is not None:
                raise CampaignError(409, T("already disposed ({disposition})", disposition=attempt.disposition),
                                    "attempt_id")
            return {"campaign_name": name, "store_id": store_id, "customer_id": attempt.customer_id,
                    "uniqueid": attempt.uniqueid, "e164": e164, "preview": preview, "outcome": attempt.outcome,
                    "action_id": attempt.action_id}

    def _release_hold(self, attempt_id: int) -> None:
        with self.sessions.begin() as session:
            target_id = session.scalar(select(CampaignAttempt.target_id).where(CampaignAttempt.id == attempt_id))
            session.execute(update(CampaignTarget).where(CampaignTarget.id == target_id)
                            .values(held_by=None, held_until=None))

    def _dispose(self, attempt_id: int, disposition: str, ticket_id: int | None, now: datetime) -> dict[str, Any]:
        with self.sessions.begin() as session:
            attempt = session.get(CampaignAttempt, attempt_id, with_for_update=True)
            assert attempt is not None
            attempt.disposition, attempt.ticket_id = disposition, ticket_id
            if disposition == REFUSAL:
                attempt.outcome = REFUSAL
                attempt.ended_at = attempt.ended_at or now
                target = session.get(CampaignTarget, attempt.target_id)
                if target is not None:
                    target.last_outcome, target.status = REFUSAL, "done"
            out: dict[str, Any] = {"attempt_id": attempt_id, "disposition": disposition, "ticket_id": ticket_id}
            if attempt.customer_id is not None:
                # The disposition is a signal of the customer's value score (routing/value.py "campaign"):
                # rescored in this transaction against the current cut-offs.
                from ccserver.customers.changes import campaign_disposed

                session.flush()
                out["_invalidation"] = campaign_disposed(session, attempt.customer_id, tz=self.default_zone)
            return out

    async def refused(self, customer_id: int) -> int:
        """The customer refused in a call: consent withdrawn, and every open target of a marketing campaign for
        them dropped (``refused``). Returns the targets dropped."""
        dropped: int = await self._run(self._refused, customer_id, self.now())
        self._forbid(refused=[customer_id])
        return dropped

    def _refused(self, customer_id: int, now: datetime) -> int:
        marketing = sorted(self.settings.marketing_types)
        with self.sessions.begin() as session:
            session.execute(update(Customer).where(Customer.id == customer_id).values(consent=False))
            ids = select(Campaign.id).where(Campaign.type.in_(marketing))
            result = session.execute(
                update(CampaignTarget)
                .where(CampaignTarget.customer_id == customer_id, CampaignTarget.campaign_id.in_(ids),
                       or_(CampaignTarget.status == "pending", CampaignTarget.status == "active"))
                .values(status="dropped", drop_reason=REFUSAL))
            count = _rowcount(result)
            log.info("customer %s refused: consent withdrawn, %d marketing target(s) stopped", customer_id, count)
            return count
