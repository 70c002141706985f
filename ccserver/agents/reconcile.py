"""What to send Asterisk so its queue members match the agents' sign-ins (pure; no I/O).

After every resync (a fresh QueueStatus), ccserver compares each Asterisk server's dynamic members with the
active sign-ins on that server:

- a signed-in agent missing from one of their queues → ``QueueAdd`` (with their penalty and pause state);
- present with another penalty → ``QueuePenalty``; another pause state → ``QueuePause`` in that queue;
- an interface ccserver manages (it belongs to a user, or to a sign-in) that is a *dynamic* member of a queue its
  active sign-in does not include — or that has no active sign-in at all → ``QueueRemove``. So a desk whose agent
  signed out (while ccserver or the AMI link was down, say) never rings again.

Static members (``member =>`` lines, FreePBX static agents) and interfaces ccserver does not know are never touched.
A sign-in queue that Asterisk does not have is reported, not added (QueueAdd would fail).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SignIn:
    """One active sign-in: ``queues`` maps queue → penalty."""

    extension: str
    interface: str
    member_name: str
    queues: Mapping[str, int]
    paused: bool = False
    pause_reason: str = ""
    state_interface: str | None = None


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """One member of one queue as Asterisk reported it."""

    queue: str
    interface: str
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    dynamic: bool = True


@dataclass(frozen=True, slots=True)
class MemberAction:
    """One AMI member action: ``kind`` is ``add``, ``remove``, ``penalty`` or ``pause``."""

    kind: str
    queue: str
    interface: str
    penalty: int = 0
    paused: bool = False
    reason: str = ""
    member_name: str = ""
    state_interface: str | None = None


@dataclass
class Plan:
    actions: list[MemberAction] = field(default_factory=list)
    missing_queues: list[tuple[str, str]] = field(default_factory=list)  # (extension, queue) Asterisk lacks


def plan_reconcile(sign_ins: Iterable[SignIn], members: Iterable[MemberFacts], managed: Iterable[str],
                   known_queues: Iterable[str] | None) -> Plan:
    """The actions for one Asterisk server. ``managed``: interfaces ccserver owns (users' phones and sign-ins).
    ``known_queues``: every queue Asterisk has (None: unknown — then nothing is reported missing)."""
    plan = Plan()
    by_interface: dict[str, SignIn] = {s.interface: s for s in sign_ins}
    current: dict[tuple[str, str], MemberFacts] = {(m.queue, m.interface): m for m in members}
    known = set(known_queues) if known_queues is not None else None
    for s in by_interface.values():
        for queue, penalty in sorted(s.queues.items()):
            have = current.get((queue, s.interface))
            if have is None:
                if known is not None and queue not in known:
                    plan.missing_queues.append((s.extension, queue))
                    continue
                plan.actions.append(MemberAction("add", queue, s.interface, penalty, s.paused, s.pause_reason,
                                                 s.member_name, s.state_interface))
                continue
            if have.penalty != penalty and have.dynamic:
                plan.actions.append(MemberAction("penalty", queue, s.interface, penalty))
            if have.paused != s.paused or (s.paused and have.paused_reason != s.pause_reason):
                plan.actions.append(MemberAction("pause", queue, s.interface, paused=s.paused, reason=s.pause_reason))
    managed_set = set(managed) | set(by_interface)
    for (queue, interface), have in sorted(current.items()):
        if interface not in managed_set or not have.dynamic:
            continue
        owner = by_interface.get(interface)
        if owner is None or queue not in owner.queues:
            plan.actions.append(MemberAction("remove", queue, interface))
    return plan
