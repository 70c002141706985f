"""The [ivr] table: the built-in dealer-group menu, merging a site's config over it, and errors naming the key;
the prompt catalogue and the pieces dates, times and plates are read back from."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from ccserver.config import ConfigError, load_config
from ivr.catalogue import LANGUAGES, PROMPTS, catalogue, model_prompt, model_texts
from ivr.settings import Action, IVRConfigError, IVRSettings
from ivr.speech import say_date, say_plate, say_slot, say_time, say_vehicle
from routing.decision import CallFacts, DidRoute, decide
from routing.live import LiveView


def test_default_menu() -> None:
    s = IVRSettings.from_dict()
    assert s.start_for("4008009000", "hotline").action == Action("menu", "main")
    assert s.start_for("4008002000", "service").action == Action("menu", "after_sales")
    assert s.start_for("4008003000", "complaints").action == Action("menu", "complaints")
    assert s.start_for("4008001000", "sales") is None and s.start_for("4008004000", "insurance") is None
    main = s.menus["main"]
    assert {k: str(a) for k, a in main.options.items()} == {"1": "line:sales", "2": "menu:after_sales",
                                                            "3": "menu:complaints", "4": "line:insurance",
                                                            "0": "operator"}
    assert {k: str(a) for k, a in s.menus["after_sales"].options.items()} == {
        "1": "booking", "2": "ticket:breakdown", "3": "status", "0": "operator"}
    assert s.tickets["breakdown"].kind == "repair" and s.tickets["breakdown"].line == "service"
    assert (s.timeout_ms, s.retries, s.language_key, s.operator) == (5000, 2, "9", "hotline")


def test_every_configured_prompt_has_both_texts() -> None:
    s = IVRSettings.from_dict()
    for name in s.prompt_names():
        assert PROMPTS[name].zh.strip() and PROMPTS[name].en.strip(), name
    for name, prompt in PROMPTS.items():
        assert all(prompt.text(lang).strip() for lang in LANGUAGES), name


def test_disabled_runs_no_menu() -> None:
    assert IVRSettings.from_dict({"enabled": False}).start_for("4008009000", "hotline") is None


def test_site_menu_merges_over_the_defaults() -> None:
    s = IVRSettings.from_dict({
        "menus": {"main": {"prompts": ["cc-ivr-roadside"], "options": {"1": "line:sales", "2": "menu:roadside"}},
                  "roadside": {"prompts": ["cc-ivr-roadside"], "options": {"1": "line:service"}, "retries": 0}},
        "prompts": {"cc-ivr-roadside": {"zh": "道路救援请按1。", "en": "For roadside assistance, press 1."}},
        "dids": {"4008005000": "menu:roadside"},
        "lines": {},
    })
    assert set(s.menus) == {"main", "after_sales", "complaints", "roadside"}
    assert s.menus["main"].intro == () and s.menu_retries(s.menus["roadside"]) == 0
    assert s.start_for("4008009000", "hotline") is None  # lines replaced whole
    assert s.start_for("4008005000", "hotline").action == Action("menu", "roadside")
    assert catalogue(s.prompts)["cc-ivr-roadside"].en == "For roadside assistance, press 1."


@pytest.mark.parametrize(("table", "key"), [
    ({"menus": {"main": {"prompts": ["cc-ivr-main"], "options": {"1": "menu:nowhere"}}}}, "ivr.menus.main.options.1"),
    ({"menus": {"main": {"prompts": ["cc-ivr-main"], "options": {"9": "line:sales"}}}}, "ivr.menus.main.options.9"),
    ({"menus": {"main": {"prompts": ["cc-ivr-main"], "options": {"12": "line:sales"}}}},
     "ivr.menus.main.options.12"),
    ({"menus": {"main": {"prompts": ["cc-nope"], "options": {"1": "line:sales"}}}}, "ivr.menus.main.prompts"),
    ({"menus": {"main": {"prompts": ["cc-ivr-main"], "options": {"1": "dial:8001"}}}}, "ivr.menus.main.options.1"),
    ({"menus": {"main": {"prompts": ["cc-ivr-main"], "options": {"1": "route"}}}}, "ivr.menus.main.options.1"),
    ({"menus": {"main": {"prompts": ["cc-ivr-main"], "options": {}}}}, "ivr.menus.main.options"),
    ({"menus": {"main": {"prompts": ["cc-ivr-main"], "options": {"1": "operator"}, "colour": "red"}}},
     "ivr.menus.main.colour"),
    ({"tickets": {"breakdown": {"kind": "repair", "category": "breakdown", "line": "service",
                                "severity": "apocalyptic"}}}, "ivr.tickets.breakdown.severity"),
    ({"dids": {"4008009000": "menu:lost"}}, "ivr.dids.4008009000"),
    ({"dids": {"4008009000": {"start": "menu:main", "language": "fr"}}}, "ivr.dids.4008009000.language"),
    ({"retries": 9}, "ivr.retries"),
    ({"timeout_ms": "soon"}, "ivr.timeout_ms"),
    ({"language_key": "99"}, "ivr.language_key"),
    ({"vip_tiers": ["platinum"]}, "ivr.vip_tiers"),
    ({"prompts": {"cc-x": {"zh": "只有中文"}}}, "ivr.prompts.cc-x"),
    ({"menu": {}}, "ivr.menu"),
])
def test_bad_values_name_their_key(table: dict, key: str) -> None:
    with pytest.raises(IVRConfigError) as caught:
        IVRSettings.from_dict(table)
    assert caught.value.key == key


def test_config_layers_validate_the_ivr_table(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[ivr]\nretries = 1\n[ivr.dids]\n"4008001000" = "menu:main"\n', encoding="utf-8")
    config = load_config(path, environ={"CCSERVER_IVR_TIMEOUT_MS": "3000"})
    s = IVRSettings.from_dict(config.section("ivr"))
    assert (s.retries, s.timeout_ms) == (1, 3000) and s.start_for("4008001000", "sales") is not None
    with pytest.raises(ConfigError, match=r"ivr\.language_key"):
        load_config(environ={"CCSERVER_IVR_LANGUAGE_KEY": '"1"'})  # key 1 is a main-menu option


# -- speech ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("at", "zh", "en"), [
    (time(10, 30), ["cc-am", "cc-hour-10", "cc-minute-30"], ["cc-hour-10", "cc-minute-30", "cc-am"]),
    (time(14, 0), ["cc-pm", "cc-hour-2", "cc-oclock"], ["cc-hour-2", "cc-oclock", "cc-pm"]),
    (time(0, 5), ["cc-am", "cc-hour-12", "cc-minute-5"], ["cc-hour-12", "cc-minute-5", "cc-am"]),
    (time(12, 15), ["cc-pm", "cc-hour-12", "cc-minute-15"], ["cc-hour-12", "cc-minute-15", "cc-pm"]),
])
def test_times(at: time, zh: list[str], en: list[str]) -> None:
    assert say_time(at, "zh") == zh and say_time(at, "en") == en
    assert all(p in PROMPTS for p in zh + en)


def test_dates_and_slots() -> None:
    monday = date(2026, 3, 16)
    assert say_date(monday, "zh", monday) == ["cc-today", "cc-month-3", "cc-day-16", "cc-weekday-0"]
    assert say_date(date(2026, 3, 17), "en", monday) == ["cc-tomorrow", "cc-weekday-1", "cc-month-3", "cc-day-17"]
    assert say_date(date(2026, 12, 31), "en", monday) == ["cc-weekday-3", "cc-month-12", "cc-day-31"]
    shanghai = timezone(timedelta(hours=8))
    slot = datetime(2026, 3, 18, 1, 30, tzinfo=UTC).astimezone(shanghai)
    assert say_slot(slot, "zh") == ["cc-month-3", "cc-day-18", "cc-weekday-2", "cc-am", "cc-hour-9", "cc-minute-30"]
    assert PROMPTS["cc-day-22"].en == "twenty-second" and PROMPTS["cc-day-30"].en == "thirtieth"
    assert PROMPTS["cc-day-16"].zh == "十六日" and PROMPTS["cc-hour-2"].zh == "两点"
    assert PROMPTS["cc-minute-5"].zh == "零五分" and PROMPTS["cc-minute-5"].en == "oh five"


def test_plates_and_vehicles() -> None:
    assert say_plate("京A6QST4") == ["cc-province-jing", "cc-letter-a", "cc-digit-6", "cc-letter-q", "cc-letter-s",
                                     "cc-letter-t", "cc-digit-4"]
    assert say_plate("沪a 0?") == ["cc-province-hu", "cc-letter-a", "cc-digit-0"]  # odd characters skipped
    assert say_vehicle("Accord 雅阁", None) == ["cc-model-accord"]
    assert PROMPTS["cc-province-jing"].zh == "京" and PROMPTS["cc-province-yu2"].en == "Yu"
    assert all(p in PROMPTS for p in say_plate("渝A5EMTA粤B琼C"))


def test_model_prompts() -> None:
    assert model_prompt("XC60") == "cc-model-xc60" and model_prompt("Haima 7X") == "cc-model-haima-7x"
    assert model_prompt("雅阁").startswith("cc-model-") and model_prompt("雅阁") != model_prompt("飞度")
    assert (model_texts("Accord 雅阁").zh, model_texts("Accord 雅阁").en) == ("雅阁", "Accord")
    assert catalogue(models=["XC60"])["cc-model-xc60"].en == "XC60"


# -- routing: the IVR's priority bonus -----------------------------------------------------------------------------
def test_decide_adds_the_ivr_bonus_for_anyone_capped() -> None:
    did = DidRoute("4008009000", "", "complaints", "complaints")
    plain = decide(CallFacts("d1"), None, did, True, LiveView())
    raised = decide(CallFacts("d2", bonus=2, bonus_reason="IVR complaint"), None, did, True, LiveView())
    assert (plain.priority, raised.priority) == (1, 3)
    assert "IVR complaint: priority +2" in raised.reasons
    capped = decide(CallFacts("d3", bonus=50), None, did, True, LiveView())
    assert capped.priority == 12 and "priority capped at 12" in capped.reasons
