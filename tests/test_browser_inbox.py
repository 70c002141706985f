"""The department inbox in a real browser against a real `ccserver run`: department staff log in, see their
department's ticket with its SLA countdown, and move it through its whole lifecycle; zh-CN and en."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.browser import browser, screenshot, signed_in_page  # noqa: F401 - browser is a fixture
from tests.live_server import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    live = LiveServer(tmp_path_factory.mktemp("inbox")).start()
    yield live
    live.stop()


def post(server: LiveServer, path: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(),  # noqa: S310 - our server
                                     headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's own server
        return json.loads(response.read())  # type: ignore[no-any-return]


def open_ticket(server: LiveServer, subject: str, **more: Any) -> int:
    token = post(server, "/api/login", {"username": "admin", "password": "admin"})["token"]
    # bj-volvo (store 1): a repair goes to its service department, where service-dept works
    ticket = post(server, "/api/tickets", {"kind": "repair", "category": "breakdown", "store_id": 1,
                                           "subject": subject, "body": "客户来电：车辆无法启动，停在公司楼下。",
                                           "phone": "13912345678", **more}, token)
    return int(ticket["id"])


def test_department_staff_work_a_ticket_through_its_lifecycle(server: LiveServer, browser: Any) -> None:  # noqa: F811
    tid = open_ticket(server, "无法启动 <script>alert(1)</script>", severity="urgent")
    context, page, errors = signed_in_page(browser, server.url, "service-dept", server.demo_password, locale="zh-CN",
                                           viewport={"width": 1400, "height": 900})
    page.click("a[href='/inbox']")
    page.wait_for_selector(f"#tickets tr[data-id='{tid}']")
    assert page.inner_text("h1").startswith("部门工单箱")
    row = page.locator(f"#tickets tr[data-id='{tid}']")
    assert "无法启动 <script>alert(1)</script>" in row.inner_text()  # caller text shown as text
    assert "新建" in row.inner_text() and "首次响应" in row.inner_text() and "剩余" in row.inner_text()
    row.click()
    page.wait_for_selector("#detail-actions button[data-to='assigned']")
    screenshot(page, "inbox-zh-CN")

    def move(to: str, status: str, comment: str = "", satisfaction: str = "") -> None:
        if comment:
            page.fill("#transition-form textarea[name=comment]", comment)
        if satisfaction:
            page.select_option("#transition-form select[name=satisfaction]", satisfaction)
        page.click(f"#detail-actions button[data-to='{to}']")
        page.wait_for_function(
            "([id, status]) => document.querySelector(`#tickets tr[data-id='${id}'] td.status`)"
            "?.classList.contains(`status-${status}`)", arg=[tid, status])

    move("assigned", "assigned", comment="已联系客户，安排救援")
    page.wait_for_function("() => document.querySelector('#detail-facts').innerText.includes('Service department')")
    assert "解决: 剩余" in page.inner_text("#detail-facts")  # responded: the resolution clock is the one shown
    move("in_progress", "in_progress")
    # in progress, going back to "assigned" is putting it back, not accepting it a second time
    page.wait_for_selector("#detail-actions button[data-to='resolved']")
    assert page.inner_text("#detail-actions button[data-to='assigned']") == "退回（停止处理）"
    page.fill("#transition-form textarea[name=comment]", "救援车已出发")
    page.click("#comment-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#detail-history').innerText.includes('救援车已出发')")
    move("resolved", "resolved", comment="更换电瓶，已修复")
    # a repair is called back before it is closed: the satisfaction is asked then. The list row changes before
    # the detail is drawn again: wait for the detail's new actions (under load the old ones were still there).
    page.wait_for_selector("#detail-actions button[data-to='customer_called_back']")
    assert page.locator("#detail-actions button[data-to='closed']").count() == 0
    assert page.is_visible("#transition-form .satisfaction")
    page.select_option("select[name=status]", "resolved,customer_called_back")
    page.wait_for_selector(f"#tickets tr[data-id='{tid}']")
    move("customer_called_back", "customer_called_back", comment="客户满意", satisfaction="5")
    screenshot(page, "inbox-called-back-zh-CN")
    page.select_option("select[name=status]", "")
    move("closed", "closed")
    # the history is drawn after the list row: wait for it, not for the row
    page.wait_for_function("() => document.querySelector('#detail-history').innerText.includes('已回访客户 → 已关闭')")
    history = page.inner_text("#detail-history")
    for step in ("新建 → 已分派", "已分派 → 处理中", "处理中 → 已解决", "已解决 → 已回访客户", "已回访客户 → 已关闭"):
        assert step in history, history
    assert page.locator("#detail-actions button").count() == 0  # closed is final
    assert page.locator("img").count() == 0
    assert errors == []
    context.close()


def test_inbox_in_english(server: LiveServer, browser: Any) -> None:  # noqa: F811
    tid = open_ticket(server, "Brake noise after service")
    context, page, errors = signed_in_page(browser, server.url, "service-dept", server.demo_password, "/inbox",
                                           locale="en-US", viewport={"width": 1400, "height": 900}, watch=("console",))
    page.wait_for_selector(f"#tickets tr[data-id='{tid}']")
    assert page.get_attribute("html", "lang") == "en" and page.inner_text("h1").startswith("Department inbox")
    page.click(f"#tickets tr[data-id='{tid}']")
    page.wait_for_selector("#detail-actions button[data-to='assigned']")
    assert "Repair · Breakdown" in page.inner_text("#detail-facts")
    assert "First response" in page.inner_text(f"#tickets tr[data-id='{tid}']")
    screenshot(page, "inbox-en")
    # reassigning to another department takes it out of this inbox
    page.fill("#assign-form input[name=department]", "sales")
    page.click("#assign-form button[type=submit]")
    page.wait_for_function(f"() => !document.querySelector(\"#tickets tr[data-id='{tid}']\")")
    assert page.is_hidden("#detail")
    assert errors == []
    context.close()


def test_an_appointment_shows_its_time_where_a_deadline_would_be(server: LiveServer, browser: Any) -> None:  # noqa: F811
    token = post(server, "/api/login", {"username": "admin", "password": "admin"})["token"]
    request = urllib.request.Request(f"{server.url}/api/slots?store=bj-volvo&limit=1",  # noqa: S310 - our server
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's own server
        slot = json.loads(response.read())["slots"][0]
    booked = post(server, "/api/appointments", {"customer_id": 5, "store_id": 1, "slot": slot["start"]}, token)
    context, page, _ = signed_in_page(browser, server.url, "admin", "admin", "/inbox", locale="zh-CN",
                                      viewport={"width": 1400, "height": 900})
    page.select_option("select[name=kind]", "appointment")
    row = page.locator(f"#tickets tr[data-id='{booked['id']}']")
    row.wait_for()
    due = row.locator(".sla").inner_text()
    assert due.startswith("预约 ") and ":" in due, row.inner_text()  # its time, not "no deadline"
    screenshot(page, "inbox-appointment-zh-CN")
    context.close()


def test_a_tickets_times_read_in_its_stores_hours_in_a_browser_elsewhere(server: LiveServer,
                                                                         browser: Any) -> None:  # noqa: F811
    """A browser in New York, a ticket of the Beijing store: its history and its SLA due time (the countdown's
    tooltip) read in Beijing's hours, with the zone's name — 13 hours from the browser's."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    tid = open_ticket(server, "Engine light on")
    context, page, errors = signed_in_page(browser, server.url, "service-dept", server.demo_password, "/inbox",
                                           locale="en-US", timezone_id="America/New_York",
                                           viewport={"width": 1400, "height": 900})
    page.click(f"#tickets tr[data-id='{tid}']")
    page.wait_for_selector("#detail-history li")
    ticket = page.evaluate("(id) => fetch(`/api/tickets/${id}`).then((r) => r.json())", tid)
    assert ticket["time_zone"] == "Asia/Shanghai"

    def beijing(iso: str) -> str:
        local = datetime.fromisoformat(iso).astimezone(ZoneInfo("Asia/Shanghai"))
        hour = f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"
        return f"{local.month}/{local.day}/{local.year % 100}, {hour} GMT+8"

    def plain(shown: str | None) -> str:
        return " ".join((shown or "").replace("\u202f", " ").split())

    first = plain(page.locator("#detail-history li").first.inner_text())
    assert first.startswith(beijing(ticket["events"][0]["at"]) + " · "), first
    due = ticket["sla"]["first_response"]["due_at"]
    assert plain(page.get_attribute(f"#tickets tr[data-id='{tid}'] td.sla", "title")) == beijing(due)
    screenshot(page, "inbox-new-york-en")
    assert errors == []
    context.close()
