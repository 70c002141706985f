"""Real-browser tests: Debian's chromium driven by Playwright (``executable_path``; Playwright cannot download its
own browser here). `.ci/run` installs chromium and fonts-noto-cjk; a machine without them fails these tests with
that instruction — it never skips. Screenshots go to ``test-artifacts/screenshots/`` (not committed)."""

from __future__ import annotations

import shutil
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: `apt-get install chromium fonts-noto-cjk` (.ci/run does)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One chromium per test module. Not per session: Playwright's sync API keeps an event loop running in the
    main thread while it is open, and the other tests start loops of their own (asyncio.run)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


class OpenPage(NamedTuple):
    """A page in a context of its own, and what went wrong on it (see :func:`open_page`)."""

    context: Any
    page: Any
    errors: list[str]


def open_page(browser: Any, *, locale: str, viewport: dict[str, int] | None = None, timezone_id: str | None = None,
              watch: Collection[str] = ("console", "pageerror"), ignore_status: Collection[int] = (),
              dismiss_dialogs: bool = False) -> OpenPage:
    """A new context (``locale``; ``viewport`` None: Playwright's 1280×720; ``timezone_id`` None: the machine's) and
    a page in it whose errors the test asserts on: console errors (``"console"`` in ``watch``), except the lines
    for responses with a status in ``ignore_status`` (refusals the test provokes on purpose), and uncaught
    exceptions (``"pageerror"``). ``dismiss_dialogs``: an alert or confirm is an error too, recorded and dismissed
    (without a handler Playwright dismisses it unseen; tests that answer dialogs themselves leave it off)."""
    unknown = set(watch) - {"console", "pageerror"}
    if unknown:
        raise ValueError(f"watch: {sorted(unknown)} is not 'console' or 'pageerror'")
    context = browser.new_context(locale=locale, viewport=viewport, timezone_id=timezone_id)
    page = context.new_page()
    errors: list[str] = []
    refused = tuple(f"the server responded with a status of {status} " for status in ignore_status)

    def console(message: Any) -> None:
        if message.type == "error" and not any(r in message.text for r in refused):
            errors.append(message.text)

    def dialog(shown: Any) -> None:
        errors.append(f"dialog: {shown.message}")
        shown.dismiss()

    if "console" in watch:
        page.on("console", console)
    if "pageerror" in watch:
        page.on("pageerror", lambda e: errors.append(str(e)))
    if dismiss_dialogs:
        page.on("dialog", dialog)
    return OpenPage(context, page, errors)


def signed_in_page(browser: Any, base_url: str, username: str, password: str, path: str | None = None, *,
                   locale: str, viewport: dict[str, int] | None = None, timezone_id: str | None = None,
                   watch: Collection[str] = ("console", "pageerror"), ignore_status: Collection[int] = (),
                   dismiss_dialogs: bool = False) -> OpenPage:
    """:func:`open_page`, logged in as ``username``, then at ``path`` (None: the page the login lands on). Errors
    are watched from the login page on."""
    opened = open_page(browser, locale=locale, viewport=viewport, timezone_id=timezone_id, watch=watch,
                       ignore_status=ignore_status, dismiss_dialogs=dismiss_dialogs)
    log_in(opened.page, base_url, username, password)
    if path is not None:
        opened.page.goto(f"{base_url}{path}")
    return opened


# page.evaluate(RECORD_CARD_EVENTS): the page keeps every card / socket event (card.js, agent_socket.js) in
# window.ccEvents for the test to read.
RECORD_CARD_EVENTS = """() => {
  window.ccEvents = [];
  for (const name of ["cc:call", "cc:call-ended", "cc:socket"]) {
    document.addEventListener(name, (e) => window.ccEvents.push([name, JSON.parse(JSON.stringify(e.detail))]));
  }
}"""
