"""The live view a routing decision needs, read from the in-process state tracker.

Runs once per call, so it reads only the queues the decision can touch (:func:`queues_of_interest`: the line's
candidate queues, their language variants, overflow targets, the after-hours queue, the DID's default queue)
and the personal queue of the one agent who may ring first (its member is that agent, signed in from whichever
phone). A queue the tracker does not know is left out of the view. Until the tracker has applied a full
QueueStatus resync of the server, routing treats an absent queue as *unknown* (trusted, not overflowed), so an
AMI outage never empties every queue; after one, the view is ``complete`` and an absent queue does not exist.

Average handle time: app_queue's own running average talk time (``TalkTime`` of QueueStatus, kept by the
tracker the same way) plus the logged-in members' mean wrap-up time; 0 when the queue has no history yet
(routing then assumes its default).
"""

from __future__ import annotations

from collections.abc import Iterable

from ccserver.state.model import AgentStatus, QueueState
from ccserver.state.tracker import StateTracker
from routing.decision import CustomerSummary, DidRoute, personal_queue
from routing.live import LiveView, QueueView, WaitingCaller
from routing.rules import RoutingRules

__all__ = ["EMPTY_VIEW", "live_view", "queue_view", "queues_of_interest"]

EMPTY_VIEW = LiveView()


def queues_of_interest(did: DidRoute, rules: RoutingRules) -> set[str]:
    """Every queue ``decide()`` may look at for a call on ``did``."""
    names = {did.default_queue, rules.fallback_queue}
    table = rules.queues.get(did.line)
    if table:
        names.update(q for q in table.values() if q)
    after = rules.after_hours.get(did.line)
    if after:
        names.add(after)
    # overflow chains (bounded like decide's hops)
    frontier = set(names)
    for _ in range(rules.max_overflow_hops):
        frontier = {rules.overflow[q] for q in frontier if q in rules.overflow} - names
        if not frontier:
            break
        names |= frontier
    templates = [r.queue_template for r in rules.languages.values() if r.queue_template]
    names |= {t.format(queue=q) for t in templates for q in list(names)}
    return names


def agent_of_interest(did: DidRoute, customer: CustomerSummary | None, rules: RoutingRules) -> str | None:
    """The personal queue of the customer's own person on this line (``agent-8001``), if any."""
    role = rules.agent_lines.get(did.line)
    if role is None or customer is None:
        return None
    extension = customer.sales_consultant if role == "consultant" else customer.service_advisor
    return personal_queue(rules, extension) or None if extension else None


def queue_view(q: QueueState, busy_interfaces: frozenset[str] = frozenset()) -> QueueView:
    """``busy_interfaces``: members that app_queue may list as free but that cannot take a call now (in wrap-up)."""
    logged_in = free = paused = 0
    penalties: list[int] = []
    free_interfaces: list[str] = []
    wrapup = 0
    for m in q.members.values():
        if not m.logged_in:
            continue
        logged_in += 1
        wrapup += m.wrapuptime
        if m.paused:
            paused += 1
        if m.available and m.interface not in busy_interfaces:
            free += 1
            penalties.append(m.penalty)
            free_interfaces.append(m.interface)
    aht = float(q.talktime + (wrapup / logged_in if logged_in else 0)) if q.talktime > 0 else 0.0
    return QueueView(
        name=q.name,
        waiting=tuple(WaitingCaller(c.priority, c.joined_at) for c in q.callers),
        logged_in=logged_in,
        free=free,
        paused=paused,
        free_penalties=tuple(penalties),
        avg_handle_seconds=aht,
        avg_talk_seconds=float(q.talktime),
        free_interfaces=tuple(free_interfaces),
    )


def live_view(tracker: StateTracker | None, server: str, now: float, queues: Iterable[str],
              personal: str | None = None) -> LiveView:
    """A :class:`LiveView` of ``queues`` (and the ``personal`` queue of an agent who may ring first) on Asterisk
    ``server``; ``complete`` once the tracker holds Asterisk's full queue list for that server.

    ``tracker`` None (no AMI) gives an empty view. ``now`` (epoch seconds) tells who is still in wrap-up.
    """
    if tracker is None:
        return EMPTY_VIEW
    qviews: dict[str, QueueView] = {}
    for name in queues:
        q = tracker.queue(name, server)
        if q is not None:
            qviews[name] = queue_view(q)
    if personal is not None:
        q = tracker.queue(personal, server)
        if q is not None:
            wrapping = frozenset(iface for iface in q.members if _in_wrapup(tracker, server, iface, now))
            qviews[personal] = queue_view(q, wrapping)
    return LiveView(queues=qviews, complete=tracker.queues_complete(server))


def _in_wrapup(tracker: StateTracker, server: str, interface: str, now: float) -> bool:
    agent = tracker.agents.get((server, interface))
    return agent is not None and agent.state == AgentStatus.WRAPUP and (agent.wrapup_until or 0) > now
