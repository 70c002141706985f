"""The one place the dialer decides *whom* to dial: selection order + the compliance gate — pure logic.

:func:`pick` pops up to ``n`` targets from a campaign's :class:`~ccserver.campaigns.selection.TargetQueue`,
asking the gate (:func:`ccserver.campaigns.compliance.check`) about each at the moment of dialling: refused for
good → dropped (with the reason, for the target's row); refused for now → put back until the gate's ``retry_at``.
Nothing else sends an Originate for a campaign target, so the gate's guarantees hold for every call.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ccserver.campaigns.compliance import MARKETING_TYPES, Contact, RetryPolicy, check
from ccserver.campaigns.selection import Target, TargetQueue
from ccserver.campaigns.windows import CallingWindow

__all__ = ["CampaignRules", "pick"]


@dataclass(frozen=True)
class CampaignRules:
    window: CallingWindow  # already intersected with the global window
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    marketing_types: Container[str] = MARKETING_TYPES


def pick(queue: TargetQueue, contacts: Mapping[int, Contact], rules: CampaignRules, dnc: Container[str],
         now: datetime, n: int, *, busy: Container[int] = frozenset(),
         dropped: Callable[[Target, str], None] | None = None) -> list[Target]:
    """Up to ``n`` targets that may be dialled at ``now`` (aware), in the campaign's order."""
    chosen: list[Target] = []
    if n <= 0:
        return chosen
    taken: set[int] = set()

    def gate(target: Target) -> float | bool:
        contact = contacts.get(target.id)
        if contact is None:
            if dropped is not None:
                dropped(target, "unknown")
            return False
        verdict = check(contact, rules.window, rules.policy, dnc, now, rules.marketing_types)
        if verdict.allowed:
            return True
        if verdict.retry_at is not None:
            return verdict.retry_at.astimezone(UTC).timestamp()
        if dropped is not None:
            dropped(target, verdict.reason or "refused")
        return False

    class _Busy:
        def __contains__(self, customer: object) -> bool:
            return customer in taken or customer in busy

    now_ts = now.timestamp()
    while len(chosen) < n:
        target = queue.next(now_ts, _Busy(), gate)
        if target is None:
            break
        chosen.append(target)
        if target.customer_id is not None:
            taken.add(target.customer_id)
    return chosen
