"""The screen pop in a real browser: an agent's home page opens the socket (agent_socket.js), the AMI replay peer
plays a recorded call as Asterisk, the card (card.js) pops with a hostile customer name shown as text, and is
retracted on ring-no-answer; the answering agent's card shows the answer. Screenshots in zh-CN and en."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser import RECORD_CARD_EVENTS, browser, screenshot, signed_in_page  # noqa: F401 - a fixture
from tests.live_server import ROOT, LiveServer, free_port

TRANSCRIPT = "ami-inbound-ivr-ringnoanswer-then-answered"
HOSTILE = "<img src=x onerror=alert(1)>"
AGE = 40  # the recorded caller turns 40 in BIRTHDAY_IN days (days counted in the server's time zone)
BIRTHDAY_IN = 10


def _birthday() -> date:
    """A date of birth whose next birthday is BIRTHDAY_IN days from today in Asia/Shanghai (server.time_zone)."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    ahead = today + timedelta(days=BIRTHDAY_IN)
    return ahead.replace(year=ahead.year - AGE)  # 40 years before a leap year is one too: 29 February works



@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    ami_port = free_port()  # the peer starts once the pages are open; the server retries until then
    live = LiveServer(tmp_path_factory.mktemp("browser-screenpop"), extra_env={
        "CCSERVER_AMI_HOST": "127.0.0.1", "CCSERVER_AMI_PORT": str(ami_port), "CCSERVER_AMI_USERNAME": "ccserver",
        "CCSERVER_AMI_SECRET": "ccserver-secret"}).start()
    live.ami_port = ami_port  # type: ignore[attr-defined]
    # The recorded caller (+8613912345678) is on file; their name is now hostile markup, their birthday near.
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{live.data_dir / 'ccserver.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE customers SET name = :name, birthday = :born WHERE id IN (SELECT cp.customer_id"
                          " FROM customer_phones cp JOIN phone_numbers p ON p.id = cp.phone_id"
                          " WHERE p.e164 = '+8613912345678')"),
                     {"name": HOSTILE, "born": _birthday()})
    engine.dispose()
    yield live
    live.stop()


def _page(browser: Any, server: LiveServer, locale: str, username: str,  # noqa: F811
          path: str = "/") -> tuple[Any, Any, list[str]]:
    context, page, errors = signed_in_page(browser, server.url, username, server.demo_password,
                                           None if path == "/" else path, locale=locale,
                                           viewport={"width": 1280, "height": 800}, dismiss_dialogs=True)
    page.wait_for_load_state("networkidle")
    page.evaluate(RECORD_CARD_EVENTS)
    # The home page's status line, or the desktop's (desktop.js shows cc:socket there).
    page.wait_for_selector("#cc-socket[data-state=open], #socket-state[data-state=open]", state="attached",
                           timeout=10_000)
    return context, page, errors


def test_a_recorded_call_pops_and_retracts_in_the_browser(server: LiveServer, browser: Any,  # noqa: F811
                                                         tmp_path: Path) -> None:
    ring_ctx, ring, ring_errors = _page(browser, server, "zh-CN", "agent8009")
    answer_ctx, answer, answer_errors = _page(browser, server, "en", "agent8003", "/desktop")  # the desktop page
    assert ring.inner_text("#cc-socket") == "已连接"
    ami_port = str(server.ami_port)  # type: ignore[attr-defined]
    peer = subprocess.Popen([sys.executable, "-m", "tests.replay.serve_ami", TRANSCRIPT, "--port", ami_port,
                             "--port-file", str(tmp_path / "port"), "--speed", "1", "--skip-action", "Originate",
                             "--max-seconds", "120"], cwd=ROOT)
    try:
        ring.wait_for_selector("#cc-card[data-state=ringing]", timeout=60_000)
        assert ring.inner_text("#cc-card h2") == HOSTILE  # text, not markup
        assert ring.locator("#cc-card img").count() == 0 and ring.locator("img").count() == 0
        assert ring.inner_text("#cc-card [data-field=queue]") == "service"
        assert "客户等级" in ring.inner_text("#cc-card")  # the labels in the page's language
        care = ring.inner_text("#cc-card .cc-card-care li[data-kind=birthday]")
        assert care.startswith(f"生日（满 {AGE} 岁） · ") and care.endswith(f" · {BIRTHDAY_IN} 天后"), care
        assert ring.inner_text("#cc-card [data-field=birthday]") == _birthday().isoformat()
        screenshot(ring, "screenpop-ringing-zh-CN")
        ring.wait_for_selector("#cc-card[data-state=retracted][data-reason=no_answer]", state="attached",
                               timeout=15_000)
        assert ring.is_hidden("#cc-card")
        answer.wait_for_selector("#cc-card[data-state=answered]", timeout=15_000)
        assert answer.inner_text("#cc-card h2") == HOSTILE and "Tier" in answer.inner_text("#cc-card")
        care = answer.inner_text("#cc-card .cc-card-care li[data-kind=birthday]")
        assert care.startswith(f"Birthday (turns {AGE}) · ") and care.endswith(f" · in {BIRTHDAY_IN} days"), care
        summary = answer.inner_text("#call-summary")  # the call's facts; the customer is the card's, shown once
        assert "Answered" in summary and "service" in summary and HOSTILE not in summary and "Liu Yang" not in summary
        assert answer.locator("text=" + HOSTILE).count() == 1
        screenshot(answer, "screenpop-desktop-answered-en")
        answer.wait_for_selector("#cc-card[hidden]", state="attached", timeout=15_000)
        ring_events = ring.evaluate("window.ccEvents")
        calls = [(name, detail.get("state") or detail.get("reason")) for name, detail in ring_events
                 if name != "cc:socket"]
        assert calls == [("cc:call", "ringing"), ("cc:call-ended", "no_answer")]
        answer_calls = [(name, detail.get("state") or detail.get("reason"))
                        for name, detail in answer.evaluate("window.ccEvents") if name != "cc:socket"]
        assert answer_calls[-3:] == [("cc:call", "ringing"), ("cc:call", "answered"), ("cc:call-ended", "ended")]
    finally:
        peer.kill()
        peer.wait()
    assert ring_errors == [] and answer_errors == []  # no CSP refusal, no script error, no alert
    ring_ctx.close()
    answer_ctx.close()
