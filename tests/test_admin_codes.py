"""Admin-edited desktop codes and routing rules reach the services a reload feeds (ccserver/admin/live.py, as the
server wires it): the desktop's pause and disposition codes, and the agents service's personal-queue template."""

from __future__ import annotations

import pytest

from ccserver.admin import codes as admin_codes
from ccserver.admin import org
from ccserver.admin.live import LiveSettings
from ccserver.admin.reload import ConfigReloads
from ccserver.agents import Actor, AgentService
from ccserver.agents.store import AgentStore
from ccserver.db.engine import make_engine, session_factory
from ccserver.desktop.service import DesktopService
from ccserver.desktop.settings import DesktopSettings
from ccserver.desktop.store import DesktopStore
from ccserver.state import StateTracker
from ccserver.web.app import build_router
from ccserver.web.sql_users import SQLUserStore
from routing.decision import personal_queue
from routing.rules import RoutingRules
from tests.admin_support import SYSTEM, add_user, admin_db, login, page_session  # noqa: F401 - admin_db is a fixture
from tests.agents_support import FakeAsterisk
from tests.web_support import LOOP, call, inline_blocking, make_context

PAUSE = [{"code": "break", "label_zh": "休息", "label_en": "Break"},
         {"code": "coaching", "label_zh": "辅导", "label_en": "Coaching"}]
DISPOSITIONS = [{"code": "resolved", "label_zh": "已解决", "label_en": "Resolved"},
                {"code": "test_drive", "label_zh": "预约试驾", "label_en": "Test drive booked"}]


class Routing:
    """The routing service's side of a reload (replace_rules), as a recorder."""

    def __init__(self) -> None:
        self.rules = RoutingRules()

    def replace_rules(self, rules: RoutingRules) -> None:
        self.rules = rules


@pytest.fixture
def live(admin_db):  # noqa: F811
    """admin_db with a queue, an admin, a store manager and an agent; the agents and desktop services over a
    FakeAsterisk, fed by the reloads as the server wires them."""
    sessions = admin_db
    org.save_queue(sessions, SYSTEM, {"name": "bj-sales", "store": "bj-volvo", "line": "sales"})
    for name, role, ext in (("boss", "admin", None), ("mgr", "supervisor", None), ("li", "agent", "8001")):
        add_user(sessions, name, role, store="bj-volvo" if role != "admin" else None, extension=ext,
                 interface=f"PJSIP/{ext}" if ext else None)
    tracker = StateTracker()
    asterisk = FakeAsterisk({"bj-sales", "agent-8001", "p-8001"}, tracker=tracker)
    asterisk.resync()
    ctx = make_context(SQLUserStore(sessions))
    ctx.session_factory = sessions
    ctx.tracker = tracker
    ctx.agents = AgentService(AgentStore(sessions), asterisk, rules=RoutingRules(), run_blocking=inline_blocking,
                              servers=["default"], default_server="default", tracker=tracker)
    ctx.desktop = DesktopService(DesktopSettings.from_config(ctx.config), DesktopStore(sessions), inline_blocking,
                                 region="CN", agents=ctx.agents, tracker=tracker)
    routing = Routing()
    settings = LiveSettings(sessions, ctx.config, inline_blocking, routing=routing, agents=ctx.agents,
                            desktop=ctx.desktop)
    ctx.admin_reload = ConfigReloads(None)
    settings.attach(ctx.admin_reload)
    return build_router(ctx), ctx, routing, asterisk, sessions


@pytest.mark.parametrize(("codes", "reason"), [
    ({"pause_codes": PAUSE}, "exactly pause_codes and dispositions"),
    ({"pause_codes": [], "dispositions": DISPOSITIONS}, "desktop.pause_codes: expected a non-empty list"),
    ({"pause_codes": [*PAUSE, {"code": "wrapup", "label_zh": "整理", "label_en": "Wrap-up"}],
      "dispositions": DISPOSITIONS}, "desktop.pause_codes[2].code: 'wrapup' is forced wrap-up's own reason"),
    ({"pause_codes": [*PAUSE, {"code": "break", "label_zh": "再休息", "label_en": "Break 2"}],
      "dispositions": DISPOSITIONS}, "desktop.pause_codes: code 'break' given twice"),
    ({"pause_codes": PAUSE, "dispositions": [{"code": "Test Drive", "label_zh": "试驾", "label_en": "Drive"}]},
     "desktop.dispositions[0].code: lower-case letters"),
    ({"pause_codes": PAUSE, "dispositions": [{"code": "ok", "label_zh": "好", "label_en": " "}]},
     "desktop.dispositions[0].label_en: printable text"),
    ({"pause_codes": PAUSE, "dispositions": [{"code": "ok", "label_zh": "好"}]},
     "desktop.dispositions[0]: expected exactly code, label_zh, label_en"),
    ({"pause_codes": PAUSE, "dispositions": [{"code": "ok\r\nAction: Hangup", "label_zh": "好", "label_en": "OK"}]},
     "desktop.dispositions[0].code"),
])
def test_bad_codes_are_refused_with_the_reason_and_nothing_changes(live, codes, reason):
    router, ctx, *_ = live
    boss = login(router, "boss")
    before = ctx.desktop.settings
    refused = call(router, "PUT", "/api/admin/desktop-codes", headers=boss, json_body={"codes": codes})
    assert refused.status == 400 and reason in refused.json()["error"], refused.json()
    assert ctx.desktop.settings is before
    assert call(router, "GET", "/api/admin/desktop-codes", headers=boss).json()["source"] == "file"


def test_codes_are_stored_audited_and_reach_the_desktop_at_once(live):
    router, ctx, _, _, sessions = live
    boss = login(router, "boss")
    shown = call(router, "GET", "/api/admin/desktop-codes", headers=boss).json()
    assert shown["source"] == "file" and shown["codes"]["pause_codes"][0]["code"] == "break"
    ok = call(router, "PUT", "/api/admin/desktop-codes", headers=boss,
              json_body={"codes": {"pause_codes": PAUSE, "dispositions": DISPOSITIONS}})
    assert ok.status == 200 and ok.json()["reloaded"] is True
    # The agent's desktop shows them on its next request; no restart.
    li = login(router, "li")
    config = call(router, "GET", "/api/desktop/config", headers=li).json()
    assert [c["code"] for c in config["pause_codes"]] == ["break", "coaching"]
    assert config["dispositions"][1] == {"code": "test_drive", "label_zh": "预约试驾", "label_en": "Test drive booked"}
    assert ctx.desktop.settings.wrapup_seconds == DesktopSettings.from_config(ctx.config).wrapup_seconds
    shown = call(router, "GET", "/api/admin/desktop-codes", headers=boss).json()
    assert shown["source"] == "admin" and shown["codes"]["dispositions"] == DISPOSITIONS
    # Only an admin edits them.
    mgr = login(router, "mgr")
    assert call(router, "PUT", "/api/admin/desktop-codes", headers=mgr,
                json_body={"codes": {"pause_codes": PAUSE, "dispositions": DISPOSITIONS}}).status == 403
    assert call(router, "GET", "/api/admin/desktop-codes", headers=li).status == 403
    # Back to the file's.
    assert call(router, "DELETE", "/api/admin/desktop-codes", headers=boss).status == 200
    assert ctx.desktop.settings.pause_code("coaching") is None and ctx.desktop.settings.pause_code("lunch")
    assert call(router, "DELETE", "/api/admin/desktop-codes", headers=boss).status == 409
    entries = call(router, "GET", "/api/admin/audit?action=desktop_codes.", headers=boss).json()["entries"]
    assert [e["action"] for e in entries] == ["desktop_codes.reset", "desktop_codes.updated"]
    updated = entries[1]
    assert updated["actor"] == "boss" and updated["target"] == "setting:desktop_codes"
    assert updated["detail"]["before"]["from"] == "file" and "lunch" in str(updated["detail"]["before"])
    assert updated["detail"]["after"]["pause_codes"] == PAUSE
    assert entries[0]["detail"]["before"]["pause_codes"] == PAUSE


def test_cookie_sessions_need_the_csrf_token_to_change_codes(live):
    router, *_ = live
    refused = call(router, "PUT", "/api/admin/desktop-codes", headers=page_session(router, "boss"),
                   json_body={"codes": {"pause_codes": PAUSE, "dispositions": DISPOSITIONS}})
    assert refused.status == 403 and "CSRF" in refused.json()["error"]


def test_a_node_that_hears_the_reload_gives_its_desktop_the_new_codes(live):
    """The other node's side: its LiveSettings re-reads SQL when the reload arrives (here: applied directly,
    as ConfigReloads._listen does on a message from another node)."""
    _, ctx, _, _, sessions = live
    other = DesktopService(DesktopSettings(), DesktopStore(sessions), inline_blocking, region="CN")
    reloads = ConfigReloads(None)
    LiveSettings(sessions, ctx.config, inline_blocking, desktop=other).attach(reloads)
    admin_codes.save(sessions, SYSTEM, {"pause_codes": PAUSE, "dispositions": DISPOSITIONS}, {})
    assert other.settings.pause_code("coaching") is None
    LOOP.run_until_complete(reloads.apply("desktop_codes"))
    assert other.settings.pause_code("coaching").label("en") == "Coaching"


def test_a_rules_edit_reaches_the_agents_service_personal_queue(live):
    router, ctx, routing, asterisk, _ = live
    boss = login(router, "boss")
    assert personal_queue(ctx.agents.rules, "8001") == "agent-8001"
    ok = call(router, "PUT", "/api/admin/routing-rules", headers=boss,
              json_body={"rules": {"preferred_agent": {"queue_template": "p-{ext}"}, "fallback_queue": "bj-sales"}})
    assert ok.status == 200, ok.json()
    assert routing.rules.agent_queue_template == "p-{ext}"
    assert ctx.agents.rules is routing.rules  # the same rules: the template routing rings is the one signed in to
    result = LOOP.run_until_complete(ctx.agents.login(Actor.system("test"), "8001", ["bj-sales"]))
    added = {sent[1] for sent in asterisk.sent if sent[0] == "add"}
    assert added == {"bj-sales", "p-8001"}, (result, asterisk.sent)
    assert call(router, "DELETE", "/api/admin/routing-rules", headers=boss).status == 200
    assert personal_queue(ctx.agents.rules, "8001") == "agent-8001"


def test_the_agents_command_uses_the_admin_rules(tmp_path, monkeypatch, capsys):
    """``ccserver agents`` builds its own AgentService: it gets the admin's rules (the same personal queue)."""
    import ccserver.agents
    from ccserver.admin import rules as admin_rules
    from ccserver.cli import main

    data = ["--data-dir", str(tmp_path)]
    assert main(["db", "upgrade", *data]) == 0
    engine = make_engine(f"sqlite:///{(tmp_path / 'ccserver.sqlite3').resolve()}")
    admin_rules.save(session_factory(engine), SYSTEM, {"preferred_agent": {"queue_template": "p-{ext}"}}, None)
    engine.dispose()
    seen: list[RoutingRules] = []

    class Recording(AgentService):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs["rules"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(ccserver.agents, "AgentService", Recording)
    assert main(["agents", "list", *data]) == 0
    capsys.readouterr()
    assert [personal_queue(rules, "8001") for rules in seen] == ["p-8001"]


def test_a_rules_edit_gives_the_customer_directory_the_new_vip_tiers(live):
    _, ctx, routing, _, sessions = live
    from types import SimpleNamespace

    from ccserver.admin import rules as admin_rules

    directory = SimpleNamespace(vip_tiers=frozenset({"diamond", "gold"}))
    reloads = ConfigReloads(None)
    LiveSettings(sessions, ctx.config, inline_blocking, routing=routing, directory=directory).attach(reloads)
    admin_rules.save(sessions, SYSTEM, {"vip_tiers": ["diamond"]}, None)
    LOOP.run_until_complete(reloads.apply("routing_rules"))
    assert directory.vip_tiers == frozenset({"diamond"}) == routing.rules.vip_tiers
