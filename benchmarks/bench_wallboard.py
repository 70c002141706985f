"""Wallboard fan-out: one update to 1,000 and 5,000 connected websocket clients.

The server (this process) runs a plain ``websockets`` server; the clients are one separate process holding N
connections and counting what arrives. Per update, the server's CPU (``time.process_time``, from the moment the
update is due until every connection's send buffer has drained) is divided by N, for three ways of sending it,
measured in the same run on the same connections:

- **floor** — ``websockets.broadcast`` of a frame encoded beforehand (what the library itself costs per client);
- **ccserver** — the wallboard publisher: builds the snapshot (ccserver/wallboard/snapshot.py on a board of
  16 queues, 60 agents, 40 callers), encodes it once, hands the one :class:`Frame` to its subscriber, the
  :class:`ccserver.wallboard.fanout.SharedFrameFanout`, which builds the websocket frame once too and writes the
  same bytes to every connection;
- **per-client encoding** — the same snapshot JSON-encoded once per client (what one encoding per update saves).

Target: ccserver no slower than the floor per client, and one encoding per update whatever the number of clients
(``publisher.encodings`` is checked).

    .venv/bin/python benchmarks/bench_wallboard.py [--clients 1000 5000] [--updates 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ccserver.wallboard.fanout import SharedFrameFanout  # noqa: E402
from ccserver.wallboard.publisher import WallboardPublisher, encode_text  # noqa: E402
from ccserver.wallboard.snapshot import build_snapshot  # noqa: E402

TIERS = ("diamond", "gold", "silver", "bronze", "prospect")
STATES = ("idle", "talking", "ringing", "wrapup", "paused")


def board_inputs(now: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A busy contact centre's board: 16 queues, 40 callers waiting, 60 agents."""
    queues = []
    for q in range(16):
        callers = [{"uniqueid": f"1795.{q}{c}", "tier": TIERS[(q + c) % 5], "wait": 5.0 + 7 * c,
                    "caller_name": f"客户 {q}-{c}", "priority": c % 3} for c in range((q * 5) % 6)]
        queues.append({"queue": f"store{q // 4}-line{q % 4}", "server": "default", "callers": callers,
                       "longest_wait": max((c["wait"] for c in callers), default=0.0), "logged_in": 4,
                       "available": q % 3, "sl_threshold": 20.0,
                       "today": {"offered": 100 + q, "answered": 90 + q, "abandoned": 10, "service_level": 70.0 + q,
                                 "asa": 12.5}})
    agents = [{"name": f"坐席 {a:03d}", "interface": f"PJSIP/{8000 + a}", "state": STATES[a % 5],
               "in_state": 10.0 * a, "paused_reason": "lunch" if a % 5 == 4 else "", "today": {"handled": a % 17}}
              for a in range(60)]
    return queues, agents


# -- the clients' process -----------------------------------------------------------------------------------------
async def clients_main(port: int, n: int) -> None:
    from websockets.asyncio.client import connect

    received = 0
    bad = 0

    async def one() -> None:
        nonlocal received, bad
        async with connect(f"ws://127.0.0.1:{port}/", max_size=2**22, compression=None, open_timeout=60) as ws:
            async for message in ws:
                received += 1
                if not isinstance(message, str) or not message.startswith('{"version":'):
                    bad += 1

    tasks = []
    for i in range(n):
        tasks.append(asyncio.ensure_future(one()))
        if i % 200 == 199:
            await asyncio.sleep(0.05)  # the listen backlog
    while True:
        await asyncio.sleep(0.2)
        if all(t.done() for t in tasks):
            break
    print(json.dumps({"received": received, "bad": bad,
                      "failed": sum(1 for t in tasks if t.exception() is not None)}), flush=True)


# -- the server ---------------------------------------------------------------------------------------------------
async def drained(connections: list[Any]) -> None:
    while any(c.transport.get_write_buffer_size() for c in connections):
        await asyncio.sleep(0)


async def measure(n: int, updates: int) -> dict[str, Any]:
    from websockets import broadcast
    from websockets.asyncio.server import serve

    from ccserver.clock import LoopClock

    connected: list[Any] = []
    all_in = asyncio.Event()

    async def handler(ws: Any) -> None:
        connected.append(ws)
        if len(connected) == n:
            all_in.set()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None, backlog=1024, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        client = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--client", str(port), str(n), cwd=ROOT, stdout=subprocess.PIPE)
        await asyncio.wait_for(all_in.wait(), 120)
        await asyncio.sleep(0.5)
        now = time.time()
        queues, agents = board_inputs(now)
        sample = build_snapshot(queues, agents, [], now=now, target=80.0, vip_tiers=("diamond", "gold"))
        sample["charts"] = {"service_level": "<svg>" + "x" * 6000 + "</svg>", "abandon_rate": "<svg>" + "y" * 6000
                            + "</svg>"}

        async def build(version: int) -> dict[str, Any]:
            snap = build_snapshot(queues, agents, [], now=time.time(), target=80.0, vip_tiers=("diamond", "gold"),
                                  version=version)
            snap["charts"] = sample["charts"]
            return snap

        publisher = WallboardPublisher(build, LoopClock(), max_rate=1000.0)
        fanout = SharedFrameFanout()
        publisher.subscribe(lambda frame: fanout.send(connected, frame))
        pre = encode_text(sample)

        async def floor() -> None:
            broadcast(connected, pre)

        async def ours() -> None:
            await publisher.flush()

        async def per_client() -> None:
            for ws in connected:
                broadcast([ws], encode_text(sample))

        variants = {"floor": floor, "ccserver": ours, "per_client": per_client}
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        for _round in range(updates):
            for name, send in variants.items():  # interleaved: the machine's noise falls on all three alike
                await asyncio.sleep(0.02)
                t0 = time.process_time()
                await send()
                await drained(connected)
                cpu[name].append(time.process_time() - t0)
        for ws in connected:
            await ws.close()
        out, _ = await asyncio.wait_for(client.communicate(), 120)
        got = json.loads(out.decode().strip().splitlines()[-1])
    sent = 3 * updates * n
    result: dict[str, Any] = {"clients": n, "updates": updates, "frame_bytes": len(pre.encode()),
                              "received": got["received"], "sent": sent, "client_failures": got["failed"],
                              "bad_messages": got["bad"],
                              "encodings": publisher.encodings}
    for name, samples in cpu.items():
        med = statistics.median(samples)
        result[name] = {"cpu_ms_per_update": round(med * 1000, 2),
                        "cpu_us_per_client": round(med * 1e6 / n, 2)}
    result["ccserver_vs_floor"] = round(result["ccserver"]["cpu_us_per_client"]
                                        / result["floor"]["cpu_us_per_client"], 3)
    return result


def run(clients: tuple[int, ...] = (1000, 5000), updates: int = 20) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": []}
    for n in clients:
        r = asyncio.run(measure(n, updates))
        assert r["encodings"] == updates, r  # one encoding per update, whatever the number of clients
        out["runs"].append(r)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        asyncio.run(clients_main(int(sys.argv[2]), int(sys.argv[3])))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--updates", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(run(tuple(args.clients), args.updates), indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
