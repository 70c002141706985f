"""`ccserver` as a user runs it: real processes, real sockets, SQLite, an AMI replay peer standing in for Asterisk."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.replay.agi_peer import agi_split

ROOT = Path(__file__).resolve().parent.parent


def ccserver(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ccserver", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, **kw)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CCSERVER_")}
    clean.update({"CCSERVER_SERVER_DATA_DIR": str(tmp_path / "var"), "CCSERVER_HTTP_LISTEN": "127.0.0.1:0",
                  "CCSERVER_AGI_LISTEN": "127.0.0.1:0", "CCSERVER_WS_LISTEN": "127.0.0.1:0",
                  "PYTHONUNBUFFERED": "1"})
    return clean


def http(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict | str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback test server
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310 - loopback test server
            status, raw, ctype = reply.status, reply.read(), reply.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, raw, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    return status, json.loads(raw) if ctype.startswith("application/json") else raw.decode()


def wait_for_banner(process: subprocess.Popen[str], deadline: float) -> dict[str, str]:
    seen: dict[str, str] = {}
    lines = []
    while time.monotonic() < deadline and "ami" not in seen:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("ccserver exited early:\n" + "".join(lines) + process.stderr.read())
        lines.append(line)
        if m := re.search(r"web:\s+(http://\S+?)/ ", line):
            seen["web"] = m.group(1)
        if m := re.search(r"FastAGI: agi://([\d.]+):(\d+)/", line):
            seen["agi_port"] = m.group(2)
        if "AMI:" in line:
            seen["ami"] = line.split("AMI:", 1)[1].strip()
    return seen


def agi_session(port: int, caller: str, answers: int = 10) -> list[str]:
    """Play Asterisk for one FastAGI call: send the env block, answer every command '200 result=1'."""
    env_block = (f"agi_network: yes\nagi_network_script: incoming\nagi_request: agi://127.0.0.1:{port}/incoming\n"
                 f"agi_channel: PJSIP/trunk-00000001\nagi_uniqueid: 1795416921.0\nagi_callerid: {caller}\n"
                 f"agi_calleridname: Test\nagi_extension: 4008001000\nagi_context: from-pstn\n\n")
    commands = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(env_block.encode())
        reader = sock.makefile("rb")
        for _ in range(answers):
            line = reader.readline()
            if not line:
                break
            commands.append(line.decode().rstrip("\n"))
            sock.sendall(b"200 result=1\n")
    return commands


def test_run_refuses_an_unmigrated_database(env):
    result = ccserver(["run"], env)
    assert result.returncode == 2
    assert "ccserver db upgrade" in result.stderr


def test_run_serves_health_auth_agi_ami_and_stops_cleanly(env, tmp_path):
    assert ccserver(["db", "upgrade"], env).returncode == 0
    loaded = ccserver(["demo-data", "--customers", "200", "--seed", "3", "--as-of", "2026-11-23",
                       "--agent-interface", "Local/{ext}@agent-phones/n"], env)
    assert loaded.returncode == 0, loaded.stderr
    assert "admin login:      admin / admin" in loaded.stdout
    again = ccserver(["demo-data", "--if-empty"], env)
    assert again.returncode == 0 and "already loaded" in again.stdout and "admin / admin" in again.stdout

    port_file = tmp_path / "ami.port"
    peer = subprocess.Popen([sys.executable, "-m", "tests.replay.serve_ami", "ami-inbound-vip-answered",
                             "--port-file", str(port_file), "--skip-action", "Originate", "--skip-action", "Status",
                             "--max-seconds", "60"], cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        env.update({"CCSERVER_AMI_HOST": "127.0.0.1", "CCSERVER_AMI_PORT": port_file.read_text(),
                    "CCSERVER_AMI_USERNAME": "ccserver", "CCSERVER_AMI_SECRET": "ccserver-secret"})
        server = subprocess.Popen([sys.executable, "-m", "ccserver", "run"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            urls = wait_for_banner(server, time.monotonic() + 60)
            web = urls["web"]
            status, health = http("GET", f"{web}/healthz")
            deadline = time.monotonic() + 20
            while health.get("ami") != "connected" and time.monotonic() < deadline:
                time.sleep(0.1)
                status, health = http("GET", f"{web}/healthz")
            assert status == 200 and health == {"status": "ok", "database": "ok", "redis": "not configured",
                                                "ami": "connected"}

            assert http("GET", f"{web}/api/me")[0] == 401
            assert http("POST", f"{web}/api/login", {"username": "admin", "password": "nope"})[0] == 401
            status, login = http("POST", f"{web}/api/login", {"username": "admin", "password": "admin"})
            assert status == 200 and login["role"] == "admin"
            status, me = http("GET", f"{web}/api/me", token=login["token"])
            assert status == 200 and me["username"] == "admin"

            commands = agi_session(int(urls["agi_port"]), "13800138000")
            # One round trip: every routing variable in a single MSet, for the diamond demo customer.
            assert len(commands) == 1 and commands[0].startswith("EXEC MSet "), commands
            words = agi_split(commands[0])  # as Asterisk splits it: EXEC, MSet, "A=1,B=2"
            variables = dict(pair.split("=", 1) for pair in words[2].split(","))
            assert variables["CC_TIER"] == "diamond" and variables["CC_CUSTOMER_ID"].isdigit()
            assert int(variables["CC_PRIORITY"]) >= 10 and variables["CC_DECISION_ID"]

            deadline = time.monotonic() + 20  # the replayed call ends: the live view empties (no fixed wait)
            while True:
                status, live = http("GET", f"{web}/api/calls?live=1", token=login["token"])
                if status == 200 and live["total"] == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert status == 200 and live["calls"] == [], live
            # The KPIs counted it (a supervisor's view; the subscriber may be a moment behind the live view).
            deadline = time.monotonic() + 20
            while True:
                status, queues = http("GET", f"{web}/api/queues?queue=vip", token=login["token"])
                vip = queues["queues"][0]["today"] if status == 200 and queues["queues"] else {}
                if vip.get("handled") == 1 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert vip["handled"] == 1, queues
            status, agents = http("GET", f"{web}/api/agents", token=login["token"])
            assert status == 200 and [a["today"]["handled"] for a in agents["agents"]
                                      if a["interface"] == "Local/8001@agent-phones/n"] == [1]
            assert http("GET", f"{web}/metrics")[0] == 401  # loopback is no exemption
            status, metrics = http("GET", f"{web}/metrics", token=login["token"])
            assert status == 200
            messages = float(re.search(r'^ccserver_ami_messages_total\{server="default"\} (\S+)$', metrics,
                                       re.M).group(1))
            assert messages > 50
            assert re.search(r"^ccserver_agi_sessions_total 1$", metrics, re.M)
            assert re.search(r'^ccserver_ami_connected\{server="default"\} 1$', metrics, re.M)
        finally:
            server.send_signal(signal.SIGTERM)
            out, err = server.communicate(timeout=20)
        assert server.returncode == 0, err
        assert "ccserver stopped" in err
    finally:
        peer.kill()
        peer.wait()

    db = sqlite3.connect(tmp_path / "var" / "ccserver.sqlite3")
    rows = db.execute("select server, uniqueid, queue, outcome, agent_interface from calls").fetchall()
    actions = [r[0] for r in db.execute("select action from audit_log order by id")]
    decisions = db.execute("select decision_id, tier, caller_e164, fallback from routing_decisions").fetchall()
    kpi_rows = db.execute("select sum(offered), sum(answered), sum(handled) from kpi_queue_intervals "
                          "where server = 'default' and queue = 'vip'").fetchall()
    db.close()
    # Written at shutdown, counted once. (The recording is days old: its events carry its own Timestamps, while what
    # the resync publishes carries today's clock, so the call's figures fall in two intervals.)
    assert kpi_rows == [(1, 1, 1)]
    assert ("default", "1795416921.0", "vip", "answered", "Local/8001@agent-phones/n") in rows
    assert actions.count("login.failed") == 1 and actions.count("login.succeeded") == 1
    assert decisions == [(variables["CC_DECISION_ID"], "diamond", "+8613800138000", 0)]


def test_run_on_postgresql_and_redis_routes_misses_and_hits_and_flushes_the_log(env, pg_url, redis_url):
    """The production shape: PostgreSQL (misses read on the loop, decisions by COPY) and Redis (the call-path
    client for lookups and stores), then SIGTERM: everything routed is in routing_decisions."""
    import sqlalchemy

    # A password in the URL (the test PostgreSQL trusts local connections and ignores it) must never be printed.
    pg_url = sqlalchemy.engine.make_url(pg_url).set(password="e2e-db-secret").render_as_string(hide_password=False)
    env.update({"CCSERVER_DATABASE_URL": pg_url, "CCSERVER_REDIS_URL": redis_url})
    assert ccserver(["db", "upgrade"], env).returncode == 0
    loaded = ccserver(["demo-data", "--customers", "200", "--seed", "3", "--as-of", "2026-11-23"], env)
    assert loaded.returncode == 0, loaded.stderr
    server = subprocess.Popen([sys.executable, "-m", "ccserver", "run"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        urls = wait_for_banner(server, time.monotonic() + 60)
        status, health = http("GET", f"{urls['web']}/healthz")
        assert status == 200 and health["redis"] == "ok" and health["database"] == "ok"
        # Auth on Redis: login budgets and the logout revocation live there (every node would see them).
        status, login = http("POST", f"{urls['web']}/api/login", {"username": "admin", "password": "admin"})
        assert status == 200
        assert http("GET", f"{urls['web']}/api/me", token=login["token"])[0] == 200
        assert http("POST", f"{urls['web']}/api/logout", token=login["token"])[0] == 200
        assert http("GET", f"{urls['web']}/api/me", token=login["token"])[0] == 401
        import redis

        ended = redis.Redis.from_url(redis_url).keys("ccserver:session-ended:*")
        assert len(ended) == 1
        port = int(urls["agi_port"])
        answers = []
        for caller in ("13800138000", "13800138000", "13912340000"):  # miss, hit, unknown (a new prospect)
            commands = agi_session(port, caller)
            assert len(commands) == 1 and commands[0].startswith("EXEC MSet "), commands
            answers.append(dict(pair.split("=", 1) for pair in agi_split(commands[0])[2].split(",")))
        miss, hit, unknown = answers
        assert miss["CC_TIER"] == hit["CC_TIER"] == "diamond" and miss["CC_CUSTOMER_ID"] == hit["CC_CUSTOMER_ID"]
        assert unknown["CC_TIER"] == "prospect" and unknown["CC_CUSTOMER_ID"].isdigit()
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "call-path Redis client connected" in err and " ERROR " not in err, err
    assert "e2e-db-secret" not in err + out and ":***@" in err
    assert "caller=138****8000 " in err and "13800138000" not in err  # server.log_pii is off by default
    engine = sqlalchemy.create_engine(pg_url)
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text("select decision_id, tier from routing_decisions")).all()
    engine.dispose()
    assert {(a["CC_DECISION_ID"], a["CC_TIER"]) for a in answers} <= set(rows)


def _routed_call(port: int, caller: str) -> str | None:
    """One FastAGI call as Asterisk makes it; the decision id of the MSet it was answered with (None: refused)."""
    env_block = (f"agi_network: yes\nagi_network_script: incoming\nagi_request: agi://127.0.0.1:{port}/incoming\n"
                 f"agi_uniqueid: 1795416921.{caller[-4:]}\nagi_callerid: {caller}\nagi_extension: 4008001000\n\n")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(env_block.encode())
            line = sock.makefile("rb").readline().decode()
            if not line.startswith("EXEC MSet "):
                return None
            sock.sendall(b"200 result=1\n")
            return dict(p.split("=", 1) for p in agi_split(line.rstrip("\n"))[2].split(","))["CC_DECISION_ID"]
    except OSError:  # refused once FastAGI stopped listening, or reset
        return None


def test_sigterm_stops_fastagi_first_and_every_answered_call_keeps_its_decision(env, pg_url):
    """SIGTERM while calls stream in and one call waits on Asterisk's answer: the port closes at once, the
    waiting call is let finish (answered 1 s into the shutdown), and every call that got its MSet has its
    routing_decisions row once the process has exited."""
    import threading

    import sqlalchemy

    env.update({"CCSERVER_DATABASE_URL": pg_url})
    assert ccserver(["db", "upgrade"], env).returncode == 0
    server = subprocess.Popen([sys.executable, "-m", "ccserver", "run"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    answered: list[str] = []
    stop_streaming = threading.Event()

    def stream(offset: int) -> None:  # calls back to back until FastAGI refuses them
        n = 0
        while not stop_streaming.is_set():
            decision = _routed_call(port, f"1391234{offset + n:04d}")
            n += 1
            if decision is None:
                return
            answered.append(decision)

    try:
        port = int(wait_for_banner(server, time.monotonic() + 60)["agi_port"])
        assert _routed_call(port, "13912340000") is not None  # routing is up
        held = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.sendall(b"agi_network: yes\nagi_network_script: incoming\nagi_uniqueid: 1795416921.99\n"
                     b"agi_callerid: 13800138000\nagi_extension: 4008001000\n\n")
        held_line = held.makefile("rb").readline().decode()
        assert held_line.startswith("EXEC MSet "), held_line  # the MSet is out: Asterisk acts on it
        held_decision = dict(p.split("=", 1) for p in agi_split(held_line.rstrip("\n"))[2].split(","))
        streams = [threading.Thread(target=stream, args=(i * 1000,)) for i in range(2)]
        for t in streams:
            t.start()
        deadline = time.monotonic() + 10
        while len(answered) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.send_signal(signal.SIGTERM)
        # While the held call is open the port is closed already: FastAGI stops first.
        refused_by = time.monotonic() + 2
        while time.monotonic() < refused_by:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except ConnectionRefusedError:
                break
            time.sleep(0.01)
        else:
            raise AssertionError("FastAGI still accepts connections 2 s after SIGTERM")
        held.settimeout(1.0)
        try:
            early = held.recv(100)  # the server must not close a call in flight under our feet
        except TimeoutError:
            early = None
        assert early is None, f"the call in flight was closed at shutdown ({early!r})"
        held.sendall(b"200 result=1\n")  # answered 1 s into the shutdown
        held.settimeout(10)
        assert held.recv(100) == b""  # then the server closes it, the handler done
        held.close()
        for t in streams:
            t.join(10)
    finally:
        stop_streaming.set()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert " ERROR " not in err and "NOT written" not in err, err
    engine = sqlalchemy.create_engine(pg_url)
    with engine.connect() as conn:
        rows = set(conn.execute(sqlalchemy.text("select decision_id from routing_decisions")).scalars())
    engine.dispose()
    assert len(answered) >= 50
    assert held_decision["CC_DECISION_ID"] in rows
    assert set(answered) <= rows, f"{len(set(answered) - rows)} answered calls without a decision row"


def test_run_applies_agi_allow_and_command_timeout(env):
    """agi.allow and agi.command_timeout from the environment reach the FastAGI server of `ccserver run`: a peer
    from 127.0.0.2 (outside 127.0.0.1/32) is closed before anything is read; an MSet never answered closes its
    connection after about a second."""
    env.update({"CCSERVER_AGI_ALLOW": "127.0.0.1/32, 192.0.2.0/24", "CCSERVER_AGI_COMMAND_TIMEOUT": "1"})
    assert ccserver(["db", "upgrade"], env).returncode == 0
    server = subprocess.Popen([sys.executable, "-m", "ccserver", "run"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(wait_for_banner(server, time.monotonic() + 60)["agi_port"])
        env_block = b"agi_network: yes\nagi_network_script: incoming\nagi_extension: 4008001000\n\n"
        with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0)) as sock:
            sock.sendall(env_block)
            try:
                refused = sock.recv(100)
            except ConnectionResetError:
                refused = b""
        assert refused == b""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(env_block)
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"EXEC MSet ")
            started = time.monotonic()
            try:
                closed = reader.readline()  # never answered: the server gives up on it
            except ConnectionResetError:
                closed = b""
            waited = time.monotonic() - started
        assert closed == b"" and 0.9 < waited < 3.0, waited
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "refused a connection from 127.0.0.2 (not in agi.allow)" in err
    assert "FastAGI command EXEC MSet not answered within 1 s" in err
