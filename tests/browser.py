"""Real-browser tests: Debian's chromium driven by Playwright (``executable_path``; Playwright cannot download its
own browser here). `.ci/run` installs chromium and fonts-noto-cjk; a machine without them fails these tests with
that instruction — it never skips. Screenshots go to ``test-artifacts/screenshots/`` (not committed)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# page.evaluate(RECORD_CARD_EVENTS): the page keeps every card / socket event (card.js, agent_socket.js) in
# window.ccEvents for the test to read.
RECORD_CARD_EVENTS = """() => {
  window.ccEvents = [];
  for (const name of ["cc:call", "cc:call-ended", "cc:socket"]) {
    document.addEventListener(name, (e) => window.ccEvents.push([name, JSON.parse(JSON.stringify(e.detail))]));
  }
}"""
