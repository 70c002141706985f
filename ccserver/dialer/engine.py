"""The dialer: a cluster-leased component that dials running campaigns over AMI Originate.

One node dials at a time: the holder of the Redis lease ``ccserver:dialer:lease`` (renewed every ``ttl/3`` on the
injected clock; the moment a renewal fails and the local copy of the lease has run out, dialing stops — calls in
flight still get their outcome written). Without Redis the single node dials.

Every tick (``tick`` seconds), for each running campaign that is not in preview mode:

1. the pacing model says how many lines to add (:func:`ccserver.dialer.pacing.lines_to_dial`, fed by the
   campaign's :class:`~ccserver.dialer.pacing.LiveStats` and the queue's free / busy agents);
2. the planner picks that many targets through the compliance gate (:func:`ccserver.campaigns.planner.pick`) —
   the window in the callee's local time, DNC, consent, attempts, spacing — and one active attempt per customer;
3. for each: the contact leases in Redis (target + customer, all or nothing), the attempt row in SQL (with its
   ActionID), ``tracker.expect_originate`` — and only then ``Originate`` (Async) of ``Local/<number>@<outbound
   context>`` with ``CC_CAMPAIGN_ID``, ``CC_TARGET_ID``, ``CC_QUEUE``, ``CC_AMD``, ``CC_ABANDON_AFTER``,
   ``CC_STORE_DID`` and the store's DID as caller ID; the answered leg continues in ``[ccserver-campaign]``.

**The reserve (rows written ahead).** Steps 2–3 up to the SQL write run *ahead* of the sends, off their path: per
campaign, a background fill claims about ``prewrite_seconds`` worth of lines (as many as were sent over the last
``prewrite_seconds``; refilled when half used) — picked through the gate, leased, their attempt rows written in one
transaction with ``sent_at`` empty. A tick then takes its lines from the reserve, asks the compliance gate again in
memory at that moment (window, DNC, consent: a DNC entry or a refusal that arrived after the write — through
:meth:`Dialer.forbid` at once on this node, through the ``check`` refresh from others — still stops the send),
sets the send marks (:mod:`ccserver.dialer.leases`; one Redis round trip per tick) and sends. The rows' ``sent_at``
and the outcomes follow through one writer, off the path. A line the gate now refuses, a reserve line older than
``max(5 s, 3 × prewrite_seconds)``, a paused campaign's, a lost server's and every line at a lost lease or a stop are
released: outcome ``unsent`` (not an attempt), the target back to ``pending`` (or ``dropped`` for good, DNC /
consent), the leases freed. After a crash, a row written ahead without a send mark is recognised and released the
same way (:meth:`Dialer.reconcile_orphans`); with a mark, or without durable marks (no Redis), it is reconciled as
sent — never a double dial. When the reserve is empty and no fill is running (the first lines of a burst, or
``prewrite_seconds = 0``) the tick writes its rows itself before sending, as before.

**Several Asterisk servers.** Each line is given a server when its row is written: the campaign's store's pinned
servers (``campaigns.store_servers``), else ``campaigns.servers`` (default: every configured one), round robin among
those whose AMI is connected on this node. The free agents are counted over the same servers. An Originate whose
outcome became unknown is reconciled at *its* server's ``Resynced`` against that server's channels.

Results: the ``OriginateResponse`` (busy, no answer, failed — or answered), then the call's ``CallEnded`` on the hub:
an agent took it → ``reached``; it waited in the campaign queue past ``abandon_after_seconds`` → ``abandoned`` (the
dialplan played the message); AMD() found a machine (the dialplan's ``UserEvent(CcAmd,Status: MACHINE)``, on the
call as ``amd``) → ``machine``; it never reached the queue otherwise (the callee hung up first) → ``no_answer``
(``machine`` when ``campaigns.amd`` is on and no verdict came: a dialplan without the UserEvent). An Originate whose
outcome is unknown (the AMI connection dropped) keeps its leases and is reconciled at the next ``Resynced`` against
the live calls — adopted if its call is there, else ended as ``failed`` — never re-sent. A node taking the lease
over reconciles the attempts left without an outcome the same way against the live model.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from ccserver.ami.errors import OriginateOutcomeUnknown
from ccserver.ami.lease import RedisLease
from ccserver.bridge import settle
from ccserver.campaigns.compliance import FINAL_OUTCOMES, Contact, RetryPolicy, check
from ccserver.campaigns.planner import CampaignRules, pick
from ccserver.campaigns.selection import Target, TargetQueue
from ccserver.campaigns.settings import CampaignSettings
from ccserver.campaigns.windows import callee_zones, intersect, parse_window
from ccserver.clock import Clock, LoopClock
from ccserver.dialer.leases import ContactLeases
from ccserver.dialer.pacing import LiveStats, lines_to_dial
from ccserver.dialer.store import CampaignRow, DialerStore, TargetRow
from ccserver.events.types import CallEnded, Resynced
from ccserver.metrics import REGISTRY

__all__ = ["AmiOriginator", "Dialer", "Originator", "plan_campaign", "tracker_floor"]

log = logging.getLogger("ccserver.dialer")

ORIGINATES = REGISTRY.counter("ccserver_dialer_originates_total",
                              "Originates sent by the dialer, by campaign mode")
OUTCOMES = REGISTRY.counter("ccserver_dialer_outcomes_total", "Campaign attempt outcomes, by outcome")
LINES = REGISTRY.counter("ccserver_dialer_lines_total",
                         "Dialer lines by what became of them: sent from the reserve (ahead), written and sent in "
                         "their tick (in_tick), released unsent (unsent)")
LEASE_KEY = "ccserver:dialer:lease"
CONTEXT_ANSWERED = "ccserver-campaign"
# OriginateResponse outcome (ccserver.ami.client.ORIGINATE_REASONS) -> attempt outcome.
_NOT_ANSWERED = {"busy": "busy", "no_answer": "no_answer", "hangup": "no_answer", "congestion": "failed",
                 "failed": "failed"}


class Originator(Protocol):
    def new_action_id(self, server: str) -> str: ...

    def originate(self, server: str, channel: str, **kwargs: Any) -> Awaitable[Any]:
        """Sends the Originate at once; the awaitable gives the OriginateResult, or raises OriginateOutcomeUnknown
        when the outcome cannot be known."""
        ...


class AmiOriginator:
    """The AMI manager (ccserver.ami.manager.AMIManager) as an Originator."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    def new_action_id(self, server: str) -> str:
        return str(self.manager.clients[server].new_originate_id())

    def originate(self, server: str, channel: str, **kwargs: Any) -> Awaitable[Any]:
        return settle(self.manager.originate(server, channel, **kwargs))  # written now, awaited later

    def connected(self, server: str) -> bool:
        client = self.manager.clients.get(server)
        return bool(client is not None and client.connected)


def tracker_floor(tracker: Any) -> Callable[[str, str, float], tuple[int, list[float]]]:
    """Free agents of a queue and, for each busy one, seconds into its call — from the live model."""

    def floor(queue: str, server: str, now: float) -> tuple[int, list[float]]:
        q = tracker.queue(queue, server)
        if q is None:
            return 0, []
        free, busy = 0, []
        for member in q.members.values():
            if not member.logged_in or member.paused:
                continue
            if member.available:
                free += 1
            elif member.in_call:
                agent = tracker.agent(member.interface, server)
                busy.append(max(0.0, now - agent.since) if agent is not None and agent.since else 0.0)
        return free, busy

    return floor


@dataclass
class _Live:
    action_id: str
    campaign_id: int
    target: Target
    e164: str
    server: str
    sent_at: float
    holder: str
    uniqueid: str | None = None
    answered_at: float | None = None
    unknown: bool = False


@dataclass
class _Ready:
    """A line written ahead: leases held, attempt row in SQL (``sent_at`` empty), not sent yet."""

    target: Target
    action_id: str
    holder: str
    server: str
    written: float  # monotonic


@dataclass
class _Campaign:
    row: CampaignRow
    queue: TargetQueue
    contacts: dict[int, Contact]
    rules: CampaignRules
    stats: LiveStats
    reserve: deque[_Ready] = field(default_factory=deque)
    claiming: set[int] = field(default_factory=set)  # targets a running fill has picked
    sending: set[int] = field(default_factory=set)  # targets between the reserve and the Originate (send marks)
    filling: asyncio.Future[None] | None = None
    sends: deque[float] = field(default_factory=deque)  # monotonic moments of recent sends (the reserve's size)
    turn: int = 0  # round robin over the servers
    dry: bool = False  # a tick wanted more than the reserve held while a fill ran
    last_fill: int = 0
    customers: dict[int, int | None] = field(default_factory=dict)  # target -> customer


class _Overlay(Mapping[int, Contact]):
    """A campaign's contacts with what :meth:`Dialer.forbid` learnt since they were read."""

    def __init__(self, campaign: _Campaign, dialer: Dialer) -> None:
        self.contacts, self.customers, self.dialer = campaign.contacts, campaign.customers, dialer

    def __getitem__(self, key: int) -> Contact:
        return self.dialer._amend(self.contacts[key], self.customers.get(key))

    def get(self, key: int, default: Any = None) -> Any:
        found = self.contacts.get(key)
        return default if found is None else self.dialer._amend(found, self.customers.get(key))

    def __iter__(self) -> Iterator[int]:
        return iter(self.contacts)

    def __len__(self) -> int:
        return len(self.contacts)


class Dialer:
    name = "dialer"

    def __init__(self, store: DialerStore, originator: Originator, leases: ContactLeases, *,
                 run_blocking: Callable[..., Any], settings: CampaignSettings | None = None,
                 clock: Clock | None = None, tracker: Any = None, redis: Any = None, node_id: str = "node",
                 server: str = "default", tick: float = 1.0, refresh: float = 60.0, check: float = 5.0,
                 default_zone: str = "UTC",
                 floor: Callable[[str, str, float], tuple[int, list[float]]] | None = None,
                 servers: Sequence[str] | None = None) -> None:
        self.store = store
        self.originator = originator
        self.leases = leases
        self.settings = settings or CampaignSettings()
        self.clock: Clock = clock or LoopClock()
        self.tracker = tracker
        self.node_id = node_id
        self.server = server
        self.servers: list[str] = list(servers) if servers else [server]
        self._connected: Callable[[str], bool] = getattr(originator, "connected", None) or (lambda name: True)
        self.tick_seconds = tick
        self.refresh_seconds = refresh
        self.default_zone = default_zone
        self.floor = floor or (tracker_floor(tracker) if tracker is not None else (lambda q, s, n: (0, [])))
        self._run = run_blocking
        self.lease = (RedisLease(redis, LEASE_KEY, node_id, ttl_ms=int(self.settings.lease_ttl_seconds * 1000),
                                 clock=self.clock.monotonic) if redis is not None else None)
        self.campaigns: dict[int, _Campaign] = {}
        self.dnc: set[str] = set()
        self.live: dict[str, _Live] = {}
        self._by_uniqueid: dict[tuple[str, str], str] = {}
        self._loaded_at: float | None = None
        self._checked_at = 0.0
        self.check_seconds = check
        self._task: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._maintainer: asyncio.Task[None] | None = None
        self._results: set[asyncio.Task[None]] = set()
        self._outcomes: list[tuple[_Live, tuple[Any, ...]]] = []  # settled, not yet written
        self._confirms: list[tuple[str, datetime]] = []  # sent, ``sent_at`` not yet written
        self._unsents: list[tuple[_Ready, tuple[str, datetime, str | None]]] = []  # released, not yet written
        self._writing: set[str] = set()  # action ids whose outcome or release is being written
        self._dnc_customers: set[int] = set()  # learnt through forbid() since the contacts were read
        self._no_consent: set[int] = set()
        self._swept_at = float("-inf")
        self.lines = {"ahead": 0, "in_tick": 0, "unsent": 0}  # what became of the lines (tests, the benchmark)
        self._preview_gone: dict[str, float] = {}  # preview call -> when first seen without a live call
        self._writer: asyncio.Future[None] | None = None
        self.sent: list[str] = []  # ActionIDs sent by this node, in order (tests, metrics)
        self.leading = self.lease is None  # may dial now
        self.tick_due = 0.0  # monotonic moment the current tick was scheduled for (pacing error = now - this)

    # -- component ---------------------------------------------------------------------------------------------
    def subscribe(self, hub: Any) -> None:
        hub.subscribe("dialer", self.on_event, kinds=(CallEnded, Resynced))

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())
        self._maintainer = asyncio.ensure_future(self._maintain_loop())

    async def stop(self) -> None:
        self.leading = False
        for task in (self._task, self._keeper, self._maintainer):
            if task is not None:
                task.cancel()
        self.release_reserves()
        if self._writer is not None and not self._writer.done():  # the outcomes settled so far reach SQL
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), 5.0)
            except (TimeoutError, Exception) as exc:  # noqa: BLE001 - their attempts are reconciled later
                log.warning("dialer: outcomes not all written at stop (%s)", exc)
        if self.lease is not None and self.lease.held:
            try:
                await self.lease.release()
            except Exception as exc:  # noqa: BLE001 - it expires by itself
                log.warning("dialer: lease release failed (%s)", exc)

    async def _loop(self) -> None:
        due = self.clock.monotonic()
        while True:
            self.tick_due = due
            try:
                if not self.leading and self.lease is not None:
                    await self.try_lead()
                if self.leading:
                    await self.tick(maintain=False)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad tick must not stop the dialer
                log.exception("dialer tick failed")
            # Ticks on a fixed schedule (no drift from the work each one does); a late tick skips, never bunches.
            now = self.clock.monotonic()
            due += self.tick_seconds
            if due <= now:
                due = now + self.tick_seconds
            await self.clock.sleep(due - now)

    async def try_lead(self) -> bool:
        """Take the dialer's lease if it is free; on success start renewing it and reconcile what a previous
        holder left. True if this node leads now."""
        if self.lease is None or self.leading:
            return self.leading
        try:
            if not await self.lease.acquire():
                return False
        except Exception as exc:  # noqa: BLE001 - Redis down: no dialing (at most one dialer)
            log.warning("dialer: lease unavailable (%s)", exc)
            return False
        log.info("dialer: %s leads", self.node_id)
        self.leading = True
        self._keeper = asyncio.ensure_future(self._keep())
        await self.reconcile_orphans()
        return True

    async def _keep(self) -> None:
        assert self.lease is not None
        interval = self.settings.lease_ttl_seconds / 3.0
        while self.leading:
            await self.clock.sleep(interval)
            try:
                held = await self.lease.renew()
            except Exception as exc:  # noqa: BLE001 - Redis blip: keep it only while our copy is surely valid
                held = self.lease.held
                log.warning("dialer: lease renewal failed (%s)", exc)
            if not held:
                self.leading = False  # stop dialing at once; calls in flight still settle
                log.error("dialer: lease lost by %s; dialing stopped", self.node_id)
                self.release_reserves()
                return
            for live in list(self.live.values()):  # our contacts stay ours while their calls last
                await self.leases.extend(live.target.id, live.target.customer_id, live.holder, self._contact_ttl())

    def _may_dial(self) -> bool:
        return self.leading and (self.lease is None or self.lease.held)

    def _contact_ttl(self) -> float:
        return max(60.0, self.settings.originate_timeout_seconds * 4)

    # -- campaigns and targets ---------------------------------------------------------------------------------
    async def refresh(self, *, full: bool = True) -> None:
        """Which campaigns run (every ``check`` seconds: a campaign started or paused on any node is seen within
        that), and their open targets (a new campaign's at once; every campaign's every ``refresh`` seconds)."""
        rows: list[CampaignRow] = await self._run(self.store.running_campaigns)
        self.dnc = await self._run(self.store.dnc_numbers)
        fresh: dict[int, _Campaign] = {}
        for row in rows:
            old = self.campaigns.get(row.id)
            if old is not None and not full:
                old.row = row
                fresh[row.id] = old
                continue
            targets: list[TargetRow] = await self._run(self.store.open_targets, row.id)
            in_flight = {live.target.id for live in self.live.values()}
            if old is not None:
                in_flight |= {r.target.id for r in old.reserve} | old.claiming | old.sending
            queue, contacts, rules = plan_campaign(row, targets, self.settings, self.default_zone, in_flight)
            customers = {t.id: t.customer_id for t in targets}
            if old is None:
                fresh[row.id] = _Campaign(row, queue, contacts, rules,
                                          LiveStats(window=self.settings.abandon_window_seconds),
                                          customers=customers)
            else:  # the same object: a fill in progress adds to this one's reserve
                keep = {r.target.id for r in old.reserve} | old.claiming | old.sending | {
                    v.target.id for v in self.live.values() if v.campaign_id == row.id}
                old.row, old.queue, old.rules = row, queue, rules
                old.contacts = {**{k: old.contacts[k] for k in keep if k in old.contacts}, **contacts}
                old.customers = {**{k: old.customers.get(k) for k in keep}, **customers}
                fresh[row.id] = old
        for campaign_id, gone in self.campaigns.items():
            if campaign_id not in fresh:  # paused or finished: its lines written ahead are not sent
                self._release_reserve(gone)
        self.campaigns = fresh
        self._checked_at = self.clock.monotonic()
        if full:
            self._loaded_at = self._checked_at

    def forbid(self, *, numbers: Any = (), customers: Any = (), refused: Any = ()) -> None:
        """Stop sends at once, even of lines written ahead: ``numbers`` put on the DNC list, ``customers`` whose
        ``do_not_call`` was set, ``refused``: customers who withdrew their consent (marketing types). The campaign
        service calls this after its commit; other nodes' changes arrive with the next refresh."""
        self.dnc = self.dnc | set(numbers)
        self._dnc_customers.update(int(c) for c in customers)
        self._no_consent.update(int(c) for c in refused)

    def _amend(self, contact: Contact, customer_id: int | None) -> Contact:
        if customer_id is None:
            return contact
        if customer_id in self._dnc_customers and not contact.do_not_call:
            contact = replace(contact, do_not_call=True)
        if customer_id in self._no_consent and contact.consent:
            contact = replace(contact, consent=False)
        return contact

    async def maintain(self) -> None:
        """What is due of the SQL reads: the campaigns (every ``check``; their targets every ``refresh``, then the
        orphans), the preview calls without a disposition (every ``check``)."""
        moment = self.clock.monotonic()
        if self._loaded_at is None or moment - self._loaded_at >= self.refresh_seconds:
            await self.refresh()
            await self.reconcile_orphans()  # a crashed node's attempts (and this one's, after a restart)
        elif moment - self._checked_at >= self.check_seconds:
            await self.refresh(full=False)
        if moment - self._swept_at >= self.check_seconds:
            self._swept_at = moment
            await self.sweep_preview()

    async def _maintain_loop(self) -> None:
        """``ccserver run``: the SQL reads in their own task, so no tick (no send) waits for them."""
        while True:
            await self.clock.sleep(min(1.0, self.check_seconds))
            if not self._may_dial() or self._loaded_at is None:
                continue
            try:
                await self.maintain()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("dialer: refresh failed")

    async def tick(self, *, maintain: bool = True) -> int:
        """One pacing round; returns the Originates sent. ``maintain``: do the due SQL reads first (else a task of
        their own does them; the first load is always done here)."""
        if not self._may_dial():
            return 0
        if maintain or self._loaded_at is None:
            await self.maintain()
        moment = self.clock.monotonic()
        now = self.clock.time()
        sent = 0
        for campaign in list(self.campaigns.values()):
            if campaign.row.mode == "preview":
                continue
            self._expire(campaign, moment)
            free, busy = 0, []
            for name in self._servers_of(campaign):
                f, b = self.floor(campaign.row.queue, name, now)
                free += f
                busy.extend(b)
            in_flight = sum(1 for live in self.live.values()
                            if live.campaign_id == campaign.row.id and live.answered_at is None)
            snapshot = campaign.stats.snapshot(campaign.row.mode, free, in_flight, busy, now)
            wanted = lines_to_dial(snapshot, self.settings.pacing)
            if wanted <= 0:
                continue
            done = await self._send_ready(campaign, wanted, now)
            if done:
                self.lines["ahead"] += done
                LINES.inc(done, state="ahead")
            if done < wanted and not campaign.reserve:
                if campaign.filling is None:
                    # Nothing written ahead (a burst's first lines, or prewrite_seconds = 0): write them now.
                    await self._prepare(campaign, wanted - done, now)
                    more = await self._send_ready(campaign, wanted - done, now)
                    if more:
                        self.lines["in_tick"] += more
                        LINES.inc(more, state="in_tick")
                    done += more
                else:
                    campaign.dry = True  # the fill did not keep up: the next one writes more
            sent += done
            self._top_up(campaign, moment, now)
        return sent

    async def sweep_preview(self) -> int:
        """Preview calls dialled and never disposed: once no live call carries the number on its server any more
        (the call ended) and ``preview_disposition_seconds`` have passed since, the attempt ends ``undisposed``
        (retried per the retry matrix) and the agent's hold goes. Returns how many were released."""
        rows = await self._run(self.store.preview_outstanding)
        now = self.clock.time()
        calls = list(self.tracker.calls.values()) if self.tracker is not None else []
        due: list[str] = []
        seen = set()
        for action_id, server, e164, _sent in rows:
            seen.add(action_id)
            if _live_number(calls, server, e164, action_id):
                self._preview_gone.pop(action_id, None)
                continue
            gone = self._preview_gone.setdefault(action_id, now)
            if now - gone >= self.settings.preview_disposition_seconds:
                due.append(action_id)
        for action_id in list(self._preview_gone):
            if action_id not in seen:
                del self._preview_gone[action_id]
        if due:
            log.info("dialer: %d preview call(s) ended without a disposition: released as undisposed", len(due))
            await self._run(self.store.release_undisposed, due, datetime.fromtimestamp(now, UTC))
            for action_id in due:
                self._preview_gone.pop(action_id, None)
                OUTCOMES.inc(outcome="undisposed")
        return len(due)

    # -- the reserve ---------------------------------------------------------------------------------------------
    def _servers_of(self, campaign: _Campaign) -> list[str]:
        pinned = self.settings.store_servers.get(campaign.row.store_code or "") if campaign.row.store_code else None
        return list(pinned) if pinned else self.servers

    def _server_for(self, campaign: _Campaign) -> str | None:
        """The next connected server of the campaign's, round robin."""
        names = self._servers_of(campaign)
        for _ in range(len(names)):
            name = names[campaign.turn % len(names)]
            campaign.turn += 1
            if self._connected(name):
                return name
        return None

    def _top_up(self, campaign: _Campaign, moment: float, now: float) -> None:
        """Start a background fill when the reserve is down to half of the last ``prewrite_seconds``' sends."""
        ahead = self.settings.prewrite_seconds
        if ahead <= 0 or campaign.filling is not None:
            return
        while campaign.sends and campaign.sends[0] < moment - ahead:
            campaign.sends.popleft()
        size = len(campaign.sends)
        if size and (len(campaign.reserve) <= size // 2 or campaign.dry):
            n = size - len(campaign.reserve)
            if campaign.dry:  # demand outran the reserve (a ramp): grow geometrically
                n = max(n, 2 * campaign.last_fill)
                campaign.dry = False
            n = min(max(n, 1), 1000)
            campaign.last_fill = n
            campaign.filling = asyncio.ensure_future(self._fill(campaign, n, now))

    async def _fill(self, campaign: _Campaign, n: int, now: float) -> None:
        try:
            await self._prepare(campaign, n, now)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the next tick writes its lines itself
            log.exception("dialer: writing lines ahead failed")
        finally:
            campaign.filling = None

    async def _prepare(self, campaign: _Campaign, n: int, now: float) -> int:
        """Pick up to ``n`` lines through the gate, lease them and write their rows ahead (one transaction); they
        join the campaign's reserve. Returns how many did."""
        row = campaign.row
        if not self._may_dial():
            return 0
        busy_customers = {live.target.customer_id for live in self.live.values()
                          if live.target.customer_id is not None}
        for other in self.campaigns.values():
            busy_customers.update(r.target.customer_id for r in other.reserve if r.target.customer_id is not None)
        dropped: list[tuple[Target, str]] = []
        chosen = pick(campaign.queue, _Overlay(campaign, self), campaign.rules, self.dnc,
                      datetime.fromtimestamp(now, UTC), n, busy=busy_customers, dropped=_collect(dropped))
        campaign.claiming.update(t.id for t in chosen)
        try:
            for target, reason in dropped:
                await self._run(self.store.drop_target, target.id, reason)
            prepared: list[tuple[Target, str, str, str]] = []
            for target in chosen:
                server = self._server_for(campaign)
                if server is None:  # no Asterisk connected: the target waits
                    campaign.queue.defer(target, now + 5.0)
                    continue
                action_id = self.originator.new_action_id(server)
                holder = f"{self.node_id}|{action_id}"
                if await self.leases.take(target.id, target.customer_id, holder, self._contact_ttl()):
                    prepared.append((target, action_id, holder, server))
                else:
                    campaign.queue.defer(target, now + 60.0)  # dialled elsewhere right now
            if not prepared:
                return 0
            # The contacts were read at the last full refresh; a customer barred since by another path (the
            # customer page, an import, an erasure) is read again here, off the send's path, so the gate at the
            # send refuses their line (``unsent``, the target dropped with the reason).
            # Only what changed since is remembered (forbid's sets hold changes, not every customer without consent).
            known = {t.customer_id: campaign.contacts.get(t.id) for t, _aid, _holder, _server in prepared
                     if t.customer_id is not None}
            if known:
                barred, unconsented = await self._run(self.store.barred_customers, list(known))
                barred = {c for c in barred if (contact := known.get(c)) is not None and not contact.do_not_call}
                unconsented = {c for c in unconsented if (contact := known.get(c)) is not None and contact.consent}
                if barred or unconsented:
                    self.forbid(customers=barred, refused=unconsented)
            at = datetime.fromtimestamp(now, UTC)
            began: set[str] = await self._run(self.store.prepare_attempts, [
                (row.id, t.id, t.customer_id, aid, self.node_id, server, at) for t, aid, _, server in prepared])
            written = self.clock.monotonic()
            mine = self.campaigns.get(row.id) is campaign
            count = 0
            for target, action_id, holder, server in prepared:
                ready = _Ready(target, action_id, holder, server, written)
                if action_id not in began:  # no longer pending (another node, a refusal): leave it
                    await self.leases.release(target.id, target.customer_id, holder)
                elif not mine or not self._may_dial():  # paused, or the lease went, while the rows were written
                    self._unsent(campaign, ready, None)
                else:
                    campaign.reserve.append(ready)
                    count += 1
            return count
        finally:
            campaign.claiming.difference_update(t.id for t in chosen)

    async def _send_ready(self, campaign: _Campaign, n: int, now: float) -> int:
        """Send up to ``n`` lines of the reserve: each asked the gate again now; their send marks set (one round
        trip), then their Originates."""
        batch: list[_Ready] = []
        at = datetime.fromtimestamp(now, UTC)
        rules = campaign.rules
        while campaign.reserve and len(batch) < n:
            ready = campaign.reserve.popleft()
            contact = campaign.contacts.get(ready.target.id)
            if contact is None:
                self._unsent(campaign, ready, None)
                continue
            verdict = check(self._amend(contact, ready.target.customer_id), rules.window, rules.policy, self.dnc, at,
                            rules.marketing_types)
            if not verdict.allowed:  # changed since the row was written: not sent
                self._unsent(campaign, ready, verdict.reason if verdict.permanent else None)
            elif not self._connected(ready.server):
                self._unsent(campaign, ready, None)
            else:
                batch.append(ready)
        if not batch:
            return 0
        if not self._may_dial():
            for ready in batch:
                self._unsent(campaign, ready, None)
            return 0
        ids = {r.target.id for r in batch}
        campaign.sending |= ids
        try:
            await self.leases.mark_sent([r.action_id for r in batch])
        except Exception as exc:  # noqa: BLE001 - unmarked: not sent (a mark that did land only costs an attempt)
            log.warning("dialer: send marks not set (%s); %d line(s) not sent", exc, len(batch))
            for ready in batch:
                self._unsent(campaign, ready, None)
            return 0
        finally:
            campaign.sending -= ids
        if not self._may_dial():
            for ready in batch:
                self._unsent(campaign, ready, None)
            return 0
        moment = self.clock.monotonic()
        for ready in batch:
            self._send(campaign, ready, now)
            campaign.sends.append(moment)
        return len(batch)

    def _expire(self, campaign: _Campaign, moment: float) -> None:
        limit = max(5.0, 3.0 * self.settings.prewrite_seconds)
        while campaign.reserve and moment - campaign.reserve[0].written > limit:
            self._unsent(campaign, campaign.reserve.popleft(), None)

    def _release_reserve(self, campaign: _Campaign) -> None:
        while campaign.reserve:
            self._unsent(campaign, campaign.reserve.popleft(), None)

    def release_reserves(self) -> None:
        """Every line written ahead is released (a lost lease, a stop)."""
        for campaign in self.campaigns.values():
            self._release_reserve(campaign)

    def _unsent(self, campaign: _Campaign, ready: _Ready, drop: str | None) -> None:
        """A line written ahead that will not be sent: its row ``unsent`` (by the writer), the target back in the
        queue unless the gate refused it for good, its leases freed once written."""
        if drop is None:
            campaign.queue.add(ready.target)
        self.lines["unsent"] += 1
        LINES.inc(state="unsent")
        self._writing.add(ready.action_id)
        self._unsents.append((ready, (ready.action_id, datetime.fromtimestamp(self.clock.time(), UTC), drop)))
        self._kick()

    def _send(self, campaign: _Campaign, ready: _Ready, now: float) -> None:
        row = campaign.row
        target, action_id, server = ready.target, ready.action_id, ready.server
        contact = campaign.contacts[target.id]
        if self.tracker is not None:
            self.tracker.expect_originate(action_id, server=server, dialed_number=contact.e164,
                                          customer_id=str(target.customer_id) if target.customer_id else None,
                                          campaign_id=str(row.id), sent_at=now)
        live = _Live(action_id, row.id, target, contact.e164, server, now, ready.holder)
        self.live[action_id] = live
        variables = {"CC_CAMPAIGN_ID": row.id, "CC_TARGET_ID": target.id, "CC_QUEUE": row.queue,
                     "CC_AMD": int(self.settings.amd),
                     "CC_ABANDON_AFTER": max(1, round(self.settings.abandon_after_seconds)),
                     "CC_STORE_DID": row.caller_id or "",
                     "CC_DIAL": self.settings.dial.replace("{number}", contact.e164)}
        caller_id = None
        if row.caller_id:
            name = (row.store_name or "").replace('"', "").replace("<", "").replace(">", "")
            caller_id = f'"{name}" <{row.caller_id}>' if name else row.caller_id
        sending = self.originator.originate(
            server, f"Local/{contact.e164}@{self.settings.outbound_context}", context=CONTEXT_ANSWERED,
            exten="s", priority=1, caller_id=caller_id,
            timeout_ms=int(self.settings.originate_timeout_seconds * 1000), variables=variables,
            action_id=action_id)
        self.sent.append(action_id)
        ORIGINATES.inc(mode=row.mode)
        self._confirms.append((action_id, datetime.fromtimestamp(now, UTC)))
        self._kick()
        task = asyncio.ensure_future(self._result(live, sending))
        self._results.add(task)
        task.add_done_callback(self._results.discard)

    async def _result(self, live: _Live, sending: Any) -> None:
        try:
            result = await sending
        except OriginateOutcomeUnknown as exc:
            live.unknown = True  # keep the leases; reconciled at the next Resynced, never re-sent
            log.warning("dialer: outcome of %s unknown (%s); reconciling at the next resync", live.action_id, exc)
            return
        except Exception as exc:  # noqa: BLE001 - Asterisk refused the action, or it was invalid
            log.warning("dialer: Originate %s refused (%s)", live.action_id, exc)
            await self._finish(live, "failed")
            return
        if live.action_id not in self.live:
            return  # settled already (its CallEnded was delivered first)
        now = self.clock.time()
        stats = self._stats(live.campaign_id)
        if getattr(result, "answered", False):
            live.answered_at = now
            live.uniqueid = getattr(result, "uniqueid", None)
            if stats is not None:
                stats.result(True, now - live.sent_at)
            if live.uniqueid:
                self._by_uniqueid[(live.server, live.uniqueid)] = live.action_id
            await self._run(self.store.answered, live.action_id, live.uniqueid, datetime.fromtimestamp(now, UTC))
            return  # the outcome comes with CallEnded
        if stats is not None:
            stats.result(False, now - live.sent_at)
        await self._finish(live, _NOT_ANSWERED.get(getattr(result, "outcome", "failed"), "failed"))

    def _stats(self, campaign_id: int) -> LiveStats | None:
        campaign = self.campaigns.get(campaign_id)
        return campaign.stats if campaign is not None else None

    async def _finish(self, live: _Live, outcome: str, interface: str | None = None, *,
                      uniqueid: str | None = None, answered_at: float | None = None) -> None:
        """Settle an attempt: at once in memory (its contact may be picked again after the spacing), in SQL by the
        outcome writer (one transaction for whatever has settled meanwhile), then its contact leases go."""
        if self.live.pop(live.action_id, None) is None:
            return  # already settled
        if live.uniqueid:
            self._by_uniqueid.pop((live.server, live.uniqueid), None)
        now = self.clock.time()
        answered = answered_at if answered_at is not None else live.answered_at
        self._outcomes.append((live, (live.action_id, outcome, datetime.fromtimestamp(now, UTC), interface,
                                      uniqueid or live.uniqueid,
                                      datetime.fromtimestamp(answered, UTC) if answered is not None else None)))
        self._writing.add(live.action_id)
        OUTCOMES.inc(outcome=outcome)
        campaign = self.campaigns.get(live.campaign_id)
        if campaign is not None:
            old = campaign.contacts.get(live.target.id)
            if old is not None:
                campaign.contacts[live.target.id] = replace(
                    old, attempts=old.attempts + 1, last_outcome=outcome,
                    last_attempt_at=datetime.fromtimestamp(live.sent_at, UTC))
                if outcome not in FINAL_OUTCOMES and old.attempts + 1 < campaign.rules.policy.max_attempts:
                    campaign.queue.add(live.target)  # the gate holds it back for the retry spacing
        self._kick()

    def _kick(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_outcomes())

    async def _write_outcomes(self) -> None:
        """The one writer: sends confirmed (``sent_at``), outcomes and released lines, whatever has gathered, in
        one transaction at a time; the leases of what was written go after it."""
        while self._outcomes or self._confirms or self._unsents:
            batch, self._outcomes = self._outcomes, []
            confirms, self._confirms = self._confirms, []
            unsents, self._unsents = self._unsents, []
            try:
                await self._run(self.store.settle, confirms, [item for _, item in batch],
                                [item for _, item in unsents])
            except Exception:  # noqa: BLE001 - keep them for the next try; the leases keep the contacts
                log.exception("dialer: writing %d outcome(s) failed; retrying", len(batch) + len(unsents))
                self._outcomes[:0] = batch
                self._confirms[:0] = confirms
                self._unsents[:0] = unsents
                await self.clock.sleep(1.0)
                continue
            for live, _ in batch:
                self._writing.discard(live.action_id)
                if live.holder:
                    await self.leases.release(live.target.id, live.target.customer_id, live.holder)
            for ready, _ in unsents:
                self._writing.discard(ready.action_id)
                await self.leases.release(ready.target.id, ready.target.customer_id, ready.holder)

    # -- hub events --------------------------------------------------------------------------------------------
    async def on_event(self, event: Any) -> None:
        if isinstance(event, CallEnded):
            await self._on_call_ended(event)
        elif isinstance(event, Resynced):
            await self._on_resynced(event)

    async def _on_call_ended(self, event: CallEnded) -> None:
        action_id = self._by_uniqueid.get((event.server, event.uniqueid))
        live = self.live.get(action_id) if action_id else None
        record = event.record if isinstance(event.record, dict) else {}
        if live is None and record.get("campaign_id") and record.get("answered_at") is not None:
            # The hub may deliver the end before this node has read the OriginateResponse: match the campaign and
            # the number dialled.
            live = next((v for v in self.live.values() if v.server == event.server and not v.unknown
                         and _matching_call(v.campaign_id, v.e164, None, v.action_id, [record])), None)
        if live is None:
            return
        stats = self._stats(live.campaign_id)
        final = event.final if isinstance(event.final, dict) else {}
        amd = final.get("amd")
        if amd == "MACHINE":  # [ccserver-campaign] hung up on it (UserEvent CcAmd)
            outcome = "machine"
        elif event.interface:
            outcome = "reached"
            if stats is not None:
                stats.answered(event.at, False)
                if event.talk_seconds is not None:
                    stats.handled(float(event.talk_seconds))
        elif event.queue:
            outcome = "abandoned"
            if stats is not None:
                stats.answered(event.at, True)
        elif amd is not None:  # the dialplan said what AMD() found; not a machine: the callee hung up first
            outcome = "no_answer"
        else:  # no verdict (AMD off, or a dialplan from before UserEvent CcAmd): it never reached the queue
            outcome = "machine" if self.settings.amd else "no_answer"
        answered_at = record.get("answered_at")
        await self._finish(live, outcome, event.interface, uniqueid=event.uniqueid,
                           answered_at=float(answered_at) if isinstance(answered_at, int | float) else event.at)

    async def _on_resynced(self, event: Resynced) -> None:
        for live in [v for v in self.live.values() if v.unknown and v.server == event.server]:
            await self._reconcile(live, event.calls)

    async def _reconcile(self, live: _Live, calls: Any) -> None:
        call = _matching_call(live.campaign_id, live.e164, live.uniqueid, live.action_id, calls)
        if call is None:
            log.info("dialer: %s has no live call after the resync: ended as failed (not re-sent)", live.action_id)
            await self._finish(live, "failed")
            return
        live.unknown = False
        live.uniqueid = call["uniqueid"]
        self._by_uniqueid[(live.server, call["uniqueid"])] = live.action_id
        if call["answered_at"] is not None or call["up"]:
            live.answered_at = live.answered_at or self.clock.time()

    async def reconcile_orphans(self) -> None:
        """Attempts without an outcome that this node does not follow (a crashed holder's): adopt the ones whose
        call is live, end the others as failed. Never re-sent."""
        # Only attempts past any ring time: a younger one may still be settled by the node that sent it.
        before = datetime.fromtimestamp(self.clock.time() - self.settings.originate_timeout_seconds - 30.0, UTC)
        rows = await self._run(self.store.unsettled, None, before)
        calls = list(self.tracker.calls.values()) if self.tracker is not None else []
        ours = set(self.live) | self._writing | {r.action_id for c in self.campaigns.values() for r in c.reserve}
        ahead = [r[0] for r in rows if not r[4] and r[0] not in ours]
        # Written ahead: without a send mark it never left — released (with durable marks; without them, a
        # restarted single node cannot tell and reconciles it as sent).
        marked = await self.leases.marked(ahead) if self.leases.durable else set(ahead)
        unsent = [(a, datetime.fromtimestamp(self.clock.time(), UTC), None) for a in ahead if a not in marked]
        if unsent:
            log.info("dialer: %d line(s) written ahead by a stopped node were never sent: released", len(unsent))
            await self._run(self.store.release_unsent, unsent)
        released = {u[0] for u in unsent}
        for action_id, campaign_id, server, uniqueid, _sent in rows:
            if action_id in ours or action_id in released:
                continue
            call = _matching_call(campaign_id, None, uniqueid, action_id, calls)
            if call is None:
                await self._run(self.store.finish_attempt, action_id, "failed",
                                datetime.fromtimestamp(self.clock.time(), UTC))
                continue
            self._by_uniqueid[(server or self.server, call["uniqueid"])] = action_id
            self.live[action_id] = _Live(action_id, campaign_id, Target(0, None), call["dialed_number"] or "",
                                         server or self.server, self.clock.time(), "", call["uniqueid"],
                                         call["answered_at"])

    async def flush(self) -> None:
        """Wait until what has settled so far (sends, outcomes, released lines) is written."""
        while self._writer is not None and not self._writer.done():
            await asyncio.gather(self._writer, return_exceptions=True)

    async def drain(self) -> None:
        """Wait for the Originate results in progress and the outcomes to be written (tests, shutdown)."""
        while self._results or (self._writer is not None and not self._writer.done()):
            await asyncio.gather(*list(self._results), return_exceptions=True)
            if self._writer is not None:
                await asyncio.gather(self._writer, return_exceptions=True)


def plan_campaign(row: CampaignRow, targets: list[TargetRow], settings: CampaignSettings, default_zone: str,
                  leave_out: set[int] | frozenset[int] = frozenset()
                  ) -> tuple[TargetQueue, dict[int, Contact], CampaignRules]:
    """A campaign's open targets as the planner takes them: the selection queue (without ``leave_out``), each
    target's facts for the gate, and the campaign's rules (its window inside the global one, its attempts).
    The dialer and preview mode (ccserver/campaigns/preview.py) both pick through this."""
    zone = row.time_zone or default_zone
    window = intersect(parse_window(row.window, default=settings.window), settings.window)
    policy = RetryPolicy(row.max_attempts, settings.policy.spacing)
    contacts = {t.id: Contact(t.e164, row.type, callee_zones(t.e164, zone), t.do_not_call, t.consent,
                              t.attempts, t.last_outcome, t.last_attempt_at) for t in targets}
    queue = TargetQueue(
        (Target(t.id, t.customer_id, t.tier, t.order_at.timestamp() if t.order_at else float(t.id))
         for t in targets if t.id not in leave_out), tiers_first=row.tiers_first)
    return queue, contacts, CampaignRules(window, policy, settings.marketing_types)


def _collect(into: list[tuple[Target, str]]) -> Callable[[Target, str], None]:
    def add(target: Target, reason: str) -> None:
        into.append((target, reason))

    return add


def _digits(number: str | None) -> str:
    return "".join(ch for ch in number or "" if ch.isdigit())


def _field(call: Any, name: str) -> Any:
    """A call of the live model, or of a Resynced snapshot (plain dicts)."""
    return call.get(name) if isinstance(call, dict) else getattr(call, name, None)


def _live_number(calls: Any, server: str | None, e164: str, action_id: str) -> bool:
    """A live call on ``server`` that dials ``e164`` (or is the Originate ``action_id``'s)."""
    wanted = _digits(e164)[-8:]
    for call in calls:
        if server and _field(call, "server") not in (None, server):
            continue
        if _field(call, "uniqueid") == f"originate:{action_id}" or (
                wanted and _digits(_field(call, "dialed_number")).endswith(wanted)):
            return True
    return False


def _matching_call(campaign_id: int, e164: str | None, uniqueid: str | None, action_id: str,
                   calls: Any) -> dict[str, Any] | None:
    """The live call of an attempt: by its uniqueid, its synthetic record id, or campaign + dialled number."""
    wanted = _digits(e164)
    for call in calls:
        found = _field(call, "uniqueid")
        if (uniqueid and found == uniqueid) or found == f"originate:{action_id}" or (
                str(_field(call, "campaign_id") or "") == str(campaign_id) and wanted
                and _digits(_field(call, "dialed_number")).endswith(wanted[-8:])):
            return {"uniqueid": found, "answered_at": _field(call, "answered_at"), "up": _field(call, "up"),
                    "dialed_number": _field(call, "dialed_number")}
    return None
