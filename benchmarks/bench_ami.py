"""AMI end to end on loopback TCP: ccserver's client vs panoramisk, fed the same busy-hour bytes.

A fake Asterisk (plain blocking sockets, its own process, identical for both clients) accepts one
connection, sends the banner, answers the Login, then streams the recv bytes of
``ami-inbound-load-40-calls.jsonl`` multiplied (unsolicited events repeated with rewritten ids) and a
final ``Event: BenchDone``. Each client runs in its own process with handlers for the events a contact
centre subscribes to; we time from connect to the handler of BenchDone and report messages/s.

    .venv/bin/python benchmarks/bench_ami.py [--copies 4] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SUBSCRIBED = [
    "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled", "AgentConnect", "AgentComplete",
    "AgentRingNoAnswer", "AgentDump", "QueueMemberStatus", "QueueMemberPause", "QueueMemberAdded",
    "QueueMemberRemoved", "Hangup", "Newchannel", "BridgeEnter", "BridgeLeave", "OriginateResponse",
    "FullyBooted",
]
BANNER = b"Asterisk Call Manager/13.0.0\r\n"
DONE = b"Event: BenchDone\r\nPrivilege: system,all\r\n\r\n"


def build_payload(copies: int) -> bytes:
    from tests.replay.ami_peer import multiply_stream
    from tests.replay.transcripts import recv_sessions

    data = recv_sessions("ami-inbound-load-40-calls")[0]
    data = multiply_stream(data, copies) if copies > 1 else data
    assert data.startswith(BANNER)
    return data[len(BANNER):] + DONE


# -- the fake Asterisk ---------------------------------------------------------------------------------
def _fake_asterisk(payload: bytes, port_queue: Any) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port_queue.put(srv.getsockname()[1])
    conn, _ = srv.accept()
    conn.sendall(BANNER)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return
        buf += chunk
    m = re.search(rb"ActionID: ([^\r\n]*)", buf)
    aid = m.group(1) if m else b""
    conn.sendall(b"Response: Success\r\nActionID: " + aid + b"\r\nMessage: Authentication accepted\r\n\r\n" + payload)
    conn.settimeout(60)
    try:
        while conn.recv(65536):  # drain pings/logoff until the client closes
            pass
    except OSError:
        pass
    conn.close()
    srv.close()


# -- clients (each runs in its own process) -------------------------------------------------------------
def _run_ccserver(port: int, result_queue: Any) -> None:
    from twisted.internet import asyncioreactor

    asyncioreactor.install()
    from twisted.internet import reactor

    from ccserver.ami.client import AMIClient, AMIServerConfig

    counts = {"handled": 0}
    client = AMIClient(AMIServerConfig(port=port, auth="plain", secret="x", ping_interval=3600),
                       reactor=reactor, server="bench")

    def handle(msg: Any) -> None:
        counts["handled"] += 1

    def done(msg: Any) -> None:
        t1 = time.perf_counter()
        result_queue.put({"seconds": t1 - t0, "cpu": time.process_time() - c0, "handled": counts["handled"],
                          "messages": client.metrics.messages.value(server="bench")})
        client.stop()
        reactor.callLater(0, reactor.stop)

    for name in SUBSCRIBED:
        client.on(name, handle)
    client.on("BenchDone", done)
    t0 = time.perf_counter()
    c0 = time.process_time()
    client.start()
    reactor.run()


def _run_panoramisk(port: int, result_queue: Any) -> None:
    import asyncio
    import logging

    from panoramisk import Manager

    logging.getLogger("panoramisk").setLevel(logging.CRITICAL)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    counts = {"handled": 0}
    manager = Manager(loop=loop, host="127.0.0.1", port=port, username="ccserver", secret="x",
                      ping_delay=3600, ping_interval=3600)

    def handle(mgr: Any, msg: Any) -> None:
        counts["handled"] += 1

    def done(mgr: Any, msg: Any) -> None:
        t1 = time.perf_counter()
        result_queue.put({"seconds": t1 - t0, "cpu": time.process_time() - c0, "handled": counts["handled"]})
        manager.close()
        loop.call_soon(loop.stop)

    for name in SUBSCRIBED:
        manager.register_event(name, handle)
    manager.register_event("BenchDone", done)
    t0 = time.perf_counter()
    c0 = time.process_time()
    manager.connect()
    loop.run_forever()


def _one(kind: str, payload: bytes) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ports, results = ctx.Queue(), ctx.Queue()
    server = ctx.Process(target=_fake_asterisk, args=(payload, ports))
    server.start()
    port = ports.get(timeout=30)
    target = _run_ccserver if kind == "ccserver" else _run_panoramisk
    client = ctx.Process(target=target, args=(port, results))
    client.start()
    try:
        out = results.get(timeout=300)
    finally:
        client.join(30)
        server.join(30)
        for p in (client, server):
            if p.is_alive():
                p.terminate()
    return out


def run(copies: int = 4, runs: int = 3) -> dict[str, Any]:
    from ccserver.ami.message import parse_stream

    payload = build_payload(copies)
    messages = len(parse_stream(payload)) + 1  # + the Login response
    wanted = set(SUBSCRIBED)
    handled_expected = sum(1 for m in parse_stream(payload) if m.event in wanted)
    report: dict[str, Any] = {"payload_bytes": len(payload), "messages": messages, "copies": copies, "runs": runs,
                              "subscribed_messages": handled_expected}
    for kind in ("ccserver", "panoramisk"):
        samples = [_one(kind, payload) for _ in range(runs)]
        for s in samples:
            assert s["handled"] == handled_expected, (kind, s["handled"], handled_expected)
        rates = [messages / s["seconds"] for s in samples]
        report[kind] = {
            "msgs_per_s_median": round(statistics.median(rates)),
            "msgs_per_s_best": round(max(rates)),
            "cpu_s_median": round(statistics.median(s["cpu"] for s in samples), 4),
            "seconds": [round(s["seconds"], 4) for s in samples],
        }
    report["ratio_median"] = round(report["ccserver"]["msgs_per_s_median"] /
                                   report["panoramisk"]["msgs_per_s_median"], 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.copies, args.runs), indent=2))


if __name__ == "__main__":
    main()
