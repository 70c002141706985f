"""The agent desktop in a real browser (Chromium) against the real HTTP site, served in-process on its own event
loop with the agent service on a FakeAsterisk, the live model fed a recorded call (ami-inbound-vip-answered),
forced wrap-up on a ManualClock and a recording stand-in for the AMI transfer / originate side (whose wire side
tests/test_desktop_ami.py checks against recordings).

The screen-pop socket is another module (agent_socket.js / card.js): where a test dispatches ``cc:pop`` /
``cc:update`` / ``cc:retract`` / ``cc:socket`` on ``document`` itself, it is testing THE DESKTOP'S REACTION TO
FRAMES, not the socket."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from twisted.internet.asyncioreactor import AsyncioSelectorReactor

from ccserver.db.models import Appointment, Call, CallNote, Customer, Queue, ServiceVisit, Store, Ticket, Vehicle
from ccserver.demo import demo_password_for, generate
from ccserver.events import CallEnded
from ccserver.web.app import build_site
from ccserver.web.sql_users import SQLUserStore
from tests.browser import browser, screenshot, signed_in_page  # noqa: F401 - browser is a fixture
from tests.desktop_support import AGENT_PHONE, CALL, HOSTILE, Desk, make_desk, make_prospect, play_until
from tests.web_support import make_context

SEED = 7


class DeskServer:
    """The HTTP site over a Desk, on a private asyncio loop + Twisted reactor in a thread of its own."""

    def __init__(self, sessions: Any) -> None:
        self.sessions = sessions
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.url = ""
        self.desk: Desk | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        reactor = AsyncioSelectorReactor(self.loop)
        self.desk = make_desk(self.sessions)
        ctx = make_context(SQLUserStore(self.sessions), clock=reactor)
        ctx.agents, ctx.tracker, ctx.session_factory = self.desk.agents, self.desk.tracker, self.sessions
        ctx.tickets, ctx.desktop = self.desk.tickets, self.desk.service
        self.port = reactor.listenTCP(0, build_site(ctx), interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"
        self.ready.set()
        self.loop.run_forever()

    def start(self) -> DeskServer:
        self.thread.start()
        assert self.ready.wait(30)
        return self

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` (a coroutine function or a plain one) on the server's loop; its result."""
        async def run() -> Any:
            result = fn(*args)
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def stop(self) -> None:
        self.call(self.port.stopListening)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('desktop') / 'ccserver.sqlite3'}"
    generate(url, customers=100, seed=SEED, as_of=date(2026, 11, 23))
    from ccserver.db.engine import make_engine, session_factory

    engine = make_engine(url)
    live = DeskServer(session_factory(engine)).start()
    yield live
    live.stop()
    engine.dispose()


def bind_card(page: Any) -> None:
    """Bind card.js to the desktop's #cc-card, as screenpop_page.js does on a server with the screen pop (this
    harness has no websocket listener; the frames come from :func:`frame`)."""
    page.evaluate("() => import('/static/card.js').then((m) => { m.bindCard(document.getElementById('cc-card')); })")


def frame(page: Any, name: str, detail: dict[str, Any]) -> None:
    """Dispatch a screen-pop frame's document event, as agent_socket.js does (the desktop's reaction is tested)."""
    page.evaluate("([name, detail]) => document.dispatchEvent(new CustomEvent(name, { detail }))", [name, detail])


def test_a_shift_at_the_desktop_in_chinese(server: DeskServer, browser: Any) -> None:  # noqa: F811
    desk = server.desk
    assert desk is not None
    context, page, errors = signed_in_page(browser, server.url, "agent8001", demo_password_for(SEED), locale="zh-CN",
                                           viewport={"width": 1280, "height": 800}, dismiss_dialogs=True)
    page.click("a[href='/desktop']")
    page.wait_for_selector("#queue-list input[value='vip']")
    assert page.get_attribute("html", "lang") == "zh-CN" and page.inner_text("#status-title") == "我的状态"
    bind_card(page)
    # signed out: the badge says so once, the line says what to do, and no clock runs
    page.wait_for_selector("#agent-state[data-state='logged_out']")
    assert page.inner_text("#signin-line") == "选择话机和队列后签入。"
    assert page.get_attribute("#interface", "placeholder") == "PJSIP/8001"  # their own extension, no one else's
    page.wait_for_function("() => document.querySelector('#state-timer').innerText === ''")

    # sign in from another phone (hot-desking) to two queues
    page.fill("#interface", AGENT_PHONE)
    page.check("#queue-list input[value='vip']")
    page.check("#queue-list input[value='sales']")
    page.click("#signin")
    page.wait_for_function("() => document.querySelector('#signin-line').innerText.includes('agent-phones')")
    page.wait_for_selector("#agent-state[data-state='idle']")
    page.wait_for_function("() => document.querySelector('#state-timer').innerText !== ''")  # now timed
    assert {q for (q, i) in desk.asterisk.members if i == AGENT_PHONE} == {"vip", "sales", "agent-8001"}

    # pause with a reason code, back with the keyboard, pause with the keyboard, back with the button
    page.select_option("#pause-code", "lunch")
    page.click("#pause")
    page.wait_for_selector("#agent-state[data-state='paused']")
    assert {(m.paused, m.reason) for m in desk.asterisk.of(AGENT_PHONE).values()} == {(True, "lunch")}
    page.keyboard.press("Alt+r")
    page.wait_for_selector("#agent-state[data-state='idle']")
    page.keyboard.press("Alt+p")
    page.wait_for_selector("#agent-state[data-state='paused']")
    page.click("#unpause")
    page.wait_for_selector("#agent-state[data-state='idle']")

    # the desktop's reaction to frames: a pop (recorded call ringing this agent), then answered
    server.call(play_until, desk.tracker, "AgentCalled")
    frame(page, "cc:pop", {"type": "pop", "seq": 1, "state": "ringing",
                           "call": {"uniqueid": CALL, "linkedid": CALL, "queue": "vip", "decision_id": "d-1",
                                    "wait": 0.2},
                           "customer": {"id": 5, "name": HOSTILE, "tier": "gold", "number": "+8613800138000"}})
    page.wait_for_selector("#call-summary[data-state='ringing']")
    assert page.inner_text("#cc-card h2") == HOSTILE  # caller text as text, on the card only
    summary = page.inner_text("#call-summary")
    assert HOSTILE not in summary and "vip" in summary and "振铃" in summary
    assert page.locator("#cc-card [data-field=queue]").count() == 0  # the call's facts are the summary's
    assert page.inner_text("#cc-card [data-field=tier]") == "金牌"
    assert page.locator("img").count() == 0
    assert page.input_value("#ticket-form input[name=customer_id]") == "5"
    assert page.input_value("#ticket-form input[name=phone]") == "+8613800138000"
    assert page.input_value("#ticket-form input[name=customer_name]") == HOSTILE
    server.call(play_until, desk.tracker, "AgentConnect")
    frame(page, "cc:update", {"type": "update", "seq": 2, "state": "answered", "call": {"uniqueid": CALL}})
    page.wait_for_selector("#call-summary[data-state='answered']")
    frame(page, "cc:socket", {"state": "reconnecting"})
    page.wait_for_selector("#socket-state[data-state='reconnecting']")
    assert page.inner_text("#socket-state") == "正在重新连接…"
    frame(page, "cc:socket", {"state": "open"})
    assert page.is_hidden("#socket-state")

    # a ticket from the call, pre-filled; a note links it to the call
    page.select_option("#ticket-kind", "complaint")
    page.fill("#ticket-form input[name=subject]", "保养后异响")
    page.fill("#ticket-form textarea[name=body]", "客户反映保养后刹车有异响。")
    page.click("#create-ticket")
    page.wait_for_function("() => document.querySelector('#forms-message').innerText.includes('已创建')")
    with desk.sessions() as s:
        linked = s.scalars(select(CallNote).where(CallNote.uniqueid == CALL, CallNote.ticket_id.is_not(None))).all()
        assert len(linked) == 1

    # an appointment for the caller at a free slot
    page.fill("#appointment-form input[name=store]", "bj-volvo")
    page.click("#find-slots")
    page.locator("#slots input[type=radio]").first.check()
    page.click("#book")
    page.wait_for_function("() => document.querySelector('#forms-message').innerText.includes('预约成功')")

    # transfer: the agent's channel, to the sales queue
    page.fill("#transfer-form input[name=to]", "sales")
    page.click("#transfer")
    page.wait_for_function("() => document.querySelector('#call-message').innerText.includes('已发起转接')")
    assert ("transfer", "blind", "Local/8001@agent-phones-00000001;1", "ccserver-transfer", "q-sales") \
        in desk.calls.sent
    screenshot(page, "desktop-call-zh-CN")

    # the call ends: forced wrap-up (the hub's CallEnded), the disposition with the keyboard ends it
    server.call(play_until, desk.tracker, None)  # the rest of the recorded call: the agent hangs up
    call_ended = next(e for e in desk.events if isinstance(e, CallEnded) and e.uniqueid == CALL)
    assert (call_ended.outcome, call_ended.interface) == ("answered", AGENT_PHONE)
    server.call(desk.wrapup.on_call_ended, call_ended)  # as the hub delivers it
    frame(page, "cc:retract", {"type": "retract", "seq": 3, "reason": "ended", "call": {"uniqueid": CALL}})
    page.wait_for_selector("#wrapup:not([hidden])")
    page.wait_for_selector("#agent-state[data-state='wrapup']", timeout=10000)
    assert "话后处理" in page.inner_text("#wrapup-timer")
    screenshot(page, "desktop-wrapup-zh-CN")
    page.select_option("#disposition", "resolved")
    page.keyboard.press("Alt+d")
    page.wait_for_selector("#wrapup[hidden]", state="attached")
    page.wait_for_selector("#agent-state[data-state='idle']", timeout=10000)
    page.wait_for_selector("#call-summary[data-state='none']")
    assert {(m.paused, m.reason) for m in desk.asterisk.of(AGENT_PHONE).values()} == {(False, "")}
    with desk.sessions() as s:
        assert s.scalars(select(CallNote.code).where(CallNote.kind == "disposition")).all() == ["resolved"]

    # click-to-dial from the callback worklist: the agent's phone first, the task's number, linked to the task
    async def callback_task() -> int:
        from ccserver.tickets import NewTicket
        from tests.tickets_support import actor

        made = await desk.tickets.create(NewTicket(kind="callback", subject="客户要求回电", body=None, category=None,
                                                   severity="normal", store_id=1, customer_id=None, vehicle_id=None,
                                                   department=None, source="web", contact_e164="+8613912345678"),
                                         actor(desk.sessions, "admin"))
        return int(made["id"])

    tid = server.call(callback_task)
    page.click(".tab[data-tab='mine']")
    page.click(".tab[data-tab='worklist']")
    row = page.locator(f"#worklist tr[data-ticket='{tid}']")
    row.wait_for()
    assert "+8613912345678" in row.inner_text()
    row.locator("button.dial").click()
    page.wait_for_function("() => document.querySelector('#lists-message').innerText.includes('+8613912345678')")
    originate = [s for s in desk.calls.sent if s[0] == "originate"][-1]
    assert originate[1:4] == (AGENT_PHONE, "ccserver-dial", "13912345678")
    assert originate[6]["CC_TICKET_ID"] == str(tid)
    screenshot(page, "desktop-worklist-zh-CN")
    assert errors == []
    context.close()


def test_the_desktop_in_english_at_960_wide(server: DeskServer, browser: Any) -> None:  # noqa: F811
    context, page, errors = signed_in_page(browser, server.url, "agent8002", demo_password_for(SEED), "/desktop",
                                           locale="en-US", viewport={"width": 960, "height": 900}, dismiss_dialogs=True)
    page.wait_for_selector("#queue-list input[value='sales']")
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("#call-title") == "Current call" and page.inner_text("#agent-state") == "Signed out"
    bind_card(page)
    frame(page, "cc:pop", {"type": "pop", "seq": 1, "state": "ringing",
                           "call": {"uniqueid": "1795416999.1", "queue": "english", "wait": 4},
                           "customer": {"id": 9, "name": HOSTILE, "tier": "diamond", "number": "+8613700000001",
                                        "caller_name": "Wang", "language": "en", "store": "bj-volvo",
                                        "vehicles": [{"brand": "Volvo", "model": "XC90", "plate": "京A88888"}],
                                        "ivr_path": "main.4"}})
    page.wait_for_selector("#call-summary[data-state='ringing']")
    summary = page.inner_text("#call-summary")
    assert "Ringing" in summary and "Queue: english" in summary and "waited 4 s" in summary
    assert HOSTILE not in summary and "diamond" not in summary.lower()  # the customer is the card's
    assert page.inner_text("#cc-card h2") == HOSTILE and page.inner_text("#cc-card [data-field=ivr]") == "main.4"
    assert page.inner_text("#cc-card [data-field=tier]") == "Diamond"
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "desktop-ringing-en-960")
    page.set_viewport_size({"width": 1280, "height": 800})
    screenshot(page, "desktop-ringing-en-1280")
    page.set_viewport_size({"width": 960, "height": 900})
    # ring-no-answer: retracted, nothing to wrap up
    frame(page, "cc:retract", {"type": "retract", "seq": 2, "reason": "no_answer",
                               "call": {"uniqueid": "1795416999.1"}})
    page.wait_for_selector("#call-summary[data-state='none']")
    page.wait_for_selector("#agent-state[data-state='logged_out']")  # ringing no more
    assert page.is_hidden("#wrapup") and page.get_attribute("#ticket-form textarea[name=body]", "placeholder") == ""
    # nothing overflows the narrow window sideways
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    # customers: the prospect made for an unknown caller, found by number, renamed, merged into a known customer
    prospect, known, _plate = server.call(make_prospect, server.desk, "+8613955551111")
    page.click(".tab[data-tab='customers']")
    page.fill("#customer-search input[name=q]", "139 5555 1111")
    page.click("#customer-search button[type=submit]")
    page.wait_for_selector(f"#customer-results button[data-id='{prospect}']")
    assert HOSTILE in page.inner_text("#customer-results")  # as text
    page.click(f"#customer-results button[data-id='{prospect}']")
    page.wait_for_selector("#customer-edit:not([hidden])")
    assert HOSTILE in page.inner_text("#customer-title") and "new prospect" in page.inner_text("#customer-title")
    assert "询价" in page.inner_text("#customer-history")
    page.fill("#customer-edit input[name=name]", "Mr Wang")
    page.click("#customer-edit button[type=submit]")
    page.wait_for_function("() => document.querySelector('#customer-title').innerText.includes('Mr Wang')")
    page.fill("#customer-merge input[name=into]", str(known))
    page.click("#customer-merge button[type=submit]")
    page.wait_for_function(f"() => document.querySelector('#customer-title').innerText.startsWith('#{known} ')")
    assert "+8613955551111" in page.inner_text("#customer-facts") and page.is_hidden("#customer-merge")
    screenshot(page, "desktop-en-960")
    page.set_viewport_size({"width": 1280, "height": 800})
    screenshot(page, "desktop-en-1280")
    assert page.locator("img").count() == 0
    assert errors == []
    context.close()


def test_slots_show_the_stores_hours_in_a_browser_elsewhere(server: DeskServer, browser: Any) -> None:  # noqa: F811
    """An agent whose browser is in New York books at a Beijing store: the slots read in Beijing's hours (with the
    zone's name), not New York's — 13 hours apart, so the wrong zone shows another hour."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    context, page, errors = signed_in_page(browser, server.url, "agent8002", demo_password_for(SEED), "/desktop",
                                           locale="en-US", timezone_id="America/New_York",
                                           viewport={"width": 1280, "height": 800}, dismiss_dialogs=True)
    page.wait_for_selector("#queue-list input[value='sales']")
    assert page.evaluate("() => Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/New_York"
    page.fill("#appointment-form input[name=store]", "bj-volvo")
    page.click("#find-slots")
    page.wait_for_selector("#slots input[type=radio]")
    starts = page.eval_on_selector_all("#slots input[type=radio]", "(radios) => radios.map((r) => r.value)")
    shown = [" ".join(t.replace("\u202f", " ").split()) for t in page.locator("#slots label").all_inner_texts()]
    assert len(starts) == len(shown) >= 1
    for start, label in zip(starts, shown, strict=True):
        beijing = datetime.fromisoformat(start).astimezone(ZoneInfo("Asia/Shanghai"))
        hour = f"{beijing.hour % 12 or 12}:{beijing.minute:02d} {'AM' if beijing.hour < 12 else 'PM'}"
        assert label == f"{beijing.month}/{beijing.day}/{beijing.year % 100}, {hour} GMT+8", (start, label)
    screenshot(page, "desktop-slots-new-york-en")
    assert errors == []
    context.close()


def en_store_time(at: dt.datetime, zone: str, name: str) -> str:
    """``at`` as an en-US page shows it in ``zone`` (common.js zonedTime): 1/5/26, 10:30 AM GMT+1."""
    from zoneinfo import ZoneInfo

    local = at.astimezone(ZoneInfo(zone))
    hour = f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"
    return f"{local.month}/{local.day}/{local.year % 100}, {hour} {name}"


def test_worklist_and_history_show_each_stores_hours_in_a_browser_elsewhere(server: DeskServer, browser: Any) -> None:  # noqa: F811
    """A browser in New York; a call back due at a Berlin store, a call in that store's queue, a visit at a
    Shanghai store and a call of no store (the server's zone, Shanghai): each time reads in its store's hours,
    named — the browser's own zone (EST) is none of them."""
    desk = server.desk
    assert desk is not None
    due = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC)  # overdue: first in the worklist
    called = dt.datetime(2026, 11, 20, 16, 45, tzinfo=dt.UTC)
    visited = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)
    prospect, _known, _plate = server.call(make_prospect, desk, "+8613955553333")
    with desk.sessions.begin() as s:
        berlin = s.scalars(select(Store).where(Store.code != "bj-volvo").order_by(Store.id)).first()
        queue = s.scalars(select(Queue.name).where(Queue.store_id == berlin.id).order_by(Queue.id)).first()
        shanghai = s.scalars(select(Store.id).where(Store.id != berlin.id).order_by(Store.id)).first()
        assert queue is not None and shanghai is not None
        berlin_id, was = berlin.id, berlin.time_zone
        berlin.time_zone = "Europe/Berlin"
        callback = Ticket(kind="callback", subject="请回电", status="new", severity="normal", source="web",
                          customer_id=prospect, store_id=berlin.id, contact_e164="+8613955553333",
                          sla_due_at=due, created_at=due, updated_at=due)
        s.add_all([callback, Call(uniqueid="1795000002.1", server="default", customer_id=prospect, queue=queue,
                                  entered_at=called),
                   ServiceVisit(customer_id=prospect, store_id=shanghai, opened_at=visited, status="in_progress")])
        s.flush()
        callback_id = callback.id
    try:
        context, page, errors = signed_in_page(browser, server.url, "agent8001", demo_password_for(SEED), "/desktop",
                                               locale="en-US", timezone_id="America/New_York",
                                               viewport={"width": 1280, "height": 800}, dismiss_dialogs=True)
        page.wait_for_selector(f"#worklist tr[data-ticket='{callback_id}']")
        due_cell = page.inner_text(f"#worklist tr[data-ticket='{callback_id}'] td")
        assert " ".join(due_cell.replace("\u202f", " ").split()).startswith(
            en_store_time(due, "Europe/Berlin", "GMT+1") + " · "), due_cell
        screenshot(page, "desktop-worklist-new-york-en")
        page.click(".tab[data-tab='customers']")
        page.fill("#customer-search input[name=q]", "139 5555 3333")
        page.click("#customer-search button[type=submit]")
        page.click(f"#customer-results button[data-id='{prospect}']")
        page.wait_for_function("() => document.querySelector('#customer-history').innerText.includes('询价')")
        history = " ".join(page.inner_text("#customer-history").replace("\u202f", " ").split())
        assert f"{en_store_time(called, 'Europe/Berlin', 'GMT+1')} · {queue}" in history, history
        assert en_store_time(dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC), "Asia/Shanghai", "GMT+8") in history
        assert en_store_time(visited, "Asia/Shanghai", "GMT+8") in history
        assert "EST" not in history and "GMT-5" not in history
        screenshot(page, "desktop-history-new-york-en")
        assert errors == []
        context.close()

        # the same in Chinese: the store's hour and the zone's name, the page's language
        context, page, errors = signed_in_page(browser, server.url, "agent8001", demo_password_for(SEED), "/desktop",
                                               locale="zh-CN", timezone_id="America/New_York",
                                               viewport={"width": 1280, "height": 800}, dismiss_dialogs=True)
        page.wait_for_selector(f"#worklist tr[data-ticket='{callback_id}']")
        due_cell = page.inner_text(f"#worklist tr[data-ticket='{callback_id}'] td")
        assert due_cell.startswith("2026/1/5 10:30 GMT+1"), due_cell
        screenshot(page, "desktop-worklist-new-york-zh-CN")
        page.click(".tab[data-tab='customers']")
        page.fill("#customer-search input[name=q]", "139 5555 3333")
        page.click("#customer-search button[type=submit]")
        page.click(f"#customer-results button[data-id='{prospect}']")
        page.wait_for_function("() => document.querySelector('#customer-history').innerText.includes('询价')")
        history = page.inner_text("#customer-history")
        assert f"2026/11/20 17:45 GMT+1 · {queue}" in history and "2026/11/30 10:00 GMT+8" in history, history
        screenshot(page, "desktop-history-new-york-zh-CN")
        assert errors == []
        context.close()
    finally:
        with desk.sessions.begin() as s:
            s.get(Store, berlin_id).time_zone = was


def test_off_call_a_found_customer_gets_a_ticket_and_an_appointment(server: DeskServer, browser: Any) -> None:  # noqa: F811
    """No call and not signed in (a customer e-mailed): from the Customers tab, a ticket for a prospect whose name is
    hostile (shown as text) and an appointment at a known customer's home store; nothing is linked to a call."""
    desk = server.desk
    assert desk is not None
    prospect, _known, _plate = server.call(make_prospect, desk, "+8613955552222")

    def bookable() -> tuple[int, str, str]:
        with desk.sessions() as s:
            row = s.execute(select(Customer.id, Vehicle.plate, Store.code)
                            .join(Vehicle, Vehicle.customer_id == Customer.id)
                            .join(Store, Store.id == Customer.home_store_id)
                            .where(Vehicle.plate.is_not(None), Customer.tier != "prospect")
                            .order_by(Customer.id)).first()
        assert row is not None
        with desk.sessions.begin() as s:  # a car in the workshop: its visit's status is shown in the page's language
            s.add(ServiceVisit(customer_id=row[0], opened_at=dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC),
                               status="waiting_parts", description="更换刹车片"))
        return int(row[0]), str(row[1]), str(row[2])

    cid, plate, home = server.call(bookable)
    context, page, errors = signed_in_page(browser, server.url, "agent8003", demo_password_for(SEED), "/desktop",
                                           locale="zh-CN", viewport={"width": 1280, "height": 800},
                                           dismiss_dialogs=True)
    page.wait_for_selector("#queue-list input[value='vip']")
    assert page.get_attribute("#call-summary", "data-state") == "none"
    assert page.inner_text("#forms-title") == "工单与预约"
    page.click("#book")  # nobody chosen yet: said in the page's language, nothing sent
    page.wait_for_function("() => document.querySelector('#forms-message').innerText.includes('请先选择客户')")

    # (a) a ticket for the prospect found by number
    page.click(".tab[data-tab='customers']")
    page.fill("#customer-search input[name=q]", "139 5555 2222")
    page.click("#customer-search button[type=submit]")
    page.click(f"#customer-results button[data-id='{prospect}']")
    page.wait_for_selector("#customer-detail:not([hidden])")
    page.click("#customer-ticket")
    assert page.input_value("#ticket-form input[name=customer_id]") == str(prospect)
    assert page.input_value("#ticket-form input[name=customer_name]") == HOSTILE  # a value: text, not markup
    assert page.input_value("#ticket-form input[name=phone]") == "+8613955552222"
    assert f"#{prospect}" in page.inner_text("#forms-message")
    page.select_option("#ticket-kind", "inquiry")
    page.fill("#ticket-form input[name=subject]", "邮件询价：保养套餐")
    page.click("#create-ticket")
    page.wait_for_function("() => document.querySelector('#forms-message').innerText.includes('已创建')")
    page.wait_for_function("() => document.querySelector('#customer-history').innerText.includes('保养套餐')")

    # (b) an appointment for a known customer found by plate: their home store's free slots come up
    page.fill("#customer-search input[name=q]", plate)
    page.click("#customer-search button[type=submit]")
    page.click(f"#customer-results button[data-id='{cid}']")
    page.wait_for_function(f"() => document.querySelector('#customer-title').innerText.startsWith('#{cid} ')")
    history = page.inner_text("#customer-history")
    assert "等待配件" in history and "waiting_parts" not in history
    page.click("#customer-book")
    assert page.input_value("#appointment-form input[name=store]") == home
    assert page.input_value("#ticket-form input[name=customer_id]") == str(cid)
    page.locator("#slots input[type=radio]").first.check()
    page.click("#book")
    page.wait_for_function("() => document.querySelector('#forms-message').innerText.includes('预约成功')")
    screenshot(page, "desktop-off-call-zh-CN")
    # the same customer again into the same hour (a seat is still free there): refused, naming the booking
    page.click("#customer-book")
    page.locator("#slots input[type=radio]").first.check()
    page.click("#book")
    page.wait_for_function("() => document.querySelector('#forms-message').innerText.includes('已有预约')")
    assert page.inner_text("#forms-message").startswith("该客户在此时段已有预约 #")
    errors.remove("Failed to load resource: the server responded with a status of 409 (Conflict)")  # that refusal
    screenshot(page, "desktop-double-booking-zh-CN")

    # a call that rings takes the forms over; the agent picks again; later frames of that call keep the pick, and
    # so does the call's retraction (never answered)
    frame(page, "cc:pop", {"type": "pop", "seq": 1, "state": "ringing", "call": {"uniqueid": "1795417000.7"},
                           "customer": {"id": prospect, "name": HOSTILE, "tier": "prospect"}})
    page.wait_for_selector("#call-summary[data-state='ringing']")
    assert page.input_value("#ticket-form input[name=customer_id]") == str(prospect)
    page.click("#customer-ticket")
    frame(page, "cc:update", {"type": "update", "seq": 2, "state": "ringing", "call": {"uniqueid": "1795417000.7"},
                              "customer": {"id": prospect, "name": HOSTILE, "tier": "prospect"}})
    frame(page, "cc:retract", {"type": "retract", "seq": 3, "reason": "no_answer",
                               "call": {"uniqueid": "1795417000.7"}})
    page.wait_for_selector("#call-summary[data-state='none']")
    assert page.input_value("#ticket-form input[name=customer_id]") == str(cid)

    with desk.sessions() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.subject == "邮件询价：保养套餐")).one()
        assert ticket.customer_id == prospect
        appointment = s.scalars(select(Appointment).where(Appointment.customer_id == cid)
                                .order_by(Appointment.id.desc())).first()
        assert appointment is not None and appointment.store_id == s.scalars(
            select(Store.id).where(Store.code == home)).one()
        linked = set(s.scalars(select(CallNote.ticket_id).where(CallNote.ticket_id.is_not(None))))
        assert ticket.id not in linked and appointment.ticket_id not in linked  # no call: no call link
    assert page.locator("img").count() == 0
    assert errors == []
    context.close()
