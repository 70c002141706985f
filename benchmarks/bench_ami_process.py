"""AMI end to end through the whole `ccserver run` process, beside panoramisk fed the same bytes in the same run.

The same fake Asterisk as bench_ami (its own process; banner, Login answer, the busy-hour stream multiplied) —
but the consumer is a real `ccserver run`: the AMI client, the state tracker, the call-events hub and its
subscribers (the Redis mirror, call records, agent reconcile), on PostgreSQL and Redis as in production. The fake
Asterisk also answers the resync ccserver sends on FullyBooted (QueueStatus, CoreShowChannels: empty lists).

Start line: the fake Asterisk streams once ccserver has printed its start-up banner (everything started, the AMI
logged in), so start-up work is not counted. Finish line: ccserver's own counter ``ccserver_ami_messages_total``
reaching the number of messages sent, read from ``/metrics`` (polled every 10 ms: the figure errs by at most one
poll) over one kept-alive HTTP connection opened before the stream: a new connection per poll cost the server an
accept and a close each time too (~0.9 ms of its CPU a poll against ~0.3 ms measured, some 45 polls a run), work
the production server never does and panoramisk's finish line (its handler of the last event, as in bench_ami)
does not pay.

    .venv/bin/python -m benchmarks.bench_ami_process [--copies 10] [--runs 3]

Readers first (README, The call-events hub): while the AMI reader is behind on the stream, the hub's subscribers are
held (half a second at most) and then handle what queued in one go, so most of their work follows the finish line.
A second line says when it is done: ``drained``, the seconds from the start until ``ccserver_events_queued`` (every
subscriber's queue) is back to 0 once every message is counted — every event taken by its subscriber (a last batch's
SQL may still be under way; ``cpu_after`` counts it). Both are reported; the ratio is on the first.

Each ccserver run also reports the CPU seconds its threads spent between the start and the finish line
(``cpu_by_thread``: ``main`` is the reactor thread; the others are named as the OS knows them), and ``cpu_after``: the
CPU seconds of the whole process in the ``AFTER`` seconds past the finish line — the work the hub's subscribers still
had queued once every message was read (call records, callback tickets, KPI writes), plus an idle server's ticks.
Switch: ``BENCH_AMI_PYSPY=/tmp/ami.raw`` samples the server with py-spy (every thread, raw stacks,
``BENCH_AMI_PYSPY_RATE`` samples per second, default 250; ``py-spy`` on PATH) from just before the stream to its exit —
it slows the run, so its figures are not comparable.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_ami import BANNER, _run_panoramisk, build_payload  # noqa: E402

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
AFTER = 2.0  # seconds watched after the finish line


def _answer_actions(conn: socket.socket, buf: bytes) -> bytes:
    """Answer every complete action in ``buf`` like an idle Asterisk would; returns what is left."""
    while b"\r\n\r\n" in buf:
        raw, buf = buf.split(b"\r\n\r\n", 1)
        action = re.search(rb"(?im)^Action: *([^\r\n]*)", raw)
        aid = re.search(rb"(?im)^ActionID: *([^\r\n]*)", raw)
        name = action.group(1).lower() if action else b""
        aid_line = b"ActionID: " + (aid.group(1) if aid else b"") + b"\r\n"
        if name == b"queuestatus":
            conn.sendall(b"Response: Success\r\n" + aid_line + b"EventList: start\r\nMessage: Queue status will follow"
                         b"\r\n\r\nEvent: QueueStatusComplete\r\n" + aid_line + b"EventList: Complete\r\nListItems: 0"
                         b"\r\n\r\n")
        elif name == b"coreshowchannels":
            conn.sendall(b"Response: Success\r\n" + aid_line + b"EventList: start\r\nMessage: Channels will follow"
                         b"\r\n\r\nEvent: CoreShowChannelsComplete\r\n" + aid_line + b"EventList: Complete\r\n"
                         b"ListItems: 0\r\n\r\n")
        elif name == b"ping":
            conn.sendall(b"Response: Success\r\n" + aid_line + b"Ping: Pong\r\n\r\n")
        elif name:
            conn.sendall(b"Response: Success\r\n" + aid_line + b"\r\n")
    return buf


def _fake_asterisk(payload: bytes, port_queue: Any, started: Any, go: Any) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port_queue.put(srv.getsockname()[1])
    conn, _ = srv.accept()
    conn.sendall(BANNER)
    buf = b""
    logged_in = False
    while not logged_in:  # MD5 login as ccserver does it: Challenge, then Login with the key (accepted)
        chunk = conn.recv(65536)
        if not chunk:
            return
        buf += chunk
        while b"\r\n\r\n" in buf and not logged_in:
            raw, buf = buf.split(b"\r\n\r\n", 1)
            m = re.search(rb"ActionID: ([^\r\n]*)", raw)
            aid = m.group(1) if m else b""
            if re.search(rb"(?im)^Action: *Challenge", raw):
                conn.sendall(b"Response: Success\r\nActionID: " + aid + b"\r\nChallenge: 162971476\r\n\r\n")
            else:
                conn.sendall(b"Response: Success\r\nActionID: " + aid + b"\r\nMessage: Authentication accepted"
                             b"\r\n\r\n")
                logged_in = True
    go.get(timeout=120)  # the whole server is up (its banner printed): stream now
    started.put(time.perf_counter())
    conn.sendall(payload)
    conn.settimeout(120)
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf = _answer_actions(conn, buf + chunk)
    except OSError:
        pass
    conn.close()
    srv.close()


def _metric(url: str, name: str, conn: http.client.HTTPConnection | None = None) -> float:
    """Every series of ``name`` added up (one server's counter; ``ccserver_events_queued{subscriber}``, all of them).
    Only the family polled: the probe costs the server little (a full scrape renders every metric). ``conn``: a
    kept-alive connection (the finish-line poll), so no poll costs the server an accept and a close as well."""
    path = f"/metrics?name[]={name}"
    if conn is not None:
        conn.request("GET", path)
        text = conn.getresponse().read().decode()
    else:
        with urllib.request.urlopen(f"{url}{path}", timeout=5) as reply:  # noqa: S310 - loopback
            text = reply.read().decode()
    return sum(float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", text, re.M))


def _histogram(url: str, name: str) -> dict[str, int]:
    """A histogram's cumulative buckets (``le`` → count) from ``/metrics``."""
    with urllib.request.urlopen(f"{url}/metrics?name[]={name}", timeout=5) as reply:  # noqa: S310 - loopback
        text = reply.read().decode()
    line = re.compile(rf'^{re.escape(name)}_bucket{{le="([^"]+)"}} (\S+)$', re.M)
    return {m.group(1): int(float(m.group(2))) for m in line.finditer(text)}


def _thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each of the server's threads by name, summed over threads of one name
    (``ccserver-sql_3`` → ``ccserver-sql``): where the stream's CPU went, beside the wall time."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        key = "main" if task.name == str(pid) else re.sub(r"_\d+$", "", name)
        out[key] = out.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def _attach_profiler(pid: int) -> subprocess.Popen[bytes] | None:
    """``BENCH_AMI_PYSPY=/tmp/ami.raw``: py-spy samples the started server (every thread, raw stacks) from
    before the stream to its exit, so start-up is not in the profile (the idle tail after the stream is)."""
    out = os.environ.get("BENCH_AMI_PYSPY")
    if not out:
        return None
    rate = os.environ.get("BENCH_AMI_PYSPY_RATE", "250")
    # --nonblocking: py-spy reads the stacks without stopping the server each sample (which slowed it several-fold)
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--rate", rate, "--threads", "--nonblocking",
                            "--format", "raw", "--output", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches (a bench switch, not a measured figure)
    return spy


def _one_ccserver(payload: bytes, messages: int, workdir: Path) -> dict[str, Any]:
    import sqlalchemy

    schema = f"bench_{os.getpid()}_{int(time.time() * 1000) % 100000}"
    engine = sqlalchemy.create_engine(TEST_DATABASE_URL)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"create schema {schema}"))
    db_url = f"{TEST_DATABASE_URL}?options=-csearch_path%3D{schema}"
    ctx = mp.get_context("spawn")
    ports, started, go = ctx.Queue(), ctx.Queue(), ctx.Queue()
    fake = ctx.Process(target=_fake_asterisk, args=(payload, ports, started, go))
    fake.start()
    port = ports.get(timeout=30)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCSERVER_")}
    env.update({"CCSERVER_SERVER_DATA_DIR": str(workdir), "CCSERVER_DATABASE_URL": db_url,
                "CCSERVER_REDIS_URL": TEST_REDIS_URL, "CCSERVER_HTTP_LISTEN": "127.0.0.1:0",
                "CCSERVER_AGI_LISTEN": "127.0.0.1:0", "CCSERVER_WS_LISTEN": "127.0.0.1:0",
                "CCSERVER_HTTP_METRICS_PUBLIC": "true", "CCSERVER_SERVER_LOG_LEVEL": "WARNING",
                "CCSERVER_AMI_HOST": "127.0.0.1", "CCSERVER_AMI_PORT": str(port), "CCSERVER_AMI_USERNAME": "cc",
                "CCSERVER_AMI_SECRET": "x", "CCSERVER_AMI_PING_INTERVAL": "3600", "PYTHONUNBUFFERED": "1"})
    subprocess.run([sys.executable, "-m", "ccserver", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    server = subprocess.Popen([sys.executable, "-m", "ccserver", "run"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    spy = None
    try:
        url = ""
        deadline = time.monotonic() + 60
        while not url and time.monotonic() < deadline:
            line = server.stdout.readline() if server.stdout else ""
            if m := re.search(r"web:\s+(http://\S+?)/ ", line):
                url = m.group(1)
        spy = _attach_profiler(server.pid)
        cpu0 = _thread_cpu(server.pid)
        go.put(True)
        t0 = started.get(timeout=60)  # the fake Asterisk starts streaming
        seen = 0.0
        host, port_text = url.removeprefix("http://").rsplit(":", 1)
        probe = http.client.HTTPConnection(host, int(port_text), timeout=5)
        probe.connect()  # before the stream: its accept is not counted
        while seen < messages:
            seen = _metric(url, "ccserver_ami_messages_total", probe)
            if seen < messages:
                time.sleep(0.01)  # the poll interval (the figure errs by at most this)
        t1 = time.perf_counter()
        cpu1 = _thread_cpu(server.pid)
        while _metric(url, "ccserver_events_queued", probe) > 0:
            time.sleep(0.01)
        drained = time.perf_counter()
        probe.close()
        published = _metric(url, "ccserver_events_published_total")
        held = _histogram(url, "ccserver_ami_read_seconds")  # how long each read / slice held the loop
        time.sleep(AFTER)  # what the subscribers still do once every message is read (the hub's queues, SQL)
        cpu2 = _thread_cpu(server.pid)
        cpu = {name: round(cpu1.get(name, 0.0) - cpu0.get(name, 0.0), 3) for name in cpu1}
        after = round(sum(cpu2.values()) - sum(cpu1.values()), 3)
        return {"seconds": t1 - t0, "drained": drained - t0, "messages_counted": seen, "events_published": published,
                "cpu_by_thread": {k: v for k, v in sorted(cpu.items()) if v > 0}, "cpu_after": after,
                "loop_held": held}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        if spy is not None:
            spy.wait(60)
        fake.join(10)
        if fake.is_alive():
            fake.terminate()
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"drop schema {schema} cascade"))
        engine.dispose()


def _one_panoramisk(payload: bytes) -> dict[str, Any]:
    from benchmarks.bench_ami import _fake_asterisk as plain_fake

    ctx = mp.get_context("spawn")
    ports, results = ctx.Queue(), ctx.Queue()
    fake = ctx.Process(target=plain_fake, args=(payload, ports))
    fake.start()
    port = ports.get(timeout=30)
    client = ctx.Process(target=_run_panoramisk, args=(port, results))
    client.start()
    try:
        return results.get(timeout=300)
    finally:
        client.join(30)
        fake.join(30)
        for p in (client, fake):
            if p.is_alive():
                p.terminate()


def run(copies: int = 10, runs: int = 3) -> dict[str, Any]:
    from ccserver.ami.message import parse_stream

    payload = build_payload(copies)
    messages = len(parse_stream(payload)) + 6  # + the Challenge and Login responses, the resync answers (2 + 2)
    report: dict[str, Any] = {"messages": messages, "copies": copies, "runs": runs,
                              "payload_bytes": len(payload)}
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):  # alternate, so a noisy moment hits both
            ours.append(_one_ccserver(payload, messages, Path(tmp) / f"run{i}"))
            theirs.append(_one_panoramisk(payload))
    ours_rates = [messages / s["seconds"] for s in ours]
    theirs_rates = [messages / s["seconds"] for s in theirs]
    report["ccserver_run"] = {"msgs_per_s_median": round(statistics.median(ours_rates)),
                              "seconds": [round(s["seconds"], 3) for s in ours],
                              "drained": [round(s["drained"], 3) for s in ours],
                              "events_published": ours[-1]["events_published"],
                              "cpu_by_thread": [s["cpu_by_thread"] for s in ours],
                              "cpu_after": [s["cpu_after"] for s in ours],
                              "loop_held": [s["loop_held"] for s in ours]}
    report["panoramisk"] = {"msgs_per_s_median": round(statistics.median(theirs_rates)),
                            "seconds": [round(s["seconds"], 3) for s in theirs]}
    report["ratio_median"] = round(report["ccserver_run"]["msgs_per_s_median"] /
                                   report["panoramisk"]["msgs_per_s_median"], 2)
    # The same stream both sides: a ratio of rates is the inverse ratio of seconds.
    report["ratio_drained_median"] = round(statistics.median(s["seconds"] for s in theirs) /
                                           statistics.median(s["drained"] for s in ours), 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.copies, args.runs), indent=2))


if __name__ == "__main__":
    main()
