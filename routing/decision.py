"""The routing decision: who is calling, which line, what is live → queue, priority, preferred agent, timeouts.

``decide(call, customer, did, calendar_open, live, rules) -> Decision`` is pure (no I/O, no clock, no random):
the caller passes the decision id and the current time in ``CallFacts``. ``Decision.to_dialplan()`` gives the
variables the dialplan reads (a fixed contract, below). ``default_decision(did, decision_id)`` is the DID's
in-memory route for when SQL or Redis are slow or down.

Order of the rules (every rule that fires adds a line to ``Decision.reasons``):

1. **Identity.** Unknown callers (no ``CustomerSummary``) are tier ``prospect``; ``CC_CUSTOMER_ID`` is empty.
   A tier outside the vocabulary is read as ``prospect``. Language = the customer's preference, else the DID's.
2. **Priority.** ``priority[tier]`` + open complaint + repeat caller (≥ ``repeat_min_calls`` earlier calls in
   24 h) + VIP, capped at ``max_priority``; then ``CallFacts.bonus`` (what the caller reported in the IVR: a
   breakdown, a complaint), for identified and unknown callers alike, capped again. Computed for every call, a
   callback request included (the callback list is ranked by it).
3. **Closed.** ``calendar_open`` False → the line's after-hours queue if configured, else the callback-request
   flow: ``CC_QUEUE`` empty, ``CC_ANNOUNCE`` = ``announce.after_hours``, ``callback_offer`` True.
4. **Queue.** ``queues[line][tier]``, else ``queues[line]["*"]``, else the DID's default queue.
5. **Language.** A language rule with a queue template whose queue is in the live view with members logged
   in → that queue. Otherwise the language's penalty band, if it has one.
6. **Queues that exist.** When the live view is ``complete`` (Asterisk's own queue list after a resync), a
   chosen queue Asterisk does not have is replaced by the DID's default queue, else ``fallback_queue``, the first
   of them that exists (``Decision.fallback`` = ``unknown_queue``, counted by the caller); none exists → the
   callback-request flow. An incomplete view trusts the config.
   **Overflow.** The chosen queue is in the live view with nobody logged in → ``overflow[queue]``, else the
   DID's default queue (at most ``max_overflow_hops``). Nobody logged in anywhere → ``CC_QUEUE`` empty,
   ``announce.no_agents``, callback offered. A queue *absent* from an incomplete live view is trusted.
7. **Penalty band.** ``penalty.max``; widened to ``penalty.widened`` when the live view lists the free
   members' penalties and none is within the band (a language band is never widened: the point of it is to
   reach speakers of the language).
8. **Preferred agent.** On lines in ``preferred_agent.lines``, the customer's consultant (``consultant``) or
   service advisor (``advisor``) rings first with ``ring_seconds`` through their personal queue
   (``queue_template`` with their extension, ``agent-8001``) so app_queue produces the same events (screen pop,
   wallboard) as any queue call — only when the live view shows that queue with a free member: the agent signed
   in to it (from whichever phone: hot-desking) and able to take the call. Not for callers whose number several
   customers share.
9. **EWT and callback.** Priority-aware EWT in the chosen queue (``routing.live.estimate_wait``); a callback is
   offered (``announce.callback_offer``) when it is above ``callback_ewt_seconds`` or when nobody staffed can
   answer — unless a preferred agent is ringing first.
10. **Timeout.** ``queue_timeout[tier]``.

Dialplan contract (``to_dialplan``): exactly these keys, values matching ``[A-Za-z0-9_.:/@+-]*`` (no spaces,
commas, quotes, ``$``, CR/LF/NUL; so they survive AGI argument splitting *and* MSet's comma splitting):

- ``CC_QUEUE``: queue name; empty → run the callback-request IVR (after hours / no agents).
- ``CC_PRIORITY``: QUEUE_PRIO (integer).
- ``CC_QUEUE_TIMEOUT``: seconds, for Queue()'s timeout argument.
- ``CC_MAX_PENALTY``: for QUEUE_MAX_PENALTY (integer).
- ``CC_AGENT_INTERFACE``: the interface the preferred agent is signed in from (``PJSIP/8001``); empty when none.
- ``CC_AGENT_QUEUE``: the preferred agent's personal queue (``agent-8001``); empty when none. **Added** to the
  original contract: the dialplan queues the first leg here (so app_queue emits the events that drive the
  screen pop and the wallboard) rather than Dial()ing the interface.
- ``CC_AGENT_TIMEOUT``: seconds to ring the preferred agent; empty when none.
- ``CC_CUSTOMER_ID``: empty when the caller is not identified.
- ``CC_TIER``: diamond / gold / silver / bronze / prospect.
- ``CC_LANGUAGE``: ``zh`` / ``en`` … (for CHANNEL(language) and prompts).
- ``CC_ANNOUNCE``: empty, or one of the three ``announce.*`` prompt names. ``announce.callback_offer`` with
  ``CC_QUEUE`` set means "offer a callback, else queue"; the other two come with an empty ``CC_QUEUE``.
- ``CC_EWT``: estimated wait, whole seconds rounded up; ``-1`` = unknown, or nobody to answer.
- ``CC_DECISION_ID``: the id passed in ``CallFacts`` (logged with the call; links CDRs to the decision).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Final

from routing.live import LiveView, QueueView, WaitingCaller, estimate_wait
from routing.numbers import CallerNumber
from routing.rules import SAFE_NAME, RoutingRules
from routing.value import TIERS

__all__ = [
    "CallFacts",
    "CustomerSummary",
    "DidRoute",
    "Decision",
    "DIALPLAN_KEYS",
    "decide",
    "default_decision",
    "estimate_wait",
    "personal_queue",
    "LiveView",
    "QueueView",
    "WaitingCaller",
    "sanitize_value",
]

DIALPLAN_KEYS: Final = (
    "CC_QUEUE",
    "CC_PRIORITY",
    "CC_QUEUE_TIMEOUT",
    "CC_MAX_PENALTY",
    "CC_AGENT_INTERFACE",
    "CC_AGENT_QUEUE",
    "CC_AGENT_TIMEOUT",
    "CC_CUSTOMER_ID",
    "CC_TIER",
    "CC_LANGUAGE",
    "CC_ANNOUNCE",
    "CC_EWT",
    "CC_DECISION_ID",
)

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.:/@+\-]")
_MAX_VALUE: Final = 64
_DEFAULT_RULES: Final = RoutingRules()
_TIER_SET: Final = frozenset(TIERS)


def sanitize_value(value: object) -> str:
    """A dialplan-safe value: anything outside ``[A-Za-z0-9_.:/@+-]`` becomes ``_``; at most 64 chars."""
    text = str(value)
    if len(text) > _MAX_VALUE:
        text = text[:_MAX_VALUE]
    return _UNSAFE.sub("_", text)


@dataclass(frozen=True, slots=True)
class CallFacts:
    """The call being routed. ``decision_id``: unique id chosen by the caller (e.g. the AGI uniqueid plus a
    counter) — pure code generates none. ``caller``: the normalised caller number. ``now``: epoch seconds (for
    EWT). ``uniqueid``: Asterisk's channel uniqueid (informational). ``dialed``: the number dialled (the DID)."""

    decision_id: str
    caller: CallerNumber | None = None
    now: float = 0.0
    uniqueid: str = ""
    dialed: str = ""
    bonus: int = 0  # priority added by what the caller told the IVR (a breakdown, a complaint); capped as usual
    bonus_reason: str = ""  # why, for the decision's reasons


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    """The identified customer, already resolved by the caller (SQL/Redis, cached).

    ``id``/``name``: CRM id and display name. ``tier``: diamond/gold/silver/bronze/prospect. ``score``: 0–100.
    ``vip``: already resolved (tier in vip_tiers or manual flag). ``preferred_language``: ``zh``/``en``/None.
    ``sales_consultant`` / ``service_advisor``: the extensions (``8001``) of the customer's own people, or None;
    where they are signed in is live state, not part of the customer. ``open_complaint``: an open complaint
    ticket. ``calls_last_24h``: earlier inbound calls in the last 24 h (this one not counted). ``ambiguous``: the
    number belongs to several customers (the caller picked the most recently active one; no personal agent).
    """

    id: str
    name: str = ""
    tier: str = "prospect"
    score: float = 0.0
    vip: bool = False
    preferred_language: str | None = None
    sales_consultant: str | None = None
    service_advisor: str | None = None
    open_complaint: bool = False
    calls_last_24h: int = 0
    ambiguous: bool = False


@dataclass(frozen=True, slots=True)
class DidRoute:
    """What a dialled number (DID) means: ``did`` the number, ``store_id`` the store, ``line`` one of sales /
    service / complaints / insurance / hotline (or any site-defined name), ``default_queue`` its queue,
    ``area_code`` the store's area code (for local caller numbers, ``"21"``), ``language`` its default language."""

    did: str
    store_id: str
    line: str
    default_queue: str
    area_code: str | None = None
    language: str = "zh"


@dataclass(frozen=True, slots=True)
class Decision:
    """Where the call goes, and why. ``queue`` empty = callback-request flow. ``ewt`` None = unknown/infinite.
    ``preferred_agent_*`` None and ``agent_timeout`` 0 when there is no preferred agent."""

    decision_id: str
    queue: str
    priority: int
    queue_timeout: int
    max_penalty: int
    preferred_agent_interface: str | None = None
    preferred_agent_queue: str | None = None
    agent_timeout: int = 0
    customer_id: str | None = None
    tier: str = "prospect"
    language: str = "zh"
    announce: str = ""
    callback_offer: bool = False
    ewt: int | None = None
    reasons: list[str] = field(default_factory=list)
    fallback: str = ""  # why the rules' queue could not be used ("unknown_queue"), for the caller to count

    def to_dialplan(self) -> dict[str, str]:
        """The dialplan variables (see the module docstring); every value is sanitized."""
        has_agent = bool(self.preferred_agent_interface)
        s = sanitize_value
        return {
            "CC_QUEUE": s(self.queue),
            "CC_PRIORITY": str(int(self.priority)),
            "CC_QUEUE_TIMEOUT": str(int(self.queue_timeout)),
            "CC_MAX_PENALTY": str(int(self.max_penalty)),
            "CC_AGENT_INTERFACE": s(self.preferred_agent_interface) if has_agent else "",
            "CC_AGENT_QUEUE": s(self.preferred_agent_queue) if has_agent and self.preferred_agent_queue else "",
            "CC_AGENT_TIMEOUT": str(int(self.agent_timeout)) if has_agent else "",
            "CC_CUSTOMER_ID": s(self.customer_id) if self.customer_id else "",
            "CC_TIER": s(self.tier),
            "CC_LANGUAGE": s(self.language),
            "CC_ANNOUNCE": s(self.announce),
            "CC_EWT": str(self.ewt) if self.ewt is not None and self.ewt >= 0 else "-1",
            "CC_DECISION_ID": s(self.decision_id),
        }


def _ewt_int(seconds: float | None) -> int | None:
    if seconds is None or not math.isfinite(seconds):
        return None
    return int(math.ceil(seconds))


def decide(call: CallFacts, customer: CustomerSummary | None, did: DidRoute, calendar_open: bool,
           live: LiveView, rules: RoutingRules = _DEFAULT_RULES) -> Decision:
    """Route one call. Pure; see the module docstring for the rules and their order."""
    reasons: list[str] = []

    # 1. identity
    if customer is None:
        tier = "prospect"
        customer_id = None
        language = did.language
        if call.caller is not None and call.caller.status != "ok":
            reasons.append(f"caller number {call.caller.status}: {call.caller.reason}")
        else:
            reasons.append("caller not identified: prospect")
    else:
        tier = customer.tier if customer.tier in _TIER_SET else "prospect"
        customer_id = customer.id or None
        language = customer.preferred_language or did.language
        if tier != customer.tier:
            reasons.append(f"unknown tier {customer.tier!r}: read as prospect")
        else:
            reasons.append(f"customer {customer.id}: {tier}" + (" VIP" if customer.vip else ""))
        if customer.ambiguous:
            reasons.append("number shared by several customers")

    priority = rules.priority[tier]
    queue_timeout = rules.queue_timeout[tier]

    # 2. priority (also carried by a callback request, so it is ranked like the call)
    if customer is not None:
        bonus = 0
        if customer.open_complaint and rules.complaint_bonus:
            bonus += rules.complaint_bonus
            reasons.append(f"open complaint: priority +{rules.complaint_bonus}")
        if customer.calls_last_24h >= rules.repeat_min_calls and rules.repeat_bonus:
            bonus += rules.repeat_bonus
            reasons.append(f"repeat caller ({customer.calls_last_24h} calls in 24 h): priority +{rules.repeat_bonus}")
        if customer.vip and rules.vip_bonus:
            bonus += rules.vip_bonus
            reasons.append(f"VIP: priority +{rules.vip_bonus}")
        if priority + bonus > rules.max_priority:
            reasons.append(f"priority capped at {rules.max_priority}")
        priority = min(priority + bonus, rules.max_priority)

    # the IVR's own reason for more priority (a breakdown or complaint reported in the menu), for anyone
    if call.bonus:
        reasons.append(f"{call.bonus_reason or 'IVR'}: priority +{call.bonus}")
        if priority + call.bonus > rules.max_priority:
            reasons.append(f"priority capped at {rules.max_priority}")
        priority = max(min(priority + call.bonus, rules.max_priority), 0)

    # 3. closed
    if not calendar_open:
        after = rules.after_hours.get(did.line)
        if after is None:
            reasons.append(f"{did.line} line closed: callback request")
            return Decision(call.decision_id, "", priority, queue_timeout, rules.max_penalty,
                            customer_id=customer_id, tier=tier, language=language,
                            announce=rules.announce_after_hours, callback_offer=True, reasons=reasons)
        reasons.append(f"{did.line} line closed: after-hours queue {after}")
        queue = after
    else:
        # 4. queue by line and tier
        table = rules.queues.get(did.line)
        queue = did.default_queue
        if table is not None:
            chosen = table.get(tier) or table.get("*")
            if chosen:
                queue = chosen
                reasons.append(f"{did.line} line, {tier}: queue {queue}")

    # 5. language
    queues = live.queues
    band = rules.max_penalty
    language_band = False
    lang_rule = rules.languages.get(language)
    if lang_rule is not None:
        used_queue = False
        if lang_rule.queue_template is not None:
            candidate = lang_rule.queue_template.format(queue=queue)
            view = queues.get(candidate)
            if view is not None and view.logged_in > 0:
                reasons.append(f"language {language}: queue {candidate}")
                queue = candidate
                used_queue = True
        if not used_queue and lang_rule.max_penalty is not None:
            band = lang_rule.max_penalty
            language_band = True
            reasons.append(f"language {language}: penalty band {band}")

    # 6. queues that exist, then overflow
    fallback = ""
    if live.complete and queue not in queues:
        missing = queue
        queue = next((q for q in (did.default_queue, rules.fallback_queue) if q in queues), "")
        fallback = "unknown_queue"
        if not queue:
            reasons.append(f"queue {missing} not defined in Asterisk, nor the fallbacks: callback request")
            return Decision(call.decision_id, "", priority, queue_timeout, band, customer_id=customer_id,
                            tier=tier, language=language, announce=rules.announce_no_agents, callback_offer=True,
                            reasons=reasons, fallback=fallback)
        reasons.append(f"queue {missing} not defined in Asterisk: {queue} instead")
    qview = queues.get(queue)
    hops = 0
    while qview is not None and qview.logged_in <= 0:
        nxt = rules.overflow.get(queue) or did.default_queue
        if hops >= rules.max_overflow_hops or nxt == queue:
            reasons.append(f"nobody logged in to {queue}: callback request")
            return Decision(call.decision_id, "", priority, queue_timeout, band, customer_id=customer_id,
                            tier=tier, language=language, announce=rules.announce_no_agents, callback_offer=True,
                            reasons=reasons, fallback=fallback)
        reasons.append(f"nobody logged in to {queue}: overflow to {nxt}")
        queue = nxt
        qview = queues.get(queue)
        hops += 1

    # 7. penalty band
    if qview is not None and qview.free_penalties is not None and not language_band and \
            rules.widened_max_penalty > band and not any(p <= band for p in qview.free_penalties):
        reasons.append(f"no free member within penalty {band}: widened to {rules.widened_max_penalty}")
        band = rules.widened_max_penalty

    # 8. preferred agent
    agent_interface: str | None = None
    agent_queue: str | None = None
    agent_timeout = 0
    role = rules.agent_lines.get(did.line)
    if role is not None and customer is not None and calendar_open:
        extension = customer.sales_consultant if role == "consultant" else customer.service_advisor
        if extension and customer.ambiguous:
            reasons.append(f"own {role} skipped: shared number")
        elif extension:
            personal = personal_queue(rules, extension)
            pview = queues.get(personal) if personal else None
            if not personal:
                reasons.append(f"own {role} {extension}: no usable personal queue name")
            elif pview is None:
                reasons.append(f"own {role} {extension}: " + ("personal queue " + personal + " not defined in Asterisk"
                                                               if live.complete else "state unknown"))
            elif pview.logged_in <= 0:
                reasons.append(f"own {role} {extension}: not signed in")
            elif pview.free <= 0 or not pview.free_interfaces:
                reasons.append(f"own {role} {extension}: busy or paused")
            else:
                agent_interface = pview.free_interfaces[0]
                agent_queue = personal
                agent_timeout = rules.agent_ring_seconds
                reasons.append(f"own {role} {extension} free at {agent_interface}: rings first for "
                               f"{agent_timeout} s via {personal}")

    # 9. EWT and callback offer
    ewt: int | None = None
    announce = ""
    callback_offer = False
    if qview is None:
        reasons.append(f"no live data for {queue}: no wait estimate")
    else:
        estimate = estimate_wait(qview, priority, call.now, default_aht=rules.default_aht_seconds)
        ewt = _ewt_int(estimate)
        offer = estimate is None or (rules.callback_ewt_seconds > 0 and estimate > rules.callback_ewt_seconds)
        if offer and agent_interface is None and rules.callback_ewt_seconds > 0:
            callback_offer = True
            announce = rules.announce_callback_offer
            reasons.append("nobody free to answer: callback offered" if estimate is None
                           else f"estimated wait {ewt} s > {rules.callback_ewt_seconds} s: callback offered")

    return Decision(call.decision_id, queue, priority, queue_timeout, band, agent_interface, agent_queue,
                    agent_timeout, customer_id, tier, language, announce, callback_offer, ewt, reasons, fallback)


def personal_queue(rules: RoutingRules, extension: str) -> str:
    """The personal queue of the agent with ``extension`` (``agent-8001``), or "" when the name is unusable."""
    name = rules.agent_queue_template.format(ext=extension)
    return name if SAFE_NAME.match(name) else ""


def default_decision(did: DidRoute, decision_id: str, rules: RoutingRules | None = None) -> Decision:
    """The DID's own route, from memory only: for when SQL/Redis are slow or down (the AGI deadline wins).
    Prospect priority and timeout, the widened penalty band (nobody knows who is free), no preferred agent."""
    r = rules if rules is not None else _DEFAULT_RULES
    return Decision(decision_id, did.default_queue, r.priority["prospect"], r.queue_timeout["prospect"],
                    r.widened_max_penalty, language=did.language,
                    reasons=[f"default route for {did.did}: live data unavailable"])
