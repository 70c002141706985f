"""Preview mode: the agent sees the next contact (customer card + call script) before anything is dialled, then
dials it (their own phone rings first: the desktop's click-to-dial) or skips it with a reason.

- ``next``: running *preview* campaigns of the queues the agent is signed in to; the target is picked by the same
  planner and compliance gate as the dialer's (:func:`ccserver.dialer.engine.plan_campaign` +
  :func:`ccserver.campaigns.planner.pick`), one active contact per customer across campaigns, and is then held for
  the agent (``status = active``, ``held_by``, ``held_until``) so no one else gets it. Asked again, the agent gets
  the contact they hold. A hold that ran out without a dial goes back to the pool.
- ``dial``: the gate is asked again at that moment (the window may have closed); the attempt row is written before
  the Originate (like the dialer's), then :meth:`ccserver.desktop.service.DesktopService.dial` rings the agent's
  signed-in phone and, answered, dials the customer with the store's DID; the row takes the Originate's ActionID.
- ``skip``: ``later`` (back to the pool, not offered again until the hold would have run out) or a reason that
  ends the contact (``wrong_number``, ``not_suitable``, ``other``: dropped as ``skip:<reason>``).

The attempt's outcome is the agent's disposition (``POST /api/campaigns/{id}/dispositions``): the dialer does not
follow preview calls.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from ccserver.campaigns.compliance import check
from ccserver.campaigns.planner import pick
from ccserver.campaigns.service import CampaignError, CampaignService
from ccserver.db.models import Campaign, CampaignAttempt, CampaignTarget
from ccserver.dialer.engine import _collect, plan_campaign
from ccserver.dialer.store import DialerStore, TargetRow
from ccserver.texts import T

__all__ = ["SKIP_REASONS", "PreviewService"]

log = logging.getLogger("ccserver.campaigns.preview")

# reason -> dropped for good (True) or back to the pool (False)
SKIP_REASONS = {"later": False, "wrong_number": True, "not_suitable": True, "other": True}


def _unsettled(target_id: Any) -> Any:
    return exists().where(CampaignAttempt.target_id == target_id, CampaignAttempt.outcome.is_(None))


class PreviewStore:
    """The SQL of preview mode (blocking; called through ``run_blocking``)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def release_expired(self, now: datetime) -> int:
        """Holds that ran out before a dial: back to the pool."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(CampaignTarget)
                .where(CampaignTarget.status == "active", CampaignTarget.held_by.is_not(None),
                       CampaignTarget.held_until < now, ~_unsettled(CampaignTarget.id))
                .values(status="pending", held_by=None, held_until=None)
                .execution_options(synchronize_session=False))
            return int(getattr(result, "rowcount", 0) or 0)

    def held(self, user_id: int) -> int | None:
        with self.sessions() as session:
            found = session.scalar(select(CampaignTarget.id).where(CampaignTarget.held_by == user_id,
                                                                   CampaignTarget.status == "active")
                                   .order_by(CampaignTarget.id).limit(1))
            return int(found) if found is not None else None

    def resting(self, campaign_id: int, now: datetime) -> set[int]:
        """Targets skipped "later" whose rest has not run out."""
        with self.sessions() as session:
            return set(session.scalars(select(CampaignTarget.id).where(
                CampaignTarget.campaign_id == campaign_id, CampaignTarget.status == "pending",
                CampaignTarget.held_until > now)))

    def busy_customers(self) -> set[int]:
        """Customers with a contact in progress in any campaign (one active attempt per customer)."""
        with self.sessions() as session:
            return {int(c) for c in session.scalars(select(CampaignTarget.customer_id).where(
                CampaignTarget.status == "active", CampaignTarget.customer_id.is_not(None))) if c is not None}

    def hold(self, target_id: int, user_id: int, until: datetime) -> bool:
        with self.sessions.begin() as session:
            result = session.execute(
                update(CampaignTarget).where(CampaignTarget.id == target_id, CampaignTarget.status == "pending")
                .values(status="active", held_by=user_id, held_until=until)
                .execution_options(synchronize_session=False))
            return bool(getattr(result, "rowcount", 0))

    def target(self, target_id: int) -> dict[str, Any] | None:
        with self.sessions() as session:
            row = session.execute(select(CampaignTarget, Campaign)
                                  .join(Campaign, Campaign.id == CampaignTarget.campaign_id)
                                  .where(CampaignTarget.id == target_id)).one_or_none()
            if row is None:
                return None
            t, c = row
            attempt = session.execute(select(CampaignAttempt.id, CampaignAttempt.action_id).where(
                CampaignAttempt.target_id == t.id, CampaignAttempt.outcome.is_(None))
                .order_by(CampaignAttempt.id.desc()).limit(1)).one_or_none()
            return {"id": t.id, "campaign_id": c.id, "customer_id": t.customer_id, "e164": t.e164,
                    "status": t.status, "held_by": t.held_by, "attempts": t.attempts, "last_outcome": t.last_outcome,
                    "campaign": {"id": c.id, "name": c.name, "type": c.type, "mode": c.mode, "status": c.status,
                                 "script": c.script, "max_attempts": c.max_attempts, "window": c.window,
                                 "queue": c.queue},
                    "attempt_id": attempt[0] if attempt else None}

    def begin(self, target_id: int, user_id: int, action_id: str, node: str, interface: str,
              at: datetime) -> int | None:
        """The attempt row, written before the Originate; only while the agent holds the target undialled."""
        with self.sessions.begin() as session:
            t = session.execute(select(CampaignTarget.campaign_id, CampaignTarget.customer_id).where(
                CampaignTarget.id == target_id, CampaignTarget.status == "active",
                CampaignTarget.held_by == user_id, ~_unsettled(CampaignTarget.id)).with_for_update()).one_or_none()
            if t is None:
                return None
            result = session.execute(insert(CampaignAttempt).values(
                campaign_id=t.campaign_id, target_id=target_id, customer_id=t.customer_id, action_id=action_id,
                node=node, agent_interface=interface, originated_at=at).returning(CampaignAttempt.id))
            return int(result.scalar_one())

    def sent(self, attempt_id: int, action_id: str, server: str, at: datetime) -> None:
        with self.sessions.begin() as session:
            session.execute(update(CampaignAttempt).where(CampaignAttempt.id == attempt_id)
                            .values(action_id=action_id, server=server, sent_at=at))

    def rehold(self, target_id: int, user_id: int, until: datetime) -> None:
        """After a failed Originate the agent keeps the contact (to retry or skip it)."""
        with self.sessions.begin() as session:
            session.execute(update(CampaignTarget)
                            .where(CampaignTarget.id == target_id, CampaignTarget.status == "pending")
                            .values(status="active", held_by=user_id, held_until=until))

    def skip(self, target_id: int, user_id: int, drop: str | None, rest_until: datetime) -> bool:
        with self.sessions.begin() as session:
            mine = and_(CampaignTarget.id == target_id, CampaignTarget.status == "active",
                        CampaignTarget.held_by == user_id, ~_unsettled(CampaignTarget.id))
            values: dict[str, Any] = ({"status": "dropped", "drop_reason": drop[:24]} if drop is not None else
                                      {"status": "pending", "held_until": rest_until})
            result = session.execute(update(CampaignTarget).where(mine).values(**values)
                                     .execution_options(synchronize_session=False))
            return bool(getattr(result, "rowcount", 0))


class PreviewService:
    def __init__(self, campaigns: CampaignService, desktop: Any, *, default_zone: str = "UTC",
                 node_id: str = "node", run_blocking: Callable[..., Awaitable[Any]] | None = None) -> None:
        self.campaigns = campaigns
        self.desktop = desktop
        self.settings = campaigns.settings
        self.default_zone = default_zone
        self.node_id = node_id
        self.store = PreviewStore(campaigns.sessions)
        self.dialer_store = DialerStore(campaigns.sessions)
        self._run = run_blocking or campaigns._run

    def _hold(self) -> timedelta:
        return timedelta(seconds=self.settings.preview_hold_seconds)

    async def _agent(self, actor: Any) -> tuple[Any, Any]:
        me = await self.desktop.user(actor)
        row = await self.desktop.sign_in_of(me.extension)
        if row is None:
            raise CampaignError(409, T("sign in first: preview contacts come from the queues you are signed in to"))
        return me, row

    async def next(self, actor: Any) -> dict[str, Any]:
        """The contact the agent holds, else the next one picked for them (held from now); ``target: null`` when
        no preview campaign of their queues has a contact that may be called now."""
        me, sign_in = await self._agent(actor)
        now = self.campaigns.now()
        await self._run(self.store.release_expired, now)
        held = await self._run(self.store.held, me.id)
        if held is None:
            held = await self._pick(me.id, set(sign_in.queues), now)
        if held is None:
            return {"target": None}
        return await self.card(actor, held)

    async def _pick(self, user_id: int, queues: set[str], now: datetime) -> int | None:
        rows = [r for r in await self._run(self.dialer_store.running_campaigns)
                if r.mode == "preview" and r.queue in queues]
        if not rows:
            return None
        dnc = await self._run(self.dialer_store.dnc_numbers)
        busy = await self._run(self.store.busy_customers)
        for row in sorted(rows, key=lambda r: r.id):
            targets: list[TargetRow] = await self._run(self.dialer_store.open_targets, row.id)
            resting = await self._run(self.store.resting, row.id, now)
            queue, contacts, rules = plan_campaign(row, targets, self.settings, self.default_zone, resting)
            for _ in range(5):  # another agent may take the one picked: pick again
                dropped: list[tuple[Any, str]] = []
                chosen = pick(queue, contacts, rules, dnc, now, 1, busy=busy, dropped=_collect(dropped))
                for target, reason in dropped:
                    await self._run(self.dialer_store.drop_target, target.id, reason)
                if not chosen:
                    break
                if await self._run(self.store.hold, chosen[0].id, user_id, now + self._hold()):
                    return chosen[0].id
        return None

    async def card(self, actor: Any, target_id: int) -> dict[str, Any]:
        t = await self._run(self.store.target, target_id)
        if t is None:
            raise CampaignError(404, T("no such target"))
        c = t["campaign"]
        script = c["script"] or self.settings.preview_scripts.get(c["type"], "")
        customer = None
        if t["customer_id"] is not None:
            customer = await self.desktop.customer(actor, int(t["customer_id"]))
        return {"target": {"id": t["id"], "e164": t["e164"], "attempts": t["attempts"],
                           "last_outcome": t["last_outcome"]},
                "campaign": {"id": c["id"], "name": c["name"], "type": c["type"], "script": script,
                             "max_attempts": c["max_attempts"]},
                "customer": customer, "attempt_id": t["attempt_id"]}

    async def _mine(self, me: Any, target_id: int) -> dict[str, Any]:
        t = await self._run(self.store.target, target_id)
        if t is None or t["held_by"] != me.id or t["status"] != "active":
            raise CampaignError(404, T("this contact is not held by you (ask for the next one)"), "target")
        if t["campaign"]["status"] != "running" or t["campaign"]["mode"] != "preview":
            raise CampaignError(409, T("the campaign is not running in preview mode"), "campaign")
        return t

    async def dial(self, actor: Any, target_id: int) -> dict[str, Any]:
        me, sign_in = await self._agent(actor)
        t = await self._mine(me, target_id)
        if t["attempt_id"] is not None:
            raise CampaignError(409, T("already dialled: give its disposition"), "target")
        now = self.campaigns.now()
        verdict = await self._gate(t, now)
        if verdict is not None:
            raise CampaignError(409, T("not callable now ({verdict})", verdict=verdict), "target")
        provisional = f"preview-{target_id}-{uuid.uuid4().hex[:12]}"
        attempt_id = await self._run(self.store.begin, target_id, me.id, provisional, self.node_id,
                                     sign_in.interface, now)
        if attempt_id is None:
            raise CampaignError(409, T("already dialled or no longer yours"), "target")
        from ccserver.desktop.service import DesktopError

        try:
            dialled = await self.desktop.dial(actor, t["e164"])
        except DesktopError as exc:
            # Not sent (or refused by Asterisk): the attempt ends as failed, the agent keeps the contact.
            await self._run(self.dialer_store.finish_attempts, [(provisional, "failed", now, None, None, None)])
            await self._run(self.store.rehold, target_id, me.id, now + self._hold())
            raise CampaignError(exc.status, exc.message, exc.field) from None
        await self._run(self.store.sent, attempt_id, dialled["action_id"], sign_in.server, now)
        return {"attempt_id": attempt_id, "campaign_id": t["campaign_id"], "target_id": target_id,
                "action_id": dialled["action_id"], "number": dialled["number"], "caller_id": dialled["caller_id"],
                "status": dialled["status"]}

    async def _gate(self, t: dict[str, Any], now: datetime) -> str | None:
        """The compliance gate at the moment of the dial: None (allowed) or the reason."""
        rows: list[TargetRow] = await self._run(
            lambda: self.dialer_store.open_targets(t["campaign_id"], status="active", only=t["id"]))
        running = [r for r in await self._run(self.dialer_store.running_campaigns) if r.id == t["campaign_id"]]
        if not rows or not running:
            return "not_open"
        dnc = await self._run(self.dialer_store.dnc_numbers)
        _queue, contacts, rules = plan_campaign(running[0], rows, self.settings, self.default_zone)
        verdict = check(contacts[rows[0].id], rules.window, rules.policy, dnc, now.astimezone(UTC),
                        rules.marketing_types)
        if verdict.allowed:
            return None
        return verdict.reason or "refused"

    async def skip(self, actor: Any, target_id: int, reason: Any) -> dict[str, Any]:
        if reason not in SKIP_REASONS:
            raise CampaignError(400, T("reason must be one of {skip_reasons}", skip_reasons=', '.join(SKIP_REASONS)),
                                "reason")
        me, _sign_in = await self._agent(actor)
        t = await self._mine(me, target_id)
        if t["attempt_id"] is not None:
            raise CampaignError(409, T("already dialled: give its disposition"), "target")
        now = self.campaigns.now()
        drop = f"skip:{reason}" if SKIP_REASONS[reason] else None
        if not await self._run(self.store.skip, target_id, me.id, drop, now + self._hold()):
            raise CampaignError(409, T("no longer yours"), "target")
        return {"target_id": target_id, "campaign_id": t["campaign_id"], "reason": reason,
                "status": "dropped" if drop else "pending"}
