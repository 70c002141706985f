"""The admin pages in a real browser against a real `ccserver run`: an admin creates a store, a queue, a DID and a
user; the next (replayed) FastAGI call to that DID is routed by it, without a restart; the new user must choose a
password at the first login; zh-CN and en."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.browser import browser, screenshot, signed_in_page  # noqa: F401 - browser is a fixture
from tests.live_server import LiveServer
from tests.replay.agi_peer import agi_split, env_block
from tests.replay.agi_transcripts import load_agi

NEW_DID = "075586001000"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    live = LiveServer(tmp_path_factory.mktemp("admin")).start()
    yield live
    live.stop()


def replayed_call(port: int, did: str, caller: str = "13311112222") -> dict[str, str]:
    """A recorded FastAGI call (agi-01) replayed to ``did`` from ``caller`` (default: a number no demo customer
    has); the variables routing set."""
    transcript = load_agi("agi-01-13800138000")
    block = env_block(transcript.env, extension=did, callerid=caller, uniqueid="1795499999.1")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(block)
        reader = sock.makefile("rb")
        line = reader.readline().decode().rstrip("\n")
        sock.sendall(b"200 result=1\n")
    words = agi_split(line)
    assert words[:2] == ["EXEC", "MSet"], line
    return dict(pair.split("=", 1) for pair in words[2].split(","))


REFUSED = range(400, 500)  # the refusals the tests provoke (and assert) on purpose: not errors of the page


def submit(page: Any, form: str, fields: dict[str, str]) -> None:
    for name, value in fields.items():
        selector = f"{form} [name={name}]"
        if page.locator(selector).evaluate("e => e.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    page.click(f"{form} button[type=submit]")


def test_admin_creates_a_store_a_did_and_a_user_and_the_next_call_uses_them(server: LiveServer,
                                                                            browser: Any) -> None:  # noqa: F811
    assert replayed_call(server.agi_port, NEW_DID)["CC_QUEUE"] == "hotline"  # unknown DID: the fallback route
    context, page, errors = signed_in_page(browser, server.url, "admin", "admin", locale="zh-CN",
                                           viewport={"width": 1400, "height": 900}, ignore_status=REFUSED)
    page.click("a[href='/admin']")
    page.wait_for_selector("table[data-key=stores] tbody tr")
    assert page.inner_text("h1") == "门店"
    submit(page, "form[data-create='/api/admin/stores']",
           {"code": "sz-byd", "name": "深圳比亚迪<b>4S</b>店", "brand": "BYD", "city": "深圳"})
    page.wait_for_selector("table[data-key=stores] td.code:text-is('sz-byd')")
    assert "深圳比亚迪<b>4S</b>店" in page.inner_text("table[data-key=stores]")  # shown as text
    screenshot(page, "admin-stores-zh-CN")

    page.click("a[href='/admin/dids']")
    page.wait_for_selector("table[data-key=dids] tbody tr")
    did = {"number": NEW_DID, "line": "sales", "store": "sz-byd", "default_queue": "sz-sales"}
    submit(page, "#did-form", did)  # the queue does not exist yet: refused, with the reason
    page.wait_for_selector("#message.error")
    assert "未保存" in page.inner_text("#message") and "未知队列 'sz-sales'" in page.inner_text("#message")
    submit(page, "#queue-form", {"name": "sz-sales", "store": "sz-byd", "line": "sales"})
    page.wait_for_selector("table[data-key=queues] td.name:text-is('sz-sales')")
    submit(page, "#did-form", did)
    page.wait_for_selector(f"table[data-key=dids] td.number:text-is('{NEW_DID}')")
    screenshot(page, "admin-dids-zh-CN")

    page.click("a[href='/admin/users']")
    page.wait_for_selector("table[data-key=users] tbody tr")
    submit(page, "#user-form", {"username": "sz.agent", "display_name": "深圳坐席", "role": "agent",
                                "store": "sz-byd", "extension": "8801", "interface": "PJSIP/8801",
                                "skills": "sales, vip", "password": "first-pass-1"})
    page.wait_for_selector("table[data-key=users] td.username:text-is('sz.agent')")
    row = page.inner_text("table[data-key=users] tr:has(td.username:text-is('sz.agent'))")
    assert "PJSIP/8801" in row and "sales, vip" in row
    screenshot(page, "admin-users-zh-CN")

    # The next call to the new DID is routed by it: no restart, no refresh wait.
    variables = replayed_call(server.agi_port, NEW_DID)
    assert variables["CC_QUEUE"] == "sz-sales" and variables["CC_TIER"] == "prospect", variables
    # the recorded caller is a diamond customer: the new DID's line (sales) sends VIPs to the vip queue
    assert replayed_call(server.agi_port, NEW_DID, caller="13800138000")["CC_QUEUE"] == "vip"

    page.click("a[href='/admin/audit']")
    page.fill("form[data-query] [name=action]", "did.")
    page.click("form[data-query] button[type=submit]")
    page.wait_for_selector("#audit-list td.action:text-is('did.created')")
    assert "admin" in page.inner_text("#audit-list") and NEW_DID in page.inner_text("#audit-list")
    when = page.inner_text("#audit-list tr:first-child td.at")
    assert ":" in when and "T" not in when and "Z" not in when, when  # the reader's time, not raw ISO UTC
    screenshot(page, "admin-audit-zh-CN")
    assert errors == []
    context.close()

    # The new user must choose their own password first.
    context, page, _ = signed_in_page(browser, server.url, "sz.agent", "first-pass-1", locale="zh-CN",
                                      viewport={"width": 1200, "height": 800})
    assert page.url.endswith("/password") and "修改密码" in page.inner_text("h1")
    screenshot(page, "password-forced-zh-CN")
    page.fill("input[name=current_password]", "first-pass-1")
    page.fill("input[name=new_password]", "my-own-pass-2")
    page.fill("input[name=repeat_password]", "my-own-pass-2")
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.url.rstrip("/") == server.url and "sz.agent" in page.inner_text("h1")
    context.close()


def test_admin_pages_in_english(server: LiveServer, browser: Any) -> None:  # noqa: F811
    context, page, errors = signed_in_page(browser, server.url, "admin", "admin", locale="en-US",
                                           viewport={"width": 1400, "height": 900}, ignore_status=REFUSED)
    for section, title in (("stores", "Stores"), ("dids", "DIDs and queues"), ("users", "Users"),
                           ("audit", "Audit log")):
        page.goto(f"{server.url}/admin/{section}")
        page.wait_for_selector("table.list tbody tr")
        assert page.get_attribute("html", "lang") == "en" and page.inner_text("h1") == title
        screenshot(page, f"admin-{section}-en")
    page.goto(f"{server.url}/admin/data")
    page.wait_for_selector("#import-form")
    assert page.inner_text("h1") == "Import and export" and "Dry run: check only" in page.inner_text("#import-form")
    screenshot(page, "admin-data-en")
    assert errors == []
    context.close()


def test_admin_imports_a_gbk_csv_from_the_page(server: LiveServer, browser: Any) -> None:  # noqa: F811
    from pathlib import Path

    csv_file = Path(__file__).parent / "data" / "crm" / "customers_gbk.csv"
    context, page, errors = signed_in_page(browser, server.url, "admin", "admin", "/admin/data", locale="zh-CN",
                                           viewport={"width": 1400, "height": 900}, ignore_status=REFUSED)
    page.set_input_files("#import-form input[name=file]", str(csv_file))
    page.click("#import-form button[type=submit]")  # a dry run first (the box is ticked)
    page.wait_for_selector("#import-report td.reason")
    report = page.inner_text("#import-report")
    # the reasons in the page's language, the number library's too
    assert "未知门店 '深圳奔驰4S店'" in report and "名称为空" in report and "未知的销售顾问 'nobody'" in report
    assert "短号或分机号" in report and "unknown" not in report
    summary = page.inner_text("#import-summary")  # (the demo data has some of these numbers and no zhang.wei)
    assert "未写入" in page.inner_text("#message") and summary.startswith("共 10 行（gb18030）") and "错误 6" in summary
    screenshot(page, "admin-import-dry-run-zh-CN")
    page.uncheck("#import-form input[name=dry_run]")
    page.set_input_files("#import-form input[name=file]", str(csv_file))
    page.click("#import-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#message').innerText.includes('已导入')")
    assert "新增 2" in page.inner_text("#import-summary")
    page.set_input_files("#import-form input[name=file]", str(csv_file))
    page.click("#import-form button[type=submit]")  # again: nothing new
    page.wait_for_function("() => document.querySelector('#import-summary').innerText.includes('新增 0')")
    with page.expect_download() as download:
        page.click("a[href='/api/admin/export/customers']")
    exported = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert exported.startswith("id,name,kind,phone") and "陈七,person,+8613700137000" in exported
    screenshot(page, "admin-import-zh-CN")
    assert errors == []
    context.close()


def test_a_refused_file_clears_the_previous_import_report(server: LiveServer, browser: Any) -> None:  # noqa: F811
    from pathlib import Path

    csv_file = Path(__file__).parent / "data" / "crm" / "customers_gbk.csv"
    context, page, errors = signed_in_page(browser, server.url, "admin", "admin", "/admin/data", locale="en-US",
                                           viewport={"width": 1400, "height": 900}, ignore_status=REFUSED)
    page.set_input_files("#import-form input[name=file]", str(csv_file))
    page.click("#import-form button[type=submit]")  # a dry run: its report shows
    page.wait_for_selector("#import-report td.reason")
    assert page.inner_text("#import-summary").startswith("10 rows")
    # then a file without the required columns: refused, and the first file's report must not stay under it
    page.set_input_files("#import-form input[name=file]", files=[
        {"name": "wrong.csv", "mimeType": "text/csv", "buffer": b"colour,size\nred,9\n"}])
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#message.error")
    assert "required column(s) missing" in page.inner_text("#message")
    assert page.inner_text("#import-summary") == ""
    assert page.locator("#import-report tr").count() == 0
    screenshot(page, "admin-import-refused-en")
    assert errors == [], errors
    context.close()


# Every word of every cell of the table on one line: a word broken over two lines has line boxes at two heights.
WORDS_BROKEN = """(table) => {
  const broken = [];
  for (const td of document.querySelectorAll(`${table} tbody td`)) {
    const walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const word of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, word.index);
        range.setEnd(node, word.index + word[0].length);
        const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (tops.size > 1) broken.push(`${td.className}: ${word[0]}`);
      }
    }
  }
  return broken;
}"""


@pytest.mark.parametrize("lang", ["zh-CN", "en-US"])
def test_the_users_table_at_1280_breaks_no_word(server: LiveServer, browser: Any, lang: str) -> None:  # noqa: F811
    context, page, errors = signed_in_page(browser, server.url, "admin", "admin", "/admin/users", locale=lang,
                                           viewport={"width": 1280, "height": 800}, ignore_status=REFUSED)
    page.wait_for_selector("table[data-key=users] tbody td.username")
    # a long name, with spaces and a hyphen, and a long username: each wraps at its spaces or not at all
    long_user = "table[data-key=users] td.username:text-is('maximilian.hoffmann-rasmussen')"
    if page.locator(long_user).count() == 0:  # (the other language's run may have made it)
        submit(page, "#user-form", {"username": "maximilian.hoffmann-rasmussen", "role": "supervisor",
                                    "display_name": "Maximilian Hoffmann-Rasmussen 欧阳娜娜",
                                    "password": "first-pass-1"})
        page.wait_for_selector(long_user)
    screenshot(page, f"admin-users-1280-{lang}")
    assert page.evaluate(WORDS_BROKEN, "table[data-key=users]") == []
    # the page itself does not scroll sideways: the table scrolls in its own box if it must
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert errors == []
    context.close()


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_the_users_table_and_the_menu_fit_1366(server: LiveServer, browser: Any, lang: str) -> None:  # noqa: F811
    """At 1366×768 the users table (with the long user of the 1280 test) shows its Edit buttons without sideways
    scrolling, and the admin menu is one line."""
    context, page, errors = signed_in_page(browser, server.url, "admin", "admin", "/admin/users", locale=lang,
                                           viewport={"width": 1366, "height": 768}, ignore_status=REFUSED)
    page.wait_for_selector("table[data-key=users] tbody td.username")
    long_user = "table[data-key=users] td.username:text-is('maximilian.hoffmann-rasmussen')"
    if page.locator(long_user).count() == 0:
        submit(page, "#user-form", {"username": "maximilian.hoffmann-rasmussen", "role": "supervisor",
                                    "display_name": "Maximilian Hoffmann-Rasmussen 欧阳娜娜",
                                    "password": "first-pass-1"})
        page.wait_for_selector(long_user)
    screenshot(page, f"admin-users-1366-{lang}")
    fit = page.evaluate("""() => {
      const box = document.querySelector(".table-scroll");
      const edits = [...document.querySelectorAll("table[data-key=users] td.actions button")];
      const links = [...document.querySelectorAll("header.top nav.pages a")];
      return {table: box.scrollWidth, box: box.clientWidth, page: document.documentElement.scrollWidth,
              editRight: Math.max(...edits.map((b) => b.getBoundingClientRect().right)), edits: edits.length,
              menuLines: new Set(links.map((a) => Math.round(a.getBoundingClientRect().top))).size,
              header: document.querySelector("header.top").getBoundingClientRect().height};
    }""")
    assert fit["edits"] > 60 and fit["table"] <= fit["box"], fit  # nothing to scroll sideways
    assert fit["editRight"] <= 1366 and fit["page"] <= 1366, fit  # every Edit button inside the window
    assert fit["menuLines"] == 1, fit
    interface = page.locator("table[data-key=users] tr:has(td.username:text-is('agent8001')) td.extension")
    assert interface.inner_text().split() == ["8001", "Local/8001@agent-phones/n"]  # the interface: under it
    assert page.evaluate(WORDS_BROKEN, "table[data-key=users]") == []
    assert errors == []
    context.close()


def test_store_hours_and_the_holiday_calendar(server: LiveServer, browser: Any) -> None:  # noqa: F811
    context, page, errors = signed_in_page(browser, server.url, "admin", "admin", "/admin/calendar", locale="zh-CN",
                                           viewport={"width": 1400, "height": 900}, ignore_status=REFUSED)
    page.fill("#year-form [name=year]", "2027")
    page.click("#year-form button[type=submit]")
    page.wait_for_selector("#provisional:not([hidden])")  # 2027 has not been published: provisional
    page.fill("#year-form [name=year]", "2026")
    page.click("#year-form button[type=submit]")
    page.wait_for_selector("#provisional[hidden]", state="attached")
    page.click("#import-year")
    page.wait_for_selector("#holidays td.name:has-text('春节')")
    assert "2026-02-15" in page.inner_text("#holidays") and "2026-02-14" in page.inner_text("#makeup")
    page.fill("#hours-store [name=store]", "bj-volvo")
    page.click("#hours-store button[type=submit]")
    page.wait_for_selector("#hours tbody tr")
    for day in range(5):
        page.check(f"#hours-form input[name=weekday][value='{day}']")
    before = page.inner_text("#hours")
    page.fill("#hours-form [name=opens]", "08:30")
    page.fill("#hours-form [name=closes]", "17:45")
    page.click("#hours-form button[type=submit]")
    page.wait_for_function("() => [...document.querySelectorAll('#hours td.closes')]"
                           ".filter(td => td.innerText === '17:45').length === 5")
    rows = page.locator("#hours tbody tr").all_inner_texts()
    mine = [r for r in rows if "17:45" in r]
    assert len(mine) == 5 and all("08:30" in r and "*" in r for r in mine), rows
    assert "星期一" in mine[0] and "星期六" not in "".join(mine)
    kept = [r for r in before.splitlines()[1:] if r.strip() and "*" not in r]
    assert all(r in "\n".join(rows) for r in kept)  # the per-line hours were kept as they were
    page.fill("#hours-store [name=store]", "nowhere")
    page.click("#hours-store button[type=submit]")
    page.wait_for_selector("#message.error")
    assert "未知门店 'nowhere'" in page.inner_text("#message")  # the API's error, in the page's language
    screenshot(page, "admin-calendar-zh-CN")
    assert errors == []
    context.close()


def test_routing_rules_page_refuses_an_unknown_queue(server: LiveServer, browser: Any) -> None:  # noqa: F811
    context, page, errors = signed_in_page(browser, server.url, "admin", "admin", "/admin/routing", locale="en-US",
                                           viewport={"width": 1400, "height": 900}, ignore_status=REFUSED)
    page.wait_for_function("() => document.querySelector('#rules-form textarea').value.includes('fallback_queue')")
    assert page.inner_text("#rules-source") == "(from the config file)"
    page.fill("#rules-form textarea", '{"queues": {"sales": {"diamond": "no-such-queue"}}}')
    page.click("#rules-form button[type=submit]")
    page.wait_for_selector("#message.error")
    assert "routing.queues.sales.diamond: unknown queue 'no-such-queue'" in page.inner_text("#message")
    page.fill("#rules-form textarea",
              '{"queues": {"sales": {"diamond": "vip", "gold": "vip"}}, "fallback_queue": "hotline"}')
    page.click("#rules-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#rules-source').innerText === '(changed by an admin)'")
    assert '"fallback_queue": "hotline"' in page.input_value("#rules-form textarea")
    screenshot(page, "admin-routing-en")
    page.click("#rules-form [data-reset]")
    page.wait_for_function("() => document.querySelector('#rules-source').innerText === '(from the config file)'")
    assert '"main"' in page.input_value("#ivr-form textarea")  # the built-in menus, ready to edit
    assert errors == []
    context.close()


def test_desktop_codes_page_refuses_wrapup_then_the_agents_desktop_shows_the_new_codes(
        server: LiveServer, browser: Any) -> None:  # noqa: F811
    import json

    codes = {"pause_codes": [{"code": "break", "label_zh": "休息", "label_en": "Break"},
                             {"code": "coaching", "label_zh": "辅导<i>", "label_en": "Coaching"}],
             "dispositions": [{"code": "resolved", "label_zh": "已解决", "label_en": "Resolved"},
                              {"code": "test_drive", "label_zh": "预约试驾", "label_en": "Test drive booked"}]}
    for locale, lang in (("zh-CN", "zh-CN"), ("en-US", "en")):
        context, page, errors = signed_in_page(browser, server.url, "admin", "admin", "/admin/codes", locale=locale,
                                               viewport={"width": 1400, "height": 1100}, ignore_status=REFUSED)
        page.wait_for_selector("#codes-pause_codes tbody tr td.code")
        assert page.inner_text("h1") == ("暂停原因与处理结果" if lang == "zh-CN" else "Pause and disposition codes")
        if lang == "zh-CN":
            assert "午餐" in page.inner_text("#codes-pause_codes")  # the config file's, as the desktop shows them
            assert "配置文件" in page.inner_text("#codes-source")
            refused = {**codes, "pause_codes": [*codes["pause_codes"],
                                                {"code": "wrapup", "label_zh": "整理", "label_en": "Wrap-up"}]}
            page.fill("#codes-form textarea", json.dumps(refused, ensure_ascii=False))
            page.click("#codes-form button[type=submit]")
            page.wait_for_selector("#message.error")
            assert "'wrapup' 是强制话后处理专用的原因" in page.inner_text("#message")
            assert "coaching" not in page.inner_text("#codes-pause_codes")  # nothing applied
            page.fill("#codes-form textarea", json.dumps(codes, ensure_ascii=False))
            page.click("#codes-form button[type=submit]")
            page.wait_for_selector("#codes-pause_codes td.code:text-is('coaching')")
            assert "辅导<i>" in page.inner_text("#codes-pause_codes")  # shown as text
        else:
            page.wait_for_selector("#codes-dispositions td.code:text-is('test_drive')")
            assert "Test drive booked" in page.inner_text("#codes-dispositions")
        screenshot(page, f"admin-codes-{lang}")
        assert errors == []
        context.close()
    # An agent's desktop on this server offers the new codes; no restart.
    context, page, _ = signed_in_page(browser, server.url, "agent8001", server.demo_password, "/desktop",
                                      locale="zh-CN", viewport={"width": 1400, "height": 900})
    page.wait_for_selector("#pause-code")
    options = page.eval_on_selector_all("#pause-code option", "os => os.map(o => [o.value, o.textContent])")
    assert options == [["break", "休息"], ["coaching", "辅导<i>"]]
    assert "预约试驾" in page.inner_text("#disposition")
    context.close()


def test_admin_edits_and_deletes_a_store_with_a_confirmation_in_chinese(server: LiveServer,
                                                                         browser: Any) -> None:  # noqa: F811
    context, page, errors = signed_in_page(browser, server.url, "admin", "admin", "/admin/stores", locale="zh-CN",
                                           viewport={"width": 1400, "height": 900}, ignore_status=REFUSED)
    form, table = "#store-form", "table[data-key=stores]"
    submit(page, form, {"code": "gz-tpyo", "name": "广州丰田", "brand": "Toyota", "city": "广州"})
    row = f"{table} tr:has(td.code:text-is('gz-tpyo'))"
    page.wait_for_selector(row)

    # Edit: the add form takes the row's values; a bad value is refused and its field marked; then saved.
    page.click(f"{row} button.edit")
    assert page.input_value(f"{form} [name=name]") == "广州丰田"
    assert page.inner_text(f"{form} button[type=submit]") == "保存修改"
    page.fill(f"{form} [name=code]", "gz-toyota")
    page.fill(f"{form} [name=time_zone]", "Mars/Olympus")
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector("#message.error")
    assert "未保存：未知时区 'Mars/Olympus'" in page.inner_text("#message")
    assert page.get_attribute(f"{form} [name=time_zone]", "aria-invalid") == "true"
    page.fill(f"{form} [name=time_zone]", "Asia/Shanghai")
    page.fill(f"{form} [name=address]", "天河路<1>号")
    page.click(f"{form} button[type=submit]")
    row = f"{table} tr:has(td.code:text-is('gz-toyota'))"
    page.wait_for_selector(row)
    assert "天河路<1>号" in page.inner_text(row) and page.locator(f"{table} td.code:text-is('gz-tpyo')").count() == 0
    assert page.inner_text(f"{form} button[type=submit]") == "添加门店"  # back to adding
    screenshot(page, "admin-store-edited-zh-CN")

    # A store still in use: asked, then refused with what uses it.
    used = f"{table} tr:has(td.code:text-is('bj-volvo'))"
    page.click(f"{used} button.delete")
    assert "删除 bj-volvo？" in page.inner_text(f"{used} td.actions")
    page.click(f"{used} button.confirm")
    page.wait_for_selector("#message.error")
    assert "门店 'bj-volvo' 仍被以下使用" in page.inner_text("#message") and "个用户" in page.inner_text("#message")
    assert page.locator(used).count() == 1

    # Cancel keeps the row; confirming removes it.
    page.click(f"{row} button.delete")
    page.click(f"{row} button.cancel")
    assert page.locator(f"{row} button.confirm").count() == 0 and page.locator(row).count() == 1
    page.click(f"{row} button.delete")
    screenshot(page, "admin-store-delete-confirm-zh-CN")
    page.click(f"{row} button.confirm")
    page.wait_for_selector(row, state="detached")
    assert page.inner_text("#message") == "已删除。"

    # Queues and DIDs: the same Edit and Delete; a queue routing still uses is refused with where.
    page.goto(f"{server.url}/admin/dids")
    submit(page, "#queue-form", {"name": "tmp-queue", "line": "service"})
    queue = "table[data-key=queues] tr:has(td.name:text-is('tmp-queue'))"
    page.wait_for_selector(queue)
    page.click(f"{queue} button.edit")
    page.fill("#queue-form [name=description]", "临时")
    page.click("#queue-form button[type=submit]")
    page.wait_for_selector(f"{queue} td.description:text-is('临时')")
    vip = "table[data-key=queues] tr:has(td.name:text-is('vip'))"
    page.click(f"{vip} button.delete")
    page.click(f"{vip} button.confirm")
    page.wait_for_selector("#message.error")
    assert "未保存：队列 'vip' 仍被以下使用：路由规则（routing.queues." in page.inner_text("#message")
    page.click(f"{queue} button.delete")
    page.click(f"{queue} button.confirm")
    page.wait_for_selector(queue, state="detached")

    # A user is edited the same way (name and password are not: they have their own forms); no Delete.
    page.goto(f"{server.url}/admin/users")
    user = "table[data-key=users] tr:has(td.username:text-is('agent8002'))"
    page.click(f"{user} button.edit")
    assert page.is_disabled("#user-form [name=username]") and page.is_disabled("#user-form [name=password]")
    assert page.locator(f"{user} button.delete").count() == 0
    # (the department must be one tickets are routed to; the name is free text, shown as text)
    page.fill("#user-form [name=display_name]", "李伟<二组>")
    page.click("#user-form button[type=submit]")
    page.locator(user, has_text="李伟<二组>").wait_for()  # shown as text, not markup
    assert page.is_enabled("#user-form [name=username]") and page.inner_text("#message") == "已保存。"

    page.goto(f"{server.url}/admin/audit")
    page.fill("form[data-query] [name=action]", "store.")
    page.click("form[data-query] button[type=submit]")
    page.wait_for_selector("#audit-list td.action:text-is('store.deleted')")
    assert page.locator("#audit-list td.action:text-is('store.updated')").count() == 1
    assert errors == []
    context.close()


def test_a_store_manager_is_offered_only_what_the_server_lets_them_do(
        server: LiveServer, browser: Any, tmp_path: Any) -> None:  # noqa: F811
    """A supervisor with a store: no "add store" form, their store fixed in the forms that name one, no Edit or
    Delete on the group-wide holidays or on supervisors, and the admin-only pages closed; what is offered works."""
    from tests.live_server import _env, ccserver

    secret = tmp_path / "pw"
    secret.write_text("manager-pass-1\n", encoding="utf-8")
    made = ccserver(["users", "add", "bj.manager", "--role", "supervisor", "--store", "bj-volvo",
                     "--display-name", "北京店长", "--password-file", str(secret), "--no-force-change"],
                    _env(server.data_dir))
    assert made.returncode == 0 or "exists already" in made.stderr, made.stderr
    # the group-wide calendar of 2026, imported by an admin (kept when it is there already)
    context, page, _ = signed_in_page(browser, server.url, "admin", "admin", "/admin/calendar", locale="zh-CN",
                                      viewport={"width": 1400, "height": 900})
    page.fill("#year-form [name=year]", "2026")
    page.click("#year-form button[type=submit]")
    page.click("#import-year")
    page.wait_for_selector("#holidays td.name:has-text('春节')")
    context.close()

    for locale, lang in (("zh-CN", "zh-CN"), ("en-US", "en")):
        context, page, errors = signed_in_page(browser, server.url, "bj.manager", "manager-pass-1", locale=locale,
                                               viewport={"width": 1400, "height": 900}, ignore_status=REFUSED)
        page.click("a[href='/admin']")
        page.wait_for_selector("table[data-key=stores] tbody td.code")
        assert page.locator("#store-form").count() == 0  # only an admin adds a store
        assert page.locator("table[data-key=stores] tbody td.code").all_inner_texts() == ["bj-volvo"]
        assert page.locator("table[data-key=stores] button").count() == 0
        assert [a.get_attribute("href") for a in page.locator("nav.pages a").all()] == [
            "/", "/admin/stores", "/admin/dids", "/admin/calendar", "/admin/users"]
        screenshot(page, f"admin-manager-stores-{lang}")

        page.goto(f"{server.url}/admin/dids")
        page.wait_for_selector("table[data-key=queues] tbody td.name")
        for form in ("#queue-form", "#did-form"):
            assert page.input_value(f"{form} [name=store]") == "bj-volvo"
            assert page.get_attribute(f"{form} [name=store]", "readonly") is not None
        queue = f"mgr-{lang}"
        submit(page, "#queue-form", {"name": queue, "line": "service"})  # the store comes with the form
        row = f"table[data-key=queues] tr:has(td.name:text-is('{queue}'))"
        page.wait_for_selector(row)
        assert page.inner_text(f"{row} td.store") == "bj-volvo" and page.locator(f"{row} button.edit").count() == 1
        assert page.input_value("#queue-form [name=store]") == "bj-volvo"  # still, after the form is reset
        screenshot(page, f"admin-manager-dids-{lang}")
        page.click(f"{row} button.delete")
        page.click(f"{row} button.confirm")
        page.wait_for_selector(row, state="detached")

        page.goto(f"{server.url}/admin/calendar")
        page.wait_for_selector("#hours tbody tr")  # their store's hours, shown at once
        assert page.input_value("#hours-store [name=store]") == "bj-volvo"
        assert page.locator("#import-year").count() == 0
        page.fill("#year-form [name=year]", "2026")
        page.click("#year-form button[type=submit]")
        page.wait_for_selector("#holidays td.name:has-text('春节')")
        day = "2026-03-18" if lang == "zh-CN" else "2026-03-19"  # (working days)
        submit(page, "#holiday-form", {"day": day, "name": "店庆<1>"})
        own = f"#holidays tr:has(td.day:text-is('{day}'))"
        page.wait_for_selector(own)
        assert page.inner_text(f"{own} td.store") == "bj-volvo" and page.locator(f"{own} button.edit").count() == 1
        group = "#holidays tr:has(td.name:has-text('春节'))"
        assert page.locator(group).count() > 0 and page.locator(f"{group} button").count() == 0  # an admin's
        assert page.locator("#makeup tbody button").count() == 0  # (every make-up day is group-wide)
        screenshot(page, f"admin-manager-calendar-{lang}")
        page.click(f"{own} button.delete")
        page.click(f"{own} button.confirm")
        page.wait_for_selector(own, state="detached")

        page.goto(f"{server.url}/admin/users")
        page.wait_for_selector("table[data-key=users] tbody td.username")
        me = "table[data-key=users] tr:has(td.username:text-is('bj.manager'))"
        staff = "table[data-key=users] tr:has(td.username:text-is('bj-volvo-sales01'))"
        assert page.locator(f"{me} button").count() == 0 and page.locator(f"{staff} button.edit").count() == 1
        assert page.eval_on_selector_all("#user-form [name=role] option", "os => os.map(o => o.value)") == [
            "agent", "department"]
        assert page.input_value("#user-form [name=store]") == "bj-volvo"
        name = f"bj.new-{lang.lower()}"
        if page.locator(f"table[data-key=users] td.username:text-is('{name}')").count() == 0:
            submit(page, "#user-form", {"username": name, "role": "agent", "password": "first-pass-1"})
            page.wait_for_selector(f"table[data-key=users] tr:has(td.username:text-is('{name}')) td.store")
        assert page.inner_text(f"table[data-key=users] tr:has(td.username:text-is('{name}')) td.store") == "bj-volvo"
        page.click(f"{staff} button.edit")
        page.fill("#user-form [name=extension]", "12ab")  # refused: the field the server names is marked
        page.click("#user-form button[type=submit]")
        page.wait_for_selector("#message.error")
        assert page.get_attribute("#user-form [name=extension]", "aria-invalid") == "true"
        screenshot(page, f"admin-manager-users-{lang}")
        page.click("#user-form button.cancel-edit")

        for section in ("routing", "codes", "data", "audit"):  # admin actions only: not their pages
            assert page.goto(f"{server.url}/admin/{section}").status == 403
        assert ("只有管理员可以打开此页面" if lang == "zh-CN" else "only an admin may open this page") in \
            page.inner_text("main")
        screenshot(page, f"admin-manager-refused-page-{lang}")
        assert errors == [], errors
        context.close()
