"""The Asterisk link banner in chromium: a demo with no Asterisk says so on the wallboard, the supervisor console, the
agent desktop and the campaign page, in zh-CN and en; with the replay peer as Asterisk there is no banner until the
peer goes away, then the wallboard says since when the link is down. Screenshots of each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import browser, log_in, screenshot  # noqa: F401 - browser is a fixture
from tests.live_server import LiveServer

NONE = {"zh-CN": "未连接 Asterisk", "en": "Not connected to Asterisk"}
DOWN = {"zh-CN": "Asterisk 连接自", "en": "Asterisk link down since"}
PAGES = (("supervisor1", "/wallboard"), ("supervisor1", "/supervisor"), ("agent8001", "/desktop"),
         ("campaigns", "/campaigns"))


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("no-asterisk")).start()  # no ami.host: `make run`'s demo
    yield live
    live.stop()


def _open(browser: Any, server: LiveServer, lang: str, user: str, path: str) -> tuple[Any, Any, list[str]]:  # noqa: F811
    context = browser.new_context(locale=lang, viewport={"width": 1920, "height": 1080})
    context.add_cookies([{"name": "ccserver_lang", "value": lang, "url": server.url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    log_in(page, server.url, user, server.demo_password)
    page.goto(f"{server.url}{path}")
    return context, page, errors


def _banner(page: Any) -> str:
    page.wait_for_selector("#asterisk-banner:not([hidden])", timeout=15_000)
    return str(page.inner_text("#asterisk-banner"))


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_live_page_says_no_asterisk_is_configured(bare: LiveServer, browser: Any, lang: str) -> None:  # noqa: F811
    for user, path in PAGES:
        context, page, errors = _open(browser, bare, lang, user, path)
        try:
            said = _banner(page)
            assert said.startswith(NONE[lang]) and "ami.host" in said, (path, said)
            no_start = "外呼活动无法开始" if lang == "zh-CN" else "Campaigns cannot start"
            assert (no_start in said) == (path == "/campaigns"), said
            assert page.evaluate("() => getComputedStyle(document.getElementById('asterisk-banner')).display") \
                != "none"
            screenshot(page, f"asterisk-none{path.replace('/', '-')}-{lang}")
            assert errors == [], (path, errors)
        finally:
            context.close()


def test_the_banner_appears_when_the_link_drops(tmp_path_factory: pytest.TempPathFactory,
                                                browser: Any) -> None:  # noqa: F811
    live = LiveServer(tmp_path_factory.mktemp("asterisk-drops"), transcript="ami-inbound-vip-answered",
                      speed=0.05).start()
    try:
        context, page, errors = _open(browser, live, "zh-CN", "supervisor1", "/wallboard")
        page.wait_for_function("() => document.getElementById('wallboard').dataset.version")
        page.wait_for_function("() => document.getElementById('wallboard').dataset.version > 1")
        assert page.is_hidden("#asterisk-banner")  # logged in to the peer: nothing to say
        assert live.peer is not None
        live.peer.kill()  # Asterisk goes away
        said = _banner(page)  # the next snapshot (at most 5 s) carries the link state
        assert said.startswith(DOWN["zh-CN"]) and "default" in said and "数据可能不是最新的" in said, said
        screenshot(page, "asterisk-down-wallboard-zh-CN")
        assert errors == []
        context.close()
    finally:
        live.stop()
