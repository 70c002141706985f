"""Preview calls on the agent desktop in real Chromium: the next contact with its card and script, the dial (the
agent's phone first, through the desktop's click-to-dial stand-in), the disposition; zh-CN and en screenshots."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select, update
from twisted.internet.asyncioreactor import AsyncioSelectorReactor

from ccserver.campaigns.preview import PreviewService
from ccserver.campaigns.service import CampaignService, Manager
from ccserver.campaigns.spec import parse_spec
from ccserver.clock import ManualClock
from ccserver.db.models import CampaignAttempt, Customer, Queue
from ccserver.demo import demo_password_for, generate
from ccserver.web.app import build_site
from ccserver.web.sql_users import SQLUserStore
from tests.browser import browser, screenshot, signed_in_page  # noqa: F401 - browser is a fixture
from tests.desktop_support import AGENT_PHONE, in_thread, make_desk
from tests.test_browser_desktop import SEED, DeskServer
from tests.web_support import make_context

START = 1_795_000_000.0  # Wed 2026-11-18 19:06 in Shanghai: inside the calling window
SCRIPT = "您好，我是4S店回访专员，想了解您这次保养的感受……"


class PreviewServer(DeskServer):
    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        reactor = AsyncioSelectorReactor(self.loop)
        self.desk = make_desk(self.sessions)
        ctx = make_context(SQLUserStore(self.sessions), clock=reactor)
        ctx.agents, ctx.tracker, ctx.session_factory = self.desk.agents, self.desk.tracker, self.sessions
        ctx.tickets, ctx.desktop, ctx.run_blocking = self.desk.tickets, self.desk.service, in_thread
        ctx.campaigns = CampaignService(self.sessions, in_thread, clock=ManualClock(START))
        ctx.preview = PreviewService(ctx.campaigns, self.desk.service, default_zone="Asia/Shanghai")
        self.campaigns = ctx.campaigns
        self.port = reactor.listenTCP(0, build_site(ctx), interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"
        self.ready.set()
        self.loop.run_forever()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PreviewServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('preview') / 'ccserver.sqlite3'}"
    generate(url, customers=60, seed=SEED, as_of=date(2026, 11, 23))
    from ccserver.db.engine import make_engine, session_factory

    engine = make_engine(url)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        if s.scalar(select(Queue.id).where(Queue.name == "sales")) is None:
            s.add(Queue(name="sales", line="sales"))
        ids = list(s.scalars(select(Customer.id).order_by(Customer.id).limit(3)))
        s.execute(update(Customer).where(Customer.id.in_(ids)).values(do_not_call=False))
    live = PreviewServer(sessions).start()
    spec = parse_spec({"name": "保养后回访", "type": "satisfaction", "mode": "preview", "queue": "sales",
                       "targets": {"customer_ids": ids}, "script": SCRIPT})
    created = live.call(live.campaigns.create, Manager(None, "test"), spec)
    live.call(live.campaigns.move, Manager(None, "test"), created["id"], "start")
    yield live
    live.stop()
    engine.dispose()


def test_preview_contact_dial_and_disposition_in_chinese(server: PreviewServer, browser: Any) -> None:  # noqa: F811
    desk = server.desk
    assert desk is not None
    context, page, errors = signed_in_page(browser, server.url, "agent8001", demo_password_for(SEED), "/desktop",
                                           locale="zh-CN", viewport={"width": 1280, "height": 900},
                                           dismiss_dialogs=True)
    page.wait_for_selector("#queue-list input[value='sales']")
    assert page.inner_text("#preview-title") == "预览外呼"
    page.fill("#interface", AGENT_PHONE)
    page.check("#queue-list input[value='sales']")
    page.click("#signin")
    page.wait_for_function("() => document.querySelector('#signin-line').innerText.includes('agent-phones')")
    page.click("#preview-next")
    page.wait_for_selector("#preview-contact:not([hidden])")
    assert page.inner_text("#preview-script") == SCRIPT and page.inner_text("#preview-campaign") == "保养后回访"
    assert page.inner_text("#preview-tier") in ("钻石", "金牌", "银牌", "铜牌", "潜在客户", "")
    number = page.inner_text("#preview-number")
    assert number.startswith("+")
    page.locator("#preview-panel").scroll_into_view_if_needed()
    screenshot(page, "preview-zh-contact")
    page.click("#preview-dial")
    page.wait_for_selector("#preview-disposition:not([hidden])")
    assert number in page.inner_text("#preview-message")
    originate = [s for s in desk.calls.sent if s[0] == "originate"]
    assert originate and originate[-1][1] == AGENT_PHONE and originate[-1][6]["CC_DIAL_E164"] == number
    page.select_option("#preview-disposition-code", "reached")
    page.fill("#preview-note", "客户满意")
    page.click("#preview-save")
    page.wait_for_function("() => document.querySelector('#preview-message').innerText.includes('已保存')")
    screenshot(page, "preview-zh-saved")
    with server.sessions() as s:
        attempt = s.scalars(select(CampaignAttempt).order_by(CampaignAttempt.id.desc())).first()
        assert attempt is not None and (attempt.disposition, attempt.outcome) == ("reached", "reached")
    assert errors == [] or all("409" in e or "status of 4" in e for e in errors), errors
    context.close()


def test_preview_panel_in_english_before_signing_in(server: PreviewServer, browser: Any) -> None:  # noqa: F811
    context, page, _ = signed_in_page(browser, server.url, "agent8002", demo_password_for(SEED), "/desktop",
                                      locale="en-US", viewport={"width": 960, "height": 900})
    page.wait_for_selector("#queue-list input[value='sales']")
    assert page.inner_text("#preview-title") == "Preview calls" and page.inner_text("#preview-next") == "Next contact"
    page.click("#preview-next")
    page.wait_for_function("() => document.querySelector('#preview-message').innerText.includes('sign in first')")
    assert page.is_hidden("#preview-contact")
    page.locator("#preview-panel").scroll_into_view_if_needed()
    screenshot(page, "preview-en-not-signed-in")
    context.close()
