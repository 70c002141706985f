"""Two real `ccserver run` processes sharing PostgreSQL and Redis, one Asterisk (the AMI replay peer): the node that
takes the lease consumes AMI, the other follows its relay. After the busy hour, and after a replayed Asterisk
restart, the follower's live view equals the leader's, and so does the leader's mirror in Redis; only the leader
writes call records."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import sqlalchemy

from ccserver.state.model import to_dict
from ccserver.state.redis_store import RedisStateReader
from tests.live_server import free_port
from tests.test_server_e2e import ROOT, ccserver, http, wait_for_banner

pytestmark = pytest.mark.slow



class Node:
    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen([sys.executable, "-m", "ccserver", "run"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.web = ""
        self.token = ""

    def ready(self) -> None:
        self.web = wait_for_banner(self.process, time.monotonic() + 60)["web"]
        status, login = http("POST", f"{self.web}/api/login", {"username": "admin", "password": "e2e-admin"})
        assert status == 200, login
        self.token = login["token"]

    def get(self, path: str) -> Any:
        status, body = http("GET", f"{self.web}{path}", token=self.token)
        assert status == 200, (path, status, body)
        return body

    def ami(self) -> str:
        return http("GET", f"{self.web}/healthz")[1]["ami"]

    def metric(self, name: str) -> float:
        found = re.search(rf'^{name}{{server="default"}} (\S+)$', self.get("/metrics"), re.M)
        return float(found.group(1)) if found else 0.0

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        _out, err = self.process.communicate(timeout=30)
        return self.process.returncode, err


def poll(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(0.1)


def mirror_of(redis_url: str) -> dict[str, Any]:
    async def read() -> Any:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await RedisStateReader(client).snapshot("default")
        finally:
            await client.aclose()

    snap = asyncio.run(read())
    return {"position": snap.position, "queues_complete": snap.queues_complete,
            "calls": sorted((to_dict(c) for c in snap.calls), key=lambda c: c["uniqueid"]),
            "queues": [to_dict(q) for q in sorted(snap.queues, key=lambda q: q.name)],
            "agents": [to_dict(a) for a in sorted(snap.agents, key=lambda a: a.interface)]}


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    return {"queues_complete": state["queues_complete"], "calls": sorted(state["calls"], key=lambda c: c["uniqueid"]),
            "queues": state["queues"], "agents": state["agents"]}


def run_two_nodes(transcript: str, done, tmp_path: Path, pg_url: str, redis_url: str,
                  skip: tuple[str, ...]) -> tuple[Node, Node, dict[str, Any], list[tuple[str, str]]]:
    """Start both nodes (the first takes the lease), then Asterisk; wait until ``done(leader state)`` and the follower
    agrees; return (leader, follower, the agreed state, every calls row)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCSERVER_")}
    env.update({"CCSERVER_DATABASE_URL": pg_url, "CCSERVER_REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1",
                "CCSERVER_HTTP_LISTEN": "127.0.0.1:0", "CCSERVER_AGI_LISTEN": "127.0.0.1:0",
                "CCSERVER_WS_LISTEN": "127.0.0.1:0",
                "CCSERVER_SERVER_SECRET_KEY": "e2e-cluster-secret-0123456789",
                "CCSERVER_AMI_HOST": "127.0.0.1", "CCSERVER_AMI_PORT": str(port),
                "CCSERVER_AMI_USERNAME": "ccserver", "CCSERVER_AMI_SECRET": "ccserver-secret"})
    assert ccserver(["db", "upgrade"], env).returncode == 0
    loaded = ccserver(["demo-data", "--customers", "50", "--seed", "3", "--as-of", "2026-11-23",
                       "--admin-password", "e2e-admin"], env)
    assert loaded.returncode == 0, loaded.stderr
    nodes: list[Node] = []
    peer = None
    try:
        for name in ("a", "b"):
            node_env = {**env, "CCSERVER_SERVER_DATA_DIR": str(tmp_path / name)}
            nodes.append(Node(name, node_env))
            nodes[-1].ready()
            if name == "a":  # a holds the lease before b starts: b follows from its first second
                poll(lambda: nodes[0].ami() == "disconnected", 20, "a leads (its Asterisk is not up yet)")
        a, b = nodes
        poll(lambda: b.ami() == "following", 20, "b follows")
        port_file = tmp_path / "ami.port"
        peer = subprocess.Popen([sys.executable, "-m", "tests.replay.serve_ami", transcript, "--port", str(port),
                                 "--port-file", str(port_file), "--max-seconds", "180",
                                 *[arg for action in skip for arg in ("--skip-action", action)]], cwd=ROOT)
        poll(port_file.exists, 20, "the replay peer listens")
        poll(lambda: a.ami() == "connected", 60, "a connects to Asterisk (after its reconnect backoff)")
        agreed: dict[str, Any] = {}

        def settled() -> bool:
            leader = a.get("/api/state")
            if not done(leader):
                return False
            follower = b.get("/api/state")
            if comparable(follower) != comparable(leader):
                return False
            agreed.update(leader)
            return True

        poll(settled, 90, "the follower's view equals the leader's, the replay done")
        poll(lambda: {k: v for k, v in mirror_of(redis_url).items() if k != "position"} == comparable(agreed),
             10, "the leader's mirror agrees")
        assert mirror_of(redis_url)["position"] is not None  # at rest, the mirror names the message it holds
        assert b.metric("ccserver_relay_gaps_total") == 0
        assert b.metric("ccserver_relay_rebuilds_total") == 1  # once, when it subscribed
        engine = sqlalchemy.create_engine(pg_url)

        def rows() -> list[Any]:
            with engine.connect() as conn:
                return list(conn.execute(sqlalchemy.text("select uniqueid, outcome from calls")))

        poll(lambda: len(rows()) >= done.records, 20, "the call records are written")
        recorded = rows()
        engine.dispose()
        return a, b, agreed, recorded
    finally:
        stopped = [node.stop() for node in nodes]
        if peer is not None:
            peer.kill()
            peer.wait()
        for code, err in stopped:
            assert code == 0, err
            assert " ERROR " not in err and "Traceback" not in err, err


class BusyHourDone:
    records = 40

    def __call__(self, state: dict[str, Any]) -> bool:
        bulk = next((q for q in state["queues"] if q["name"] == "bulk"), None)
        return bulk is not None and bulk["completed"] + bulk["abandoned"] == 40 and not state["calls"]


class RestartDone:
    records = 1

    def __call__(self, state: dict[str, Any]) -> bool:
        return state["queues_complete"]  # the second connection's full resync was applied (relayed: b too)


def test_the_follower_agrees_with_the_leader_after_the_busy_hour(tmp_path, pg_url, redis_url):
    a, b, state, rows = run_two_nodes("ami-inbound-load-40-calls", BusyHourDone(), tmp_path, pg_url, redis_url,
                                      skip=("Originate", "QueueSummary"))
    [bulk] = state["queues"]
    assert (bulk["completed"], bulk["abandoned"]) == (26, 14) and len(bulk["members"]) == 20
    assert all(agent["current_call"] is None for agent in state["agents"]) and len(state["agents"]) == 20
    assert len(rows) == 40 and len({uid for uid, _ in rows}) == 40  # one record per call: the leader's


def test_the_follower_agrees_with_the_leader_after_an_asterisk_restart(tmp_path, pg_url, redis_url):
    a, b, state, rows = run_two_nodes("ami-asterisk-restart-with-waiting-caller", RestartDone(), tmp_path, pg_url,
                                      redis_url, skip=("Originate",))
    [complaints] = state["queues"]
    assert complaints["callers"] == [] and state["calls"] == []  # no ghost caller on either node
    assert rows == [("1795417153.162", "abandoned")]
