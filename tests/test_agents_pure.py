"""Pure parts of agent sign-in: penalties from skills, and the reconcile plan."""

from __future__ import annotations

import pytest

from ccserver.agents.penalties import BACKUP, PRIMARY, SECONDARY, member_penalty, parse_skill
from ccserver.agents.queue_actions import ALREADY, NO_SUCH_QUEUE, NOT_DYNAMIC, NOT_MEMBER, outcome_of
from ccserver.agents.reconcile import MemberAction, MemberFacts, SignIn, plan_reconcile


@pytest.mark.parametrize(("skills", "queue", "line", "expected"), [
    (["sales", "service"], "sales", "sales", PRIMARY),
    (["sales", "service"], "service", "service", SECONDARY),
    (["sales", "service"], "bj-volvo-service", "service", SECONDARY),  # a store's queue carries its line
    (["sales"], "insurance", "insurance", BACKUP),
    (["sales"], "vip", None, PRIMARY),  # general queues take anyone
    (["sales"], "hotline", "hotline", PRIMARY),
    (["sales"], "default", None, BACKUP),  # the fallback queue: everyone as backup
    (["service:3", "sales"], "service", "service", 3),
    (["bogus:x", "sales"], "sales", "sales", SECONDARY),  # a malformed skill is skipped, never fatal
    ([], "complaints", "complaints", BACKUP),
])
def test_member_penalty(skills, queue, line, expected):
    assert member_penalty(skills, queue, line) == expected


def test_personal_queue_is_always_primary_and_skill_syntax():
    assert member_penalty([], "agent-8001", None, personal=True) == PRIMARY
    assert parse_skill(" sales : 2 ") == ("sales", 2)
    for bad in ("", ":3", "sales:-1", "sales:1001"):
        with pytest.raises(ValueError):
            parse_skill(bad)


@pytest.mark.parametrize(("action", "message", "outcome"), [
    ("QueueAdd", "Unable to add interface: Already there", ALREADY),
    ("QueueAdd", "Unable to add interface to queue: No such queue", NO_SUCH_QUEUE),
    ("QueueRemove", "Unable to remove interface: Not there", ALREADY),
    ("QueueRemove", "Unable to remove interface from queue: No such queue", NO_SUCH_QUEUE),
    ("QueueRemove", "Member not dynamic", NOT_DYNAMIC),
    ("QueuePause", "Interface not found", NOT_MEMBER),
    ("QueuePenalty", "Invalid interface, queuename or penalty", NOT_MEMBER),
    ("QueueAdd", "Out of memory", None),
    ("QueueAdd", "Permission denied", None),
])
def test_asterisk_answers_become_outcomes(action, message, outcome):
    assert outcome_of(action, message) == outcome


def test_reconcile_plan():
    me = SignIn("8001", "PJSIP/8001", "Wang Fang", {"sales": 0, "agent-8001": 0}, paused=True, pause_reason="lunch")
    members = [
        MemberFacts("sales", "PJSIP/8001", penalty=3, paused=True, paused_reason="lunch"),  # wrong penalty
        MemberFacts("vip", "PJSIP/8001"),  # not in the sign-in any more
        MemberFacts("sales", "PJSIP/8002"),  # a managed phone with no sign-in
        MemberFacts("sales", "PJSIP/8003", dynamic=False),  # static: never touched
        MemberFacts("sales", "SIP/other"),  # not ccserver's
    ]
    plan = plan_reconcile([me], members, managed={"PJSIP/8002", "PJSIP/8003"}, known_queues={"sales", "vip"})
    assert plan.actions == [
        MemberAction("penalty", "sales", "PJSIP/8001", 0),
        MemberAction("remove", "sales", "PJSIP/8002"),
        MemberAction("remove", "vip", "PJSIP/8001"),
    ]
    assert plan.missing_queues == [("8001", "agent-8001")]  # Asterisk lacks it: reported, not added
    plan = plan_reconcile([me], [], managed=set(), known_queues=None)  # queue list unknown: add everything
    assert [(a.kind, a.queue, a.paused, a.reason) for a in plan.actions] == [
        ("add", "agent-8001", True, "lunch"), ("add", "sales", True, "lunch")]
