"""Routing decisions: rule tables, invariants over the whole tier × line × state product, EWT, dialplan contract."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.decision import (
    DIALPLAN_KEYS,
    CallFacts,
    CustomerSummary,
    Decision,
    DidRoute,
    LiveView,
    QueueView,
    WaitingCaller,
    decide,
    default_decision,
    estimate_wait,
    sanitize_value,
)
from routing.numbers import normalize
from routing.rules import RoutingRules

NOW = 1_780_000_000.0
AGENT, AGENT_IFACE = "8001", "PJSIP/8001"  # the consultant's extension, and the phone they signed in from
ADVISOR, ADVISOR_IFACE = "8101", "PJSIP/8101"

DIDS = {
    "sales": DidRoute("02158880001", "sh01", "sales", "sales", "21"),
    "service": DidRoute("02158880002", "sh01", "service", "service", "21"),
    "complaints": DidRoute("02158880003", "sh01", "complaints", "complaints", "21"),
    "insurance": DidRoute("02158880004", "sh01", "insurance", "insurance", "21"),
    "hotline": DidRoute("4008001000", "group", "hotline", "hotline", None),
}
QUEUE_NAMES = ("vip", "sales", "service", "complaints", "insurance", "hotline")


def qv(name, logged_in=4, free=2, paused=0, waiting=(), aht=200.0, free_penalties=None):
    return QueueView(name, tuple(waiting), logged_in, free, paused, free_penalties, aht, aht * 0.8)


def live(agent_state="free", en_queue=False, empty=(), extra=()):
    queues = {n: qv(n, logged_in=0, free=0) if n in empty else qv(n) for n in QUEUE_NAMES}
    if en_queue:
        for n in QUEUE_NAMES:
            queues[f"{n}-en"] = qv(f"{n}-en", logged_in=1, free=1)
    for q in extra:
        queues[q.name] = q
    if agent_state != "unknown":
        # A signed-in agent is the one member of their personal queue.
        for ext, iface in ((AGENT, AGENT_IFACE), (ADVISOR, ADVISOR_IFACE)):
            queues[f"agent-{ext}"] = personal(f"agent-{ext}", iface, agent_state)
    return LiveView(queues=queues)


def personal(name, iface, state):
    if state == "logged_out":
        return QueueView(name)
    free = state == "free"
    return QueueView(name, logged_in=1, free=int(free), free_interfaces=(iface,) if free else ())


def customer(tier="silver", vip=None, lang="zh", complaint=False, calls=0, ambiguous=False):
    return CustomerSummary(
        id="c42", name="张三", tier=tier, score=50.0, vip=tier in ("diamond", "gold") if vip is None else vip,
        preferred_language=lang, sales_consultant=AGENT, service_advisor=ADVISOR, open_complaint=complaint,
        calls_last_24h=calls, ambiguous=ambiguous,
    )


def call(number="13800138000"):
    return CallFacts("dec-1", normalize(number), NOW, "1700000000.1", "02158880001")


# --- the rule table ------------------------------------------------------------------------------------------
# tier, line, open, agent, lang, complaint, repeat → queue, priority, agent queue, announce, max_penalty
TABLE = [
    # tier → queue per line, base priority + VIP bonus
    ("diamond", "sales", True, "busy", "zh", False, False, "vip", 11, "", "", 5),
    ("gold", "sales", True, "busy", "zh", False, False, "vip", 9, "", "", 5),
    ("silver", "sales", True, "busy", "zh", False, False, "sales", 5, "", "", 5),
    ("bronze", "sales", True, "busy", "zh", False, False, "sales", 3, "", "", 5),
    ("prospect", "sales", True, "busy", "zh", False, False, "sales", 1, "", "", 5),
    ("diamond", "service", True, "busy", "zh", False, False, "vip", 11, "", "", 5),
    ("silver", "service", True, "busy", "zh", False, False, "service", 5, "", "", 5),
    ("diamond", "insurance", True, "busy", "zh", False, False, "insurance", 11, "", "", 5),
    ("gold", "hotline", True, "busy", "zh", False, False, "hotline", 9, "", "", 5),
    # complaints line: always the complaints queue, no personal agent
    ("diamond", "complaints", True, "free", "zh", False, False, "complaints", 11, "", "", 5),
    ("bronze", "complaints", True, "free", "zh", True, False, "complaints", 5, "", "", 5),
    # modifiers: complaint +2, repeat +1, VIP +1, capped at 12
    ("silver", "sales", True, "busy", "zh", True, False, "sales", 7, "", "", 5),
    ("silver", "sales", True, "busy", "zh", False, True, "sales", 6, "", "", 5),
    ("silver", "sales", True, "busy", "zh", True, True, "sales", 8, "", "", 5),
    ("bronze", "service", True, "busy", "zh", True, True, "service", 6, "", "", 5),
    ("diamond", "sales", True, "busy", "zh", True, True, "vip", 12, "", "", 5),
    ("gold", "sales", True, "busy", "zh", True, True, "vip", 12, "", "", 5),
    # preferred agent: consultant on sales/hotline, advisor on service, only when logged in and free
    ("silver", "sales", True, "free", "zh", False, False, "sales", 5, "agent-8001", "", 5),
    ("gold", "sales", True, "free", "zh", False, False, "vip", 9, "agent-8001", "", 5),
    ("silver", "hotline", True, "free", "zh", False, False, "hotline", 5, "agent-8001", "", 5),
    ("silver", "service", True, "free", "zh", False, False, "service", 5, "agent-8101", "", 5),
    ("silver", "insurance", True, "free", "zh", False, False, "insurance", 5, "", "", 5),
    ("silver", "sales", True, "logged_out", "zh", False, False, "sales", 5, "", "", 5),
    ("silver", "sales", True, "unknown", "zh", False, False, "sales", 5, "", "", 5),
    # closed: callback-request flow, no queue, no agent
    ("diamond", "sales", False, "free", "zh", False, False, "", 11, "", "cc-after-hours", 5),
    ("silver", "service", False, "free", "zh", True, True, "", 8, "", "cc-after-hours", 5),
    ("prospect", "complaints", False, "busy", "zh", False, False, "", 1, "", "cc-after-hours", 5),
    # language: English callers → "<queue>-en" when it is live and staffed
    ("silver", "sales", True, "busy", "en", False, False, "sales-en", 5, "", "", 5),
    ("gold", "service", True, "busy", "en", False, False, "vip-en", 9, "", "", 5),
]


@pytest.mark.parametrize(
    ("tier", "line", "is_open", "agent", "lang", "complaint", "repeat", "queue", "priority", "agent_queue",
     "announce", "max_penalty"),
    TABLE,
)
def test_rule_table(tier, line, is_open, agent, lang, complaint, repeat, queue, priority, agent_queue, announce,
                    max_penalty):
    view = live(agent, en_queue=True, extra=[qv("vip-en", logged_in=1, free=1)])
    if lang == "zh":
        view = live(agent)
    d = decide(call(), customer(tier, lang=lang, complaint=complaint, calls=2 if repeat else 0), DIDS[line],
               is_open, view, RoutingRules())
    assert (d.queue, d.priority, d.preferred_agent_queue or "", d.announce, d.max_penalty) == \
        (queue, priority, agent_queue, announce, max_penalty), d.reasons
    assert d.tier == tier and d.customer_id == "c42" and d.language == lang
    if agent_queue:
        assert d.preferred_agent_interface in (AGENT_IFACE, ADVISOR_IFACE) and d.agent_timeout == 15
        assert not d.callback_offer
        assert any("rings first" in r for r in d.reasons)
    else:
        assert d.preferred_agent_interface is None and d.agent_timeout == 0
    if not is_open:
        assert d.callback_offer and d.queue == ""


# --- invariants over the full product ------------------------------------------------------------------------

PRODUCT = list(itertools.product(
    ("diamond", "gold", "silver", "bronze", "prospect", None),
    tuple(DIDS),
    (True, False),
    ("free", "busy", "logged_out", "unknown"),
    ("zh", "en"),
    (False, True),  # open complaint
    (0, 3),  # calls in 24 h
))


def test_invariants_over_the_whole_product():
    rules = RoutingRules()
    safe = re.compile(r"^[A-Za-z0-9_.:/@+\-]*$")
    for tier, line, is_open, agent, lang, complaint, calls in PRODUCT:
        cust = None if tier is None else customer(tier, lang=lang, complaint=complaint, calls=calls)
        d = decide(call(), cust, DIDS[line], is_open, live(agent, en_queue=lang == "en"), rules)
        ctx = (tier, line, is_open, agent, lang, complaint, calls, d.reasons)
        assert 1 <= d.priority <= rules.max_priority, ctx
        assert d.reasons, ctx
        if not is_open:
            assert d.queue == "" and d.announce == "cc-after-hours" and d.callback_offer, ctx
        else:
            assert d.queue, ctx
        if line == "complaints" and is_open:
            assert d.queue.startswith("complaints") and d.preferred_agent_interface is None, ctx
        if d.preferred_agent_interface is not None:
            assert agent == "free" and is_open and cust is not None and line in ("sales", "service", "hotline"), ctx
        elif agent == "free" and is_open and cust is not None and line in ("sales", "service", "hotline"):
            pytest.fail(f"own agent free but not chosen: {ctx}")
        if cust is None:
            assert d.tier == "prospect" and d.customer_id is None and d.priority == 1, ctx
        if cust is not None and is_open:
            # every modifier can only raise priority over the bare tier's base
            assert d.priority >= rules.priority[cust.tier], ctx
        dp = d.to_dialplan()
        assert tuple(dp) == DIALPLAN_KEYS
        assert all(safe.match(v) for v in dp.values()), dp


# --- focused cases -------------------------------------------------------------------------------------------


def test_unknown_and_withheld_callers():
    d = decide(call("anonymous"), None, DIDS["sales"], True, live(), RoutingRules())
    assert (d.queue, d.priority, d.tier, d.customer_id) == ("sales", 1, "prospect", None)
    assert d.reasons[0] == "caller number withheld: withheld"
    d = decide(call(), None, DIDS["sales"], True, live(), RoutingRules())
    assert d.reasons[0] == "caller not identified: prospect"


def test_shared_number_gets_no_personal_agent():
    d = decide(call(), customer("gold", ambiguous=True), DIDS["sales"], True, live("free"), RoutingRules())
    assert d.preferred_agent_interface is None
    assert "own consultant skipped: shared number" in d.reasons


def test_manual_vip_bonus_and_unknown_tier():
    d = decide(call(), customer("bronze", vip=True), DIDS["sales"], True, live("busy"), RoutingRules())
    assert (d.queue, d.priority) == ("sales", 4)  # VIP by manual flag: bonus, but the tier's queue
    d = decide(call(), customer("platinum"), DIDS["sales"], True, live("busy"), RoutingRules())
    assert d.tier == "prospect" and "unknown tier 'platinum': read as prospect" in d.reasons


def test_overflow_when_nobody_logged_in():
    d = decide(call(), customer("gold"), DIDS["service"], True, live("busy", empty={"vip"}), RoutingRules())
    assert d.queue == "service"
    assert "nobody logged in to vip: overflow to service" in d.reasons
    rules = RoutingRules.from_dict({"overflow": {"vip": "hotline"}})
    d = decide(call(), customer("gold"), DIDS["service"], True, live("busy", empty={"vip"}), rules)
    assert d.queue == "hotline"


def test_nobody_logged_in_anywhere_is_a_callback_request():
    d = decide(call(), customer("gold"), DIDS["sales"], True, live("busy", empty={"vip", "sales"}), RoutingRules())
    assert (d.queue, d.announce, d.callback_offer) == ("", "cc-no-agents", True)
    assert d.to_dialplan()["CC_QUEUE"] == ""


def test_queue_absent_from_live_view_is_trusted_not_overflowed():
    d = decide(call(), customer("gold"), DIDS["sales"], True, LiveView(), RoutingRules())
    assert (d.queue, d.ewt, d.callback_offer, d.announce) == ("vip", None, False, "")
    assert "no live data for vip: no wait estimate" in d.reasons


def test_long_wait_offers_callback_but_not_when_own_agent_rings():
    busy = qv("sales", logged_in=2, free=0, waiting=[WaitingCaller(5, NOW - 30)] * 6, aht=300.0)
    view = live("busy", extra=[busy])
    d = decide(call(), customer("silver"), DIDS["sales"], True, view, RoutingRules())
    # 6 callers at priority 5 ahead, nobody free, 2 staffed: (6 − 0 + 1) × 300 / 2 = 1050 s
    assert (d.ewt, d.callback_offer, d.announce) == (1050, True, "cc-callback-offer")
    assert d.to_dialplan()["CC_QUEUE"] == "sales"
    view = live("free", extra=[busy])
    d = decide(call(), customer("silver"), DIDS["sales"], True, view, RoutingRules())
    assert (d.preferred_agent_queue, d.callback_offer, d.announce) == ("agent-8001", False, "")
    # a higher-priority caller jumps the queue: the same queue is short for a diamond
    d = decide(call(), customer("diamond"), DIDS["hotline"], True,
               live("busy", extra=[replace(busy, name="hotline")]), RoutingRules())
    assert (d.ewt, d.callback_offer) == (150, False)
    # callbacks can be switched off
    d = decide(call(), customer("silver"), DIDS["sales"], True, live("busy", extra=[busy]),
               RoutingRules.from_dict({"callback_ewt_seconds": 0}))
    assert not d.callback_offer


def test_all_paused_offers_callback():
    paused = qv("sales", logged_in=3, free=0, paused=3)
    d = decide(call(), customer("silver"), DIDS["sales"], True, live("busy", extra=[paused]), RoutingRules())
    assert (d.queue, d.ewt, d.callback_offer) == ("sales", None, True)
    assert d.to_dialplan()["CC_EWT"] == "-1"


def test_penalty_widens_when_no_free_member_in_band():
    narrow = qv("sales", free=2, free_penalties=(10, 12))
    d = decide(call(), customer("silver"), DIDS["sales"], True, live("busy", extra=[narrow]), RoutingRules())
    assert d.max_penalty == 10 and any("widened" in r for r in d.reasons)
    ok = qv("sales", free=2, free_penalties=(0, 12))
    assert decide(call(), customer("silver"), DIDS["sales"], True, live("busy", extra=[ok])).max_penalty == 5
    unknown = qv("sales", free=0, free_penalties=None)
    assert decide(call(), customer("silver"), DIDS["sales"], True, live("busy", extra=[unknown])).max_penalty == 5


def test_language_band_without_language_queue():
    rules = RoutingRules.from_dict({"languages": {"en": {"max_penalty": 1}}})
    narrow = qv("sales", free=1, free_penalties=(7,))
    d = decide(call(), customer("silver", lang="en"), DIDS["sales"], True, live("busy", extra=[narrow]), rules)
    assert (d.queue, d.max_penalty) == ("sales", 1)  # the language band is never widened
    assert "language en: penalty band 1" in d.reasons
    # the language queue exists but nobody is logged in: stay in the base queue
    view = live("busy", extra=[qv("sales-en", logged_in=0, free=0)])
    assert decide(call(), customer("silver", lang="en"), DIDS["sales"], True, view).queue == "sales"


def test_after_hours_queue_for_a_24h_line():
    rules = RoutingRules.from_dict({"after_hours": {"hotline": "hotline"}})
    d = decide(call(), customer("gold"), DIDS["hotline"], False, live("free"), rules)
    assert (d.queue, d.announce, d.preferred_agent_interface) == ("hotline", "", None)


def test_personal_queue_template():
    rules = RoutingRules.from_dict({"preferred_agent": {"queue_template": "direct-{ext}", "ring_seconds": 20}})
    view = live("unknown", extra=[personal("direct-8001", AGENT_IFACE, "free")])
    d = decide(call(), customer("silver"), DIDS["sales"], True, view, rules)
    assert (d.preferred_agent_queue, d.agent_timeout) == ("direct-8001", 20)
    with pytest.raises(ValueError, match="placeholder"):
        RoutingRules.from_dict({"preferred_agent": {"queue_template": "{tech}-{ext}"}})


def test_hot_desking_rings_the_phone_the_agent_signed_in_from():
    view = live("unknown", extra=[personal("agent-8001", "PJSIP/8555", "free")])
    d = decide(call(), customer("silver"), DIDS["sales"], True, view)
    assert (d.preferred_agent_queue, d.preferred_agent_interface) == ("agent-8001", "PJSIP/8555")
    assert any("free at PJSIP/8555" in r for r in d.reasons)


@pytest.mark.parametrize(("state", "complete", "reason"), [
    ("logged_out", False, "not signed in"),  # signed in to sales, not to their personal queue
    ("busy", False, "busy or paused"),
    ("unknown", True, "personal queue agent-8001 not defined in Asterisk"),
    ("unknown", False, "state unknown"),
])
def test_personal_queue_offered_only_when_the_agent_is_a_free_member_of_it(state, complete, reason):
    view = replace(live(state), complete=complete)
    d = decide(call(), customer("silver"), DIDS["sales"], True, view)
    assert d.preferred_agent_queue is None and d.preferred_agent_interface is None
    assert any(reason in r for r in d.reasons), d.reasons


def test_queue_absent_from_a_complete_view_is_never_chosen():
    queues = dict(live("unknown").queues)
    del queues["vip"]
    view = LiveView(queues, complete=True)
    d = decide(call(), customer("gold"), DIDS["sales"], True, view)  # rules: gold on sales -> vip
    assert (d.queue, d.fallback) == ("sales", "unknown_queue")  # the DID's default queue
    assert any("queue vip not defined in Asterisk: sales instead" in r for r in d.reasons)
    # the DID's default missing too: the rules' fallback queue
    del queues["sales"]
    queues["default"] = qv("default")
    d = decide(call(), customer("gold"), DIDS["sales"], True, LiveView(queues, complete=True))
    assert (d.queue, d.fallback) == ("default", "unknown_queue")
    # nothing usable: the callback-request flow, never a queue Asterisk lacks
    del queues["default"]
    d = decide(call(), customer("gold"), DIDS["sales"], True, LiveView(queues, complete=True))
    assert (d.queue, d.callback_offer, d.fallback) == ("", True, "unknown_queue")
    # an incomplete view (no resync yet, AMI down) still trusts the rules
    d = decide(call(), customer("gold"), DIDS["sales"], True, LiveView(queues))
    assert (d.queue, d.fallback) == ("vip", "")


# --- EWT model -----------------------------------------------------------------------------------------------

EWT_TABLE = [
    # waiting (priority, seconds ago), logged_in, free, paused, aht, my priority → ewt
    ((), 4, 2, 0, 200.0, 5, 0.0),  # free member, nobody ahead
    (((5, 10),), 4, 2, 0, 200.0, 5, 0.0),  # one ahead, two free
    (((5, 10), (5, 20)), 4, 2, 0, 200.0, 5, 200.0 / 4),  # two ahead, two free → next completion
    ((), 4, 0, 0, 200.0, 5, 50.0),  # nobody free, nobody ahead: 1 × 200 / 4
    (((5, 10),) * 3, 2, 0, 0, 300.0, 5, 600.0),  # 4 × 300 / 2
    (((5, 10),) * 3, 2, 0, 0, 300.0, 6, 150.0),  # higher priority: nobody ahead
    (((9, 10), (5, 10)), 2, 0, 0, 300.0, 5, 450.0),  # priority ≥ mine counts; lower does not
    (((5, 10),) * 3, 2, 0, 0, 300.0, 4, 600.0),
    (((5, 10),) * 3, 3, 0, 1, 300.0, 5, 600.0),  # paused members are not staff
    ((), 0, 0, 0, 300.0, 5, None),  # nobody logged in: infinite
    ((), 2, 0, 2, 300.0, 5, None),  # everybody paused: infinite
    ((), 2, 0, 0, 0.0, 5, 90.0),  # no history: default AHT 180
    (((5, 5 * 3600),), 2, 0, 0, 300.0, 5, 150.0),  # a ghost entry (older than 4 h) is ignored
]


@pytest.mark.parametrize(("waiting", "logged_in", "free", "paused", "aht", "prio", "expected"), EWT_TABLE)
def test_estimate_wait(waiting, logged_in, free, paused, aht, prio, expected):
    q = QueueView("q", tuple(WaitingCaller(p, NOW - ago) for p, ago in waiting), logged_in, free, paused, None, aht)
    got = estimate_wait(q, prio, NOW)
    assert got == (None if expected is None else pytest.approx(expected))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.floats(0, 3000)), max_size=30), st.integers(0, 20),
       st.integers(0, 20), st.integers(0, 20), st.integers(0, 12))
def test_property_ewt_monotone(waiting, logged_in, free, paused, prio):
    free = min(free, logged_in)
    paused = min(paused, logged_in - free)
    q = QueueView("q", tuple(WaitingCaller(p, NOW - a) for p, a in waiting), logged_in, free, paused, None, 240.0)
    e = estimate_wait(q, prio, NOW)
    if logged_in - paused <= 0:
        assert e is None
        return
    assert e is not None and e >= 0
    more = replace(q, waiting=(*q.waiting, WaitingCaller(prio, NOW)))
    e2 = estimate_wait(more, prio, NOW)
    assert e2 is not None and e2 >= e  # one more caller ahead never shortens the wait
    higher = estimate_wait(q, prio + 1, NOW)
    assert higher is not None and higher <= e  # a higher priority never waits longer


# --- dialplan contract ---------------------------------------------------------------------------------------


def test_dialplan_contract_exact_keys_and_values():
    d = decide(call(), customer("gold", complaint=True), DIDS["sales"], True, live("free"), RoutingRules())
    assert d.to_dialplan() == {
        "CC_QUEUE": "vip",
        "CC_PRIORITY": "11",
        "CC_QUEUE_TIMEOUT": "480",
        "CC_MAX_PENALTY": "5",
        "CC_AGENT_INTERFACE": "PJSIP/8001",
        "CC_AGENT_QUEUE": "agent-8001",
        "CC_AGENT_TIMEOUT": "15",
        "CC_CUSTOMER_ID": "c42",
        "CC_TIER": "gold",
        "CC_LANGUAGE": "zh",
        "CC_ANNOUNCE": "",
        "CC_EWT": "0",
        "CC_DECISION_ID": "dec-1",
    }


def test_dialplan_values_are_sanitized():
    nasty = Decision("id,1 2\r\n\0'\"", "q ${EVIL}", 3, 60, 5, "PJSIP/80 01,x", "agent-1", 15, "c 1,2", "gold",
                     "zh\nCC_X=1", "cc-x;y", False, 12)
    dp = nasty.to_dialplan()
    assert tuple(dp) == DIALPLAN_KEYS
    for value in dp.values():
        assert re.fullmatch(r"[A-Za-z0-9_.:/@+\-]*", value), value
        assert len(value) <= 64
    assert dp["CC_QUEUE"] == "q___EVIL_"


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_property_sanitize(text):
    out = sanitize_value(text)
    assert re.fullmatch(r"[A-Za-z0-9_.:/@+\-]*", out) and len(out) <= 64
    for bad in (" ", ",", "\r", "\n", "\0", "'", '"', "$", "=", ";", "|"):
        assert bad not in out


def test_default_decision():
    d = default_decision(DIDS["service"], "dec-9")
    dp = d.to_dialplan()
    assert (dp["CC_QUEUE"], dp["CC_PRIORITY"], dp["CC_MAX_PENALTY"], dp["CC_CUSTOMER_ID"], dp["CC_DECISION_ID"],
            dp["CC_EWT"], dp["CC_AGENT_INTERFACE"]) == ("service", "1", "10", "", "dec-9", "-1", "")
    rules = RoutingRules.from_dict({"priority": {"prospect": 2}, "queue_timeout": {"prospect": 120}})
    d = default_decision(DIDS["service"], "dec-9", rules)
    assert (d.priority, d.queue_timeout) == (2, 120)


def test_decide_is_deterministic_and_pure():
    args = (call(), customer("gold", complaint=True, calls=1), DIDS["sales"], True, live("free"), RoutingRules())
    assert decide(*args) == decide(*args)
