"""The compliance gate: may this contact be dialled now? — pure logic, no I/O.

Every Originate the dialer sends has passed :func:`check` at the moment of sending. Reasons to refuse, in the
order they are checked (the first one is reported):

- ``dnc_customer``: the customer's own ``do_not_call`` flag;
- ``dnc_number``: the number is on the number-level DNC list (numbers that belong to no customer too);
- ``no_consent``: a marketing campaign type and the customer has not consented (or has refused since);
- ``max_attempts``: the contact has used up its attempts;
- ``final``: the last outcome ends the contact (reached, refused, invalid number);
- ``spacing``: too soon after the last attempt for that outcome (retry matrix);
- ``window``: outside the calling window in the callee's local time.

``dnc_*``, ``no_consent``, ``max_attempts`` and ``final`` are permanent for the contact; ``spacing`` and
``window`` come with the moment the contact may be tried again (:attr:`Verdict.retry_at`).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ccserver.campaigns.windows import CallingWindow, is_open, next_open
from ccserver.db.models import CAMPAIGN_OUTCOMES, CAMPAIGN_TYPES
from ccserver.texts import T

__all__ = ["CAMPAIGN_TYPES", "Contact", "FINAL_OUTCOMES", "MARKETING_TYPES", "OUTCOMES", "RetryPolicy",
           "Verdict", "check", "is_marketing"]

# CAMPAIGN_TYPES: the eight planned-call kinds of issue #14 (the vocabulary lives with the model).
# Types that promote a product or service: consent required (PRC rule — opt-in for commercial calls). Return
# visits and satisfaction surveys follow a purchase or visit; callbacks were asked for by the customer.
MARKETING_TYPES = frozenset({"maintenance", "insurance", "member_event"})

# What an attempt can end as. ``abandoned``: answered, but no agent within the 2 s limit.
OUTCOMES = CAMPAIGN_OUTCOMES
FINAL_OUTCOMES = frozenset({"reached", "refused", "invalid"})


def is_marketing(campaign_type: str, marketing_types: Container[str] = MARKETING_TYPES) -> bool:
    return campaign_type in marketing_types


def _default_spacing() -> dict[str, float]:
    return {"busy": 15 * 60.0, "no_answer": 2 * 3600.0, "failed": 30 * 60.0, "machine": 4 * 3600.0,
            "abandoned": 3600.0, "undisposed": 3600.0}


@dataclass(frozen=True)
class RetryPolicy:
    """Max attempts per contact and the minimum spacing (seconds) after each retryable outcome."""

    max_attempts: int = 3
    spacing: Mapping[str, float] = field(default_factory=_default_spacing)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(T("max_attempts must be ≥ 1"))
        for outcome, seconds in self.spacing.items():
            if outcome not in OUTCOMES or outcome in FINAL_OUTCOMES:
                raise ValueError(T("retry spacing for {outcome}: not a retryable outcome", outcome=repr(outcome)))
            if seconds < 0:
                raise ValueError(T("retry spacing for {outcome} must be ≥ 0", outcome=repr(outcome)))

    def earliest_retry(self, outcome: str, at: datetime) -> datetime | None:
        """When a contact whose attempt ended ``outcome`` at ``at`` may be dialled again; None: never."""
        if outcome in FINAL_OUTCOMES:
            return None
        return at + timedelta(seconds=self.spacing.get(outcome, 3600.0))


@dataclass(frozen=True)
class Contact:
    """What the gate needs to know about one target, as plain data."""

    e164: str
    campaign_type: str
    zones: tuple[ZoneInfo, ...]  # windows.callee_zones(e164, store zone)
    do_not_call: bool = False
    consent: bool = False
    attempts: int = 0
    last_outcome: str | None = None
    last_attempt_at: datetime | None = None


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str | None = None
    retry_at: datetime | None = None  # for 'spacing' / 'window': the first moment worth asking again

    @property
    def permanent(self) -> bool:
        return not self.allowed and self.retry_at is None


ALLOWED = Verdict(True)


def check(contact: Contact, window: CallingWindow, policy: RetryPolicy, dnc_numbers: Container[str],
          now: datetime, marketing_types: Container[str] = MARKETING_TYPES) -> Verdict:
    """May ``contact`` be dialled at ``now`` (aware)? See the module docstring for the reasons."""
    if contact.do_not_call:
        return Verdict(False, "dnc_customer")
    if contact.e164 in dnc_numbers:
        return Verdict(False, "dnc_number")
    if is_marketing(contact.campaign_type, marketing_types) and not contact.consent:
        return Verdict(False, "no_consent")
    if contact.attempts >= policy.max_attempts:
        return Verdict(False, "max_attempts")
    if contact.last_outcome is not None and contact.last_attempt_at is not None:
        earliest = policy.earliest_retry(contact.last_outcome, contact.last_attempt_at)
        if earliest is None:
            return Verdict(False, "final")
        if now < earliest:
            opens = next_open(window, contact.zones, earliest)
            return Verdict(False, "spacing", opens) if opens else Verdict(False, "window")
    if not is_open(window, contact.zones, now):
        opens = next_open(window, contact.zones, now)
        return Verdict(False, "window", opens)
    return ALLOWED
