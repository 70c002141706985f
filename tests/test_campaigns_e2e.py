"""`ccserver run` with an Asterisk (the AMI replay peer playing ami-originate-results) dials a running campaign:
the dialer component is wired, leads (no Redis: one node), sends Originates through the AMI client and writes
their outcomes (the peer refuses Originates it has no recording for: each attempt ends `failed`, once, and is not
re-sent)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from tests.live_server import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    live = LiveServer(tmp_path_factory.mktemp("campaigns-e2e"), transcript="ami-originate-results",
                      extra_env={"CCSERVER_CAMPAIGNS_WINDOW_START": "00:00",
                                 "CCSERVER_CAMPAIGNS_WINDOW_END": "23:59"}).start()
    yield live
    live.stop()


def call(server: LiveServer, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=data, headers=headers, method=method)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's own server
        return json.loads(response.read())


def test_a_running_campaign_is_dialled_by_the_server(server: LiveServer) -> None:
    token = call(server, "POST", "/api/login", {"username": "admin", "password": "admin"})["token"]
    created = call(server, "POST", "/api/campaigns", {
        "name": "e2e", "type": "satisfaction", "mode": "progressive", "queue": "sales",
        "window": {"start": "00:00", "end": "23:59"}, "targets": {"filter": {"tiers": ["diamond", "gold"]}},
        "max_attempts": 1}, token)
    call(server, "POST", f"/api/campaigns/{created['id']}/start", {}, token)
    deadline = time.monotonic() + 30
    progress: dict[str, Any] = {}
    while time.monotonic() < deadline:
        progress = call(server, "GET", f"/api/campaigns/{created['id']}", token=token)["progress"]
        if progress["dialed"] > 0 and progress["pending"] == 0:
            break
        time.sleep(0.2)  # a real server in real time: poll its API
    # The recording leaves agent 8001 free in `sales`: one line at a time, each refused by the peer (failed);
    # every target dialled exactly once (max_attempts 1) or dropped by the gate (a do-not-call customer), none
    # answered.
    assert progress["targets"] > 1 and progress["pending"] == 0
    assert progress["dialed"] == progress["done"] == progress["targets"] - progress["dropped"] > 0
    assert progress["answered"] == 0
    assert "dialer tick failed" not in "".join(server.log)
