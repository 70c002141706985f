"""The live view a routing decision needs, read from the in-process state tracker.

Runs once per call, so it reads only the queues the decision can touch (:func:`queues_of_interest`: the line's
candidate queues, their language variants, overflow targets, the after-hours queue, the DID's default queue)
and the one agent that may ring first. A queue the tracker does not know is left out of the view: routing
treats an absent queue as *unknown* (trusted, not overflowed), so an AMI outage never empties every queue.

Average handle time: app_queue's own running average talk time (``TalkTime`` of QueueStatus, kept by the
tracker the same way) plus the logged-in members' mean wrap-up time; 0 when the queue has no history yet
(routing then assumes its default).
"""

from __future__ import annotations

from collections.abc import Iterable

from ccserver.state.model import AgentStatus, QueueState
from ccserver.state.tracker import StateTracker
from routing.decision import CustomerSummary, DidRoute
from routing.live import AgentView, LiveView, QueueView, WaitingCaller
from routing.rules import RoutingRules

__all__ = ["EMPTY_VIEW", "live_view", "queue_view", "queues_of_interest"]

EMPTY_VIEW = LiveView()


def queues_of_interest(did: DidRoute, rules: RoutingRules) -> set[str]:
    """Every queue ``decide()`` may look at for a call on ``did``."""
    names = {did.default_queue}
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
    """The interface of the customer's own person on this line, if any."""
    role = rules.agent_lines.get(did.line)
    if role is None or customer is None:
        return None
    return customer.sales_consultant if role == "consultant" else customer.service_advisor


def queue_view(q: QueueState) -> QueueView:
    logged_in = free = paused = 0
    penalties: list[int] = []
    wrapup = 0
    for m in q.members.values():
        if not m.logged_in:
            continue
        logged_in += 1
        wrapup += m.wrapuptime
        if m.paused:
            paused += 1
        if m.available:
            free += 1
            penalties.append(m.penalty)
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
    )


def live_view(tracker: StateTracker | None, server: str, now: float, queues: Iterable[str],
              agents: Iterable[str] = ()) -> LiveView:
    """A :class:`LiveView` of ``queues`` and ``agents`` (interfaces) on Asterisk ``server``.

    ``tracker`` None (no AMI) gives an empty view. ``now`` (epoch seconds) refreshes agents whose wrap-up ended
    since the tracker's last event.
    """
    if tracker is None:
        return EMPTY_VIEW
    qviews: dict[str, QueueView] = {}
    for name in queues:
        q = tracker.queue(name, server)
        if q is not None:
            qviews[name] = queue_view(q)
    aviews: dict[str, AgentView] = {}
    for interface in agents:
        agent = tracker.agents.get((server, interface))
        if agent is not None:
            state = agent.state
            free = state == AgentStatus.IDLE or (state == AgentStatus.WRAPUP and (agent.wrapup_until or 0) <= now)
            aviews[interface] = AgentView(interface, logged_in=state != AgentStatus.LOGGED_OUT, free=free)
    return LiveView(queues=qviews, agents=aviews)
