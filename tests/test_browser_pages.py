"""The page foundation in a real browser: log in, both languages, the language switch, escaping, no inline script."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import browser, log_in, open_page, screenshot  # noqa: F401 - browser is a fixture
from tests.live_server import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    live = LiveServer(tmp_path_factory.mktemp("browser")).start()
    yield live
    live.stop()


def test_login_in_chinese_then_english(server: LiveServer, browser: Any) -> None:  # noqa: F811
    context, page, errors = open_page(browser, locale="zh-CN", viewport={"width": 1280, "height": 800},
                                      watch=("console",))
    page.goto(f"{server.url}/login")
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.inner_text("h1") == "登录"
    screenshot(page, "login-zh-CN")
    page.fill("input[name=username]", "<img src=x onerror=alert(1)>")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert page.inner_text("[role=alert]") == "用户名或密码错误。"
    assert page.input_value("input[name=username]") == "<img src=x onerror=alert(1)>"  # shown as text
    assert page.locator("img").count() == 0
    # switching the language on the refused login loads the form again (by GET: a reload re-posted it, "expired")
    page.click("[data-lang=en]")
    page.wait_for_load_state("networkidle")
    assert page.inner_text("h1") == "Log in" and page.locator("[role=alert]").count() == 0
    page.click("[data-lang=zh-CN]")
    page.wait_for_load_state("networkidle")
    assert page.inner_text("h1") == "登录"
    log_in(page, server.url, "agent8001", server.demo_password)
    assert "欢迎" in page.inner_text("h1")
    page.click("[data-lang=en]")  # the switch remembers the choice and reloads the page in it
    page.wait_for_load_state("networkidle")
    assert page.get_attribute("html", "lang") == "en" and page.inner_text("h1") == "Welcome, agent8001"
    screenshot(page, "home-en")
    page.goto(f"{server.url}/login")
    assert page.inner_text("h1") == "Log in"  # the choice holds on other pages
    # nothing refused by the Content-Security-Policy, no script error, nothing missing (the wrong password's 401 is
    # the one expected failure)
    assert [e for e in errors if "status of 401" not in e] == []
    context.close()
