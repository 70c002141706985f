"""Routing rules config: defaults, partial overrides, round trip, validation errors that name the key."""

from __future__ import annotations

import tomllib

import pytest

from routing.rules import LanguageRule, RoutingRules, RulesError


def test_defaults():
    r = RoutingRules()
    assert r.priority == {"diamond": 10, "gold": 8, "silver": 5, "bronze": 3, "prospect": 1}
    assert (r.complaint_bonus, r.repeat_bonus, r.vip_bonus, r.max_priority) == (2, 1, 1, 12)
    assert r.queues["sales"] == {"diamond": "vip", "gold": "vip"}
    assert r.queues["complaints"] == {"*": "complaints"}
    assert r.vip_tiers == frozenset({"diamond", "gold"})
    assert (r.agent_ring_seconds, r.agent_queue_template) == (15, "agent-{ext}")
    assert r.agent_lines == {"sales": "consultant", "hotline": "consultant", "service": "advisor"}
    assert r.languages["en"] == LanguageRule(queue_template="{queue}-en")
    assert (r.max_penalty, r.widened_max_penalty, r.callback_ewt_seconds) == (5, 10, 180)
    assert RoutingRules.from_dict(None) == r
    assert RoutingRules.from_dict({}) == r


def test_docstring_example_parses_to_the_defaults():
    """The TOML in the module docstring is the documented default: keep them in step."""
    import routing.rules as mod

    doc = mod.__doc__ or ""
    start = doc.index("    [routing]\n")
    end = doc.index("\nSkills as penalties")
    toml_text = "\n".join(line[4:] for line in doc[start:end].splitlines())
    data = tomllib.loads(toml_text)["routing"]
    assert RoutingRules.from_dict(data) == RoutingRules()


def test_partial_overrides_merge_with_defaults():
    r = RoutingRules.from_dict({
        "priority": {"gold": 9},
        "modifiers": {"open_complaint": 3},
        "queues": {"sales": {}, "insurance": {"*": "insurance-team", "diamond": "vip"}},
        "preferred_agent": {"lines": {"insurance": "advisor"}},
        "languages": {"ja": {"queue_template": "{queue}-ja"}},
        "announce": {"after_hours": "custom/closed"},
    })
    assert r.priority["gold"] == 9 and r.priority["diamond"] == 10
    assert r.complaint_bonus == 3 and r.repeat_bonus == 1
    assert r.queues["sales"] == {} and r.queues["service"] == {"diamond": "vip", "gold": "vip"}
    assert r.queues["insurance"] == {"*": "insurance-team", "diamond": "vip"}
    assert r.agent_lines == {"insurance": "advisor"}
    assert set(r.languages) == {"en", "ja"}
    assert r.announce_after_hours == "custom/closed"


def test_round_trip():
    r = RoutingRules.from_dict({"overflow": {"vip": "sales"}, "after_hours": {"hotline": "night"},
                                "languages": {"en": {"max_penalty": 1}}, "vip_tiers": ["diamond"]})
    assert RoutingRules.from_dict(r.to_dict()) == r


BAD = [
    ({"priority": {"gold": "high"}}, "routing.priority.gold", "expected an integer"),
    ({"priority": {"platinum": 12}}, "routing.priority.platinum", "unknown tier"),
    ({"priority": {"gold": True}}, "routing.priority.gold", "expected an integer"),
    ({"priority": {"diamond": 20}}, "routing.priority.diamond", "above max_priority"),
    ({"priorty": {}}, "routing.priorty", "unknown key"),
    ({"modifiers": {"open_complain": 2}}, "routing.modifiers.open_complain", "unknown key"),
    ({"modifiers": {"repeat_min_calls": 0}}, "routing.modifiers.repeat_min_calls", "within 1"),
    ({"queue_timeout": {"gold": -5}}, "routing.queue_timeout.gold", "within"),
    ({"queues": {"sales": {"gold": "vip queue"}}}, "routing.queues.sales.gold", "queue name"),
    ({"queues": {"sales": {"gold": "vip,1"}}}, "routing.queues.sales.gold", "queue name"),
    ({"queues": {"sales": "vip"}}, "routing.queues.sales", "expected a table"),
    ({"queues": {"sales": {"vip": "vip"}}}, "routing.queues.sales.vip", "unknown tier"),
    ({"overflow": {"vip": "${EVIL}"}}, "routing.overflow.vip", "queue name"),
    ({"preferred_agent": {"ring_seconds": 0}}, "routing.preferred_agent.ring_seconds", "within"),
    ({"preferred_agent": {"queue_template": "agent"}}, "routing.preferred_agent.queue_template", "{ext}"),
    ({"preferred_agent": {"queue_template": "agent-{name}"}}, "routing.preferred_agent.queue_template",
     "placeholder"),
    ({"preferred_agent": {"lines": {"sales": "manager"}}}, "routing.preferred_agent.lines.sales", "consultant"),
    ({"penalty": {"max": 20}}, "routing.penalty.widened", "≥ penalty.max"),
    ({"languages": {"en": {"queue_template": "en"}}}, "routing.languages.en.queue_template", "{queue}"),
    ({"languages": {"en": {"band": 1}}}, "routing.languages.en.band", "unknown key"),
    ({"announce": {"no_agents": "cc-after-hours"}}, "routing.announce", "must differ"),
    ({"announce": {"callback_offer": "press 1"}}, "routing.announce.callback_offer", "prompt name"),
    ({"vip_tiers": ["gold", "vip"]}, "routing.vip_tiers", "unknown tier"),
    ({"vip_tiers": "gold"}, "routing.vip_tiers", "list"),
    ({"default_aht_seconds": 0}, "routing.default_aht_seconds", "within"),
    ({"callback_ewt_seconds": 1.5}, "routing.callback_ewt_seconds", "integer"),
    ([("priority", 1)], "routing", "expected a table"),
]


@pytest.mark.parametrize(("data", "key", "fragment"), BAD)
def test_validation_errors_name_the_key(data, key, fragment):
    with pytest.raises(RulesError) as info:
        RoutingRules.from_dict(data)
    assert info.value.key == key, str(info.value)
    assert fragment in str(info.value)
    assert str(info.value).startswith(key + ": ")


def test_custom_path_prefix():
    with pytest.raises(RulesError, match=r"^stores\.sh01\.routing\.max_priority: "):
        RoutingRules.from_dict({"max_priority": -1}, path="stores.sh01.routing")
