"""`ccserver run` end to end: the AMI replay peer plays a recorded call as Asterisk, and the pops reach real
websocket clients that got their tickets from POST /api/ws-ticket; wrong Origin refused by the live server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.live_server import ROOT, LiveServer, free_port

TRANSCRIPT = "ami-inbound-ivr-ringnoanswer-then-answered"



def _post(url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")  # noqa: S310 - ours
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's own server
        return json.loads(response.read())


def _call_frames(ws: Any, count: int, timeout: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame["type"] != "agent_state":
            out.append(frame)
    return out


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Any:
    ami_port = free_port()  # nobody listens yet: the server retries until the peer starts below
    server = LiveServer(tmp_path_factory.mktemp("screenpop"), extra_env={
        "CCSERVER_AMI_HOST": "127.0.0.1", "CCSERVER_AMI_PORT": str(ami_port), "CCSERVER_AMI_USERNAME": "ccserver",
        "CCSERVER_AMI_SECRET": "ccserver-secret"}).start()
    server.ami_port = ami_port  # type: ignore[attr-defined]
    yield server
    server.stop()


def _ticket(live: LiveServer, username: str) -> dict[str, Any]:
    token = _post(f"{live.url}/api/login", {"username": username, "password": live.demo_password})["token"]
    return _post(f"{live.url}/api/ws-ticket", {"socket": "agent"}, token)


def _status(url: str, body: dict[str, Any], token: str | None = None) -> int:
    try:
        _post(url, body, token)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def test_ticket_endpoint_and_csp(live: LiveServer) -> None:
    token = _post(f"{live.url}/api/login", {"username": "agent8002", "password": live.demo_password})["token"]
    assert _status(f"{live.url}/api/ws-ticket", {"socket": "agent"}) == 401
    assert _status(f"{live.url}/api/ws-ticket", {"socket": "fridge"}, token) == 400
    assert _status(f"{live.url}/api/ws-ticket", {}, token) == 400
    assert _status(f"{live.url}/api/ws-ticket", {"socket": "wallboard"}, token) == 403  # supervisors only
    got = _post(f"{live.url}/api/ws-ticket", {"socket": "agent"}, token)
    assert got["expires_in"] == 30 and len(got["ticket"]) >= 40
    ws_origin = got["url"].split("/ws/")[0]
    with urllib.request.urlopen(f"{live.url}/login", timeout=10) as page:  # noqa: S310 - the test's own server
        csp = page.headers["Content-Security-Policy"]
    assert csp.endswith(f"; connect-src 'self' {ws_origin}") and "script-src 'self';" in csp and "unsafe" not in csp


def test_wrong_origin_and_reused_ticket_are_refused_by_the_live_server(live: LiveServer) -> None:
    got = _ticket(live, "agent8002")
    assert got["url"].startswith("ws://127.0.0.1:") and "/ws/agent?ticket=" in got["url"]
    with connect(got["url"], origin="http://evil.example") as ws:  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert (ws.close_code, ws.close_reason) == (4403, "origin not allowed")
    got = _ticket(live, "agent8002")
    with connect(got["url"], origin=live.url) as ws:  # type: ignore[arg-type]
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"
    with connect(got["url"], origin=live.url) as ws:  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 4401


def test_the_replayed_call_pops_and_retracts_on_real_sockets(live: LiveServer, tmp_path: Path) -> None:
    stack = ExitStack()
    ring, answer, bystander = (stack.enter_context(connect(_ticket(live, name)["url"], origin=live.url))
                               for name in ("agent8009", "agent8003", "agent8001"))
    for ws in (ring, answer, bystander):
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"
    port_file = tmp_path / "ami.port"
    peer = subprocess.Popen([sys.executable, "-m", "tests.replay.serve_ami", TRANSCRIPT, "--port",
                             str(live.ami_port), "--port-file", str(port_file),  # type: ignore[attr-defined]
                             "--skip-action", "Originate", "--max-seconds", "120"], cwd=ROOT)
    try:
        pop, retract = _call_frames(ring, 2, timeout=60)  # the AMI client's reconnect backoff comes first
        assert pop["type"] == "pop" and pop["state"] == "ringing" and pop["call"]["queue"] == "service"
        assert pop["customer"]["name"] == "刘洋" and pop["customer"]["known"]  # found by the caller's number
        assert retract["type"] == "retract" and retract["reason"] == "no_answer" and retract["seq"] > pop["seq"]
        assert [f["type"] for f in _call_frames(answer, 3, timeout=30)] == ["pop", "update", "retract"]
        with pytest.raises(TimeoutError):
            _call_frames(bystander, 1, timeout=0.5)
    finally:
        peer.kill()
        peer.wait()
        stack.close()


def _error(url: str, body: dict[str, Any], token: str | None = None) -> tuple[int, dict[str, Any]]:
    try:
        _post(url, body, token)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    return 200, {}


def _admin_token(live: LiveServer) -> str:
    import re

    logins = (live.data_dir / "demo-logins.txt").read_text(encoding="utf-8")
    match = re.search(r"admin login:\s+admin / (\S+)", logins)
    assert match, logins
    return str(_post(f"{live.url}/api/login", {"username": "admin", "password": match.group(1)})["token"])


def test_a_forced_password_change_closes_the_open_socket_and_gets_no_ticket(live: LiveServer) -> None:
    token = _post(f"{live.url}/api/login", {"username": "agent8005", "password": live.demo_password})["token"]
    got = _post(f"{live.url}/api/ws-ticket", {"socket": "agent"}, token)
    admin = _admin_token(live)
    with connect(got["url"], origin=live.url) as ws:  # type: ignore[arg-type]
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"
        _post(f"{live.url}/api/admin/users/agent8005/password", {"password": "a-new-Password-4711"}, admin)
        with pytest.raises(ConnectionClosed):
            while True:  # agent_state frames may come first
                ws.recv(timeout=5)
        assert (ws.close_code, ws.close_reason) == (4401, "password change required")
    # The session signed in before the reset, and a fresh login with the new password alike: no ticket.
    assert _error(f"{live.url}/api/ws-ticket", {"socket": "agent"}, token) == \
        (403, {"error": "choose a new password first (POST /api/password)", "reason": "password_change_required"})
    fresh = _post(f"{live.url}/api/login", {"username": "agent8005", "password": "a-new-Password-4711"})["token"]
    status, body = _error(f"{live.url}/api/ws-ticket", {"socket": "agent"}, fresh)
    assert (status, body["reason"]) == (403, "password_change_required")


def test_a_deactivated_users_open_socket_closes(live: LiveServer) -> None:
    got = _ticket(live, "agent8006")
    with connect(got["url"], origin=live.url) as ws:  # type: ignore[arg-type]
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"
        _post(f"{live.url}/api/admin/users/agent8006/deactivate", {}, _admin_token(live))
        with pytest.raises(ConnectionClosed):
            while True:  # agent_state frames may come first
                ws.recv(timeout=5)
        assert (ws.close_code, ws.close_reason) == (4401, "user deactivated")
