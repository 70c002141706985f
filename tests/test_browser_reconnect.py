"""The socket drops mid-call, in a real browser: the pages reach the websocket listener through a TCP proxy that
the test cuts (every connection aborted, as when a network path or a node goes away). The page shows that it is
reconnecting, resumes with ``last_seq`` and keeps the same card once — and a retract sent while it was away
still arrives, once. Screenshots of the reconnecting state in zh-CN and en."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.browser import RECORD_CARD_EVENTS, browser, screenshot, signed_in_page  # noqa: F401 - a fixture
from tests.live_server import ROOT, LiveServer, free_port
from tests.ws_proxy import WsProxy

TRANSCRIPT = "ami-inbound-ivr-ringnoanswer-then-answered"



def _post(url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")  # noqa: S310 - ours
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's own server
        return json.loads(response.read())


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Any:
    ami_port, ws_port = free_port(), free_port()
    proxy = WsProxy(ws_port).start()
    live = LiveServer(tmp_path_factory.mktemp("browser-reconnect"), extra_env={
        "CCSERVER_AMI_HOST": "127.0.0.1", "CCSERVER_AMI_PORT": str(ami_port), "CCSERVER_AMI_USERNAME": "ccserver",
        "CCSERVER_AMI_SECRET": "ccserver-secret", "CCSERVER_WS_LISTEN": f"127.0.0.1:{ws_port}",
        "CCSERVER_WS_PUBLIC_URL": f"ws://127.0.0.1:{proxy.port}"}).start()
    live.ami_port = ami_port  # type: ignore[attr-defined]
    yield live, proxy, ws_port
    live.stop()
    proxy.stop()


def _page(browser: Any, server: LiveServer, locale: str, username: str, path: str) -> tuple[Any, Any, list[str]]:  # noqa: F811
    context, page, errors = signed_in_page(browser, server.url, username, server.demo_password,
                                           None if path == "/" else path, locale=locale,
                                           viewport={"width": 1280, "height": 800}, watch=("pageerror",),
                                           dismiss_dialogs=True)
    page.wait_for_load_state("networkidle")
    page.evaluate(RECORD_CARD_EVENTS)
    page.wait_for_selector("#cc-socket[data-state=open], #socket-state[data-state=open]", state="attached",
                           timeout=10_000)
    return context, page, errors


def _calls(page: Any) -> list[tuple[str, str]]:
    return [(name, detail.get("state") or detail.get("reason")) for name, detail in page.evaluate("window.ccEvents")
            if name != "cc:socket"]


def test_a_dropped_socket_shows_reconnecting_and_resumes_with_the_same_card_once(
        setup: Any, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    server, proxy, ws_port = setup
    ring_ctx, ring, ring_errors = _page(browser, server, "zh-CN", "agent8009", "/")
    desk_ctx, desk, desk_errors = _page(browser, server, "en", "agent8003", "/desktop")
    # A witness socket of agent 8009 straight to the listener (not through the proxy): it tells the test when the
    # retract has been sent while the page was cut off — no waiting on a guessed time.
    token = _post(f"{server.url}/api/login", {"username": "agent8009", "password": server.demo_password})["token"]
    ticket = _post(f"{server.url}/api/ws-ticket", {"socket": "agent"}, token)
    stack = ExitStack()
    witness = stack.enter_context(connect(ticket["url"].replace(f":{proxy.port}/", f":{ws_port}/"),
                                          origin=server.url))
    assert json.loads(witness.recv(timeout=5))["type"] == "hello"
    peer = subprocess.Popen([sys.executable, "-m", "tests.replay.serve_ami", TRANSCRIPT, "--port",
                             str(server.ami_port), "--port-file", str(tmp_path / "port"), "--speed", "1",
                             "--skip-action", "Originate", "--max-seconds", "120"], cwd=ROOT)
    try:
        ring.wait_for_selector("#cc-card[data-state=ringing]", timeout=60_000)
        name = ring.inner_text("#cc-card h2")
        # 1. Cut while ringing: the page says it is reconnecting; back, the same card, not popped again.
        proxy.hold()
        proxy.drop()
        ring.wait_for_selector("#cc-socket[data-state=reconnecting]", timeout=10_000)
        desk.wait_for_selector("#socket-state[data-state=reconnecting]", timeout=10_000)
        status = ring.locator("#cc-socket")
        assert status.is_visible() and status.inner_text() == status.get_attribute("data-l-reconnecting")
        assert status.inner_text() == "正在重新连接…"
        assert desk.is_visible("#socket-state") and desk.inner_text("#socket-state") == "Reconnecting…"
        screenshot(ring, "screenpop-reconnecting-zh-CN")
        screenshot(desk, "desktop-reconnecting-en")
        proxy.release()
        ring.wait_for_selector("#cc-socket[data-state=open]", timeout=20_000)
        desk.wait_for_selector("#socket-state[data-state=open]", state="attached", timeout=20_000)
        assert desk.is_hidden("#socket-state")
        assert ring.get_attribute("#cc-card", "data-state") == "ringing" and ring.inner_text("#cc-card h2") == name
        assert ring.locator("#cc-card").count() == 1 and _calls(ring) == [("cc:call", "ringing")]
        # 2. Cut again, and kept away until the ring has stopped: the retract is replayed on resume, once.
        proxy.hold()
        proxy.drop()
        ring.wait_for_selector("#cc-socket[data-state=reconnecting]", timeout=10_000)
        while (frame := json.loads(witness.recv(timeout=30)))["type"] != "retract":
            pass
        assert frame["reason"] == "no_answer"
        assert ring.get_attribute("#cc-card", "data-state") == "ringing"  # the page has not heard yet
        proxy.release()
        ring.wait_for_selector("#cc-card[data-state=retracted][data-reason=no_answer]", state="attached",
                               timeout=20_000)
        assert ring.is_hidden("#cc-card") and ring.get_attribute("#cc-socket", "data-state") == "open"
        assert _calls(ring) == [("cc:call", "ringing"), ("cc:call-ended", "no_answer")]
        # The desktop, cut off twice meanwhile, follows its own call once: rung, answered, ended.
        desk.wait_for_selector("#cc-card[hidden]", state="attached", timeout=30_000)
        desk_calls = _calls(desk)
        assert desk_calls[-3:] == [("cc:call", "ringing"), ("cc:call", "answered"), ("cc:call-ended", "ended")]
        assert len(desk_calls) == len(set(desk_calls))
    finally:
        peer.kill()
        peer.wait()
        stack.close()
    assert ring_errors == [] and desk_errors == []
    ring_ctx.close()
    desk_ctx.close()
