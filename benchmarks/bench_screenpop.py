"""Screen pop latency and memory: ``AgentCalled`` bytes on the AMI socket → the ``pop`` frame at the agent's
websocket, with 1,000 agents connected and the busy hour streaming as background load; beside a bare
``websockets`` unicast of the same frame (TCP bytes in → the frame out on one of 1,000 sockets) measured in the
same run, under the same load.

Two processes. The *server* is the real pipeline as ``ccserver run`` wires it: the AMI client (Twisted, on the
asyncio reactor) → the state tracker → the call-events hub → the screen-pop lifecycle → the bus → the websocket
listener; the cards come from the card cache (prefetched at ``CallOffered``), the agents' phones from the agent
map. It also runs the bare peer: a plain ``websockets`` server and a raw TCP trigger. The *client* process plays
Asterisk (recorded calls, rewritten per sample: ``ami-inbound-ivr-ringnoanswer-then-answered``; the busy hour
``ami-inbound-load-40-calls`` looped at its recorded pace, ids made unique per loop) and holds the 2 × 1,000
websockets. Both ends of each sample are taken in the client process (``time.perf_counter``): just before the
``AgentCalled`` bytes (or the trigger) are written, and when the frame arrives.

Memory: the server's RSS after the 1,000 agent sockets opened and got their hello, minus before, per agent.

    .venv/bin/python -m benchmarks.bench_screenpop [--agents 1000] [--samples 300]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CALL = "ami-inbound-ivr-ringnoanswer-then-answered"
BUSY = "ami-inbound-load-40-calls"
CALL_ID = "1795416928."
FIRST_EXT = 20000
CARD = {
    "id": 42, "name": "张伟", "kind": "person", "tier": "gold", "score": 71.5, "lifecycle": "customer",
    "reasons": ["service spend ¥12,400 in 24 months: +18.2", "customer for 6.2 years: +6.1"],
    "membership_level": 3, "membership_points": 4200, "language": "zh",
    "consultant": {"name": "王芳", "extension": "8001"}, "advisor": {"name": "李伟", "extension": "8002"},
    "store": "上海沃尔沃", "numbers": ["+8613912345678"],
    "vehicles": [{"brand": "Volvo", "model": "XC60", "plate": "沪A12345", "vin": "LVSHFFAC4HF123456",
                  "purchase_date": "2023-05-01", "mileage_km": 40000, "next_maintenance_due": "2026-12-10",
                  "insurance_expiry": "2027-06-01"}],
    "orders": [{"kind": "service", "amount": 2654.68, "date": "2026-08-05"}] * 5,
    "visits": [{"date": "2026-11-23T00:09:00+00:00", "status": "ready", "description": "空调检修"}] * 5,
    "tickets": [{"id": 3, "kind": "complaint", "status": "new", "severity": "high", "subject": "噪音"}],
    "calls": [{"date": "2026-11-20", "outcome": "answered", "disposition": "resolved", "queue": "vip"}] * 5,
}


def _say(text: str) -> None:
    if os.environ.get("BENCH_DEBUG"):
        print(f"[{os.getpid()}] {text}", file=sys.stderr, flush=True)


def _rss_kib() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _wire(msg: Any) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in msg.items()) + "\r\n").encode()


# -- the server process ---------------------------------------------------------------------------------------
def _server(agents: int, ami_port: Any, to_client: Any, from_client: Any, redis_url: str | None = None) -> None:
    from ccserver.server import install_reactor

    reactor = install_reactor()
    from websockets.asyncio.server import broadcast, serve

    from ccserver.ami.client import AMIServerConfig
    from ccserver.ami.manager import AMIManager
    from ccserver.events import EventHub
    from ccserver.state.tracker import EVENTS, StateTracker
    from screenpop.agents_map import AgentDirectory, AgentRef
    from screenpop.bus import MemoryBus
    from screenpop.cards import CardCache
    from screenpop.lifecycle import ScreenPop
    from screenpop.service import ScreenPopService
    from screenpop.ws_server import WsServer
    from screenpop.ws_tickets import MemoryTickets

    mapping = {("default", f"Local/{FIRST_EXT + i}@agent-phones/n"): AgentRef(i + 1, f"agent{FIRST_EXT + i}",
                                                                               str(FIRST_EXT + i))
               for i in range(agents)}

    async def load_map() -> dict[Any, AgentRef]:
        return dict(mapping)

    async def load_card(_cid: int) -> dict[str, Any]:
        return CARD

    async def identify(_raw: str) -> tuple[int | None, list[tuple[str, str]]]:
        return 42, []

    async def main() -> None:
        hub = EventHub()
        tracker = StateTracker(publish=hub.publish)
        bus: Any = MemoryBus()
        if redis_url:  # as several nodes run it: the Lua script numbers and publishes, the subscription delivers
            import redis.asyncio as aioredis

            from screenpop.bus import RedisBus

            # 1,000 sockets opening at once each read their hello: they wait for one of 50 connections.
            client = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(redis_url,
                                                                                            max_connections=50))
            await client.flushdb()
            bus = RedisBus(client)
        directory = AgentDirectory(load_map, now=time.time)
        pop = ScreenPop(bus, directory, CardCache(load_card, identify, now=time.time), leads=lambda _s: True)
        ws = WsServer(MemoryTickets(time.time, lifetime=600), host="127.0.0.1", port=0)
        service = ScreenPopService(ws, bus, pop, hub)
        hub.start()
        await service.start()
        # The bare peer: a plain websockets server and a raw TCP trigger ("<k>\n" → the frame to socket k).
        bare: dict[int, Any] = {}
        frame_text: list[str] = ['{"seq":1,"type":"pop"}']

        async def bare_handler(conn: Any) -> None:
            k = int(conn.request.path.rsplit("/", 1)[1])
            bare[k] = conn
            await conn.send("hi")
            async for _m in conn:
                pass

        bare_server = await serve(bare_handler, "127.0.0.1", 0, compression=None)

        class Trigger(asyncio.Protocol):
            buf = b""

            def data_received(self, data: bytes) -> None:
                self.buf += data
                while b"\n" in self.buf:
                    line, self.buf = self.buf.split(b"\n", 1)
                    if line.startswith(b"F"):
                        frame_text[0] = line[1:].decode()
                    else:
                        broadcast((bare[int(line)],), frame_text[0])

        loop = asyncio.get_running_loop()
        trigger = await loop.create_server(Trigger, "127.0.0.1", 0)
        ami = AMIManager({"default": AMIServerConfig(host="127.0.0.1", port=ami_port, username="cc", secret="x",
                                                     ping_interval=3600)}, reactor=reactor)
        for event in EVENTS:
            ami.on(event, lambda msg: tracker.handle(msg, msg.arrival))
        ami.start()
        _say("server: AMI started")
        tickets = []
        for i in range(agents):
            ticket, _ = await ws.tickets.issue(i + 1, f"agent{FIRST_EXT + i}", "agent", "agent", "bench")
            tickets.append(ws.url_for(ws.kinds["agent"], ticket))
        gc.collect()
        rss_before = _rss_kib()
        to_client.put({"agent_urls": tickets, "bare_url": f"ws://127.0.0.1:{bare_server.sockets[0].getsockname()[1]}",
                       "trigger_port": trigger.sockets[0].getsockname()[1]})
        await loop.run_in_executor(None, from_client.get)  # the agents' sockets are open and got their hello
        gc.collect()
        rss_agents = _rss_kib()
        to_client.put({"rss_before_kib": rss_before, "rss_after_kib": rss_agents,
                       "sockets": len(bus.local), "connections": ws.connections})
        await loop.run_in_executor(None, from_client.get)  # done
        reactor.stop()

    def started() -> None:
        task = asyncio.ensure_future(main())
        task.add_done_callback(lambda t: t.cancelled() or t.exception() is None
                               or print(f"bench server failed: {t.exception()!r}", file=sys.stderr, flush=True))

    reactor.callLater(0, started)
    profile_to = os.environ.get("BENCH_PROFILE")  # a file: the server process's cProfile stats (where time goes)
    if profile_to:
        import cProfile

        cProfile.runctx("reactor.run()", globals(), {"reactor": reactor}, profile_to)
    else:
        reactor.run()


# -- the client process ---------------------------------------------------------------------------------------
def _call_parts(k: int, ext_a: int, ext_b: int) -> tuple[bytes, bytes, bytes]:
    """One recorded call, ids unique to sample ``k``, rung at ``ext_a`` (no answer) then answered at ``ext_b``:
    the bytes before the first AgentCalled, the AgentCalled, and the rest."""
    from tests.replay.transcripts import iter_transcript_messages

    before, called, after = b"", b"", b""
    for msg in iter_transcript_messages(CALL):
        if msg.get("Event") in (None, "FullyBooted") or msg.get("ActionID"):
            continue
        raw = _wire(msg).decode()
        raw = raw.replace(CALL_ID, f"{1795416928 + 10_000 * (k + 1)}.")
        raw = raw.replace("8009@agent-phones", f"{ext_a}@agent-phones").replace("8003@agent-phones",
                                                                                 f"{ext_b}@agent-phones")
        data = raw.encode()
        if not called and msg.get("Event") == "AgentCalled":
            called = data
        elif called:
            after += data
        else:
            before += data
    return before, called, after


def _busy_loop() -> list[tuple[float, str]]:
    from tests.test_state_support import timed_messages

    msgs = timed_messages(BUSY)
    start = msgs[0][1]
    return [(arrival - start, _wire(m).decode()) for m, arrival in msgs
            if m.get("Event") not in (None, "FullyBooted") and not m.get("ActionID")]


def _client(agents: int, samples: int, ami_port_q: Any, from_server: Any, to_server: Any, results: Any) -> None:
    asyncio.run(_client_main(agents, samples, ami_port_q, from_server, to_server, results))


async def _client_main(agents: int, samples: int, ami_port_q: Any, from_server: Any, to_server: Any,
                       results: Any) -> None:
    import websockets

    from tests.replay.ami_peer import caller_numbers, rewrite_copy

    loop = asyncio.get_running_loop()
    ami_conn: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = loop.create_future()

    async def on_ami(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/13.0.0\r\n")
        buf = b""
        while True:  # answer every action like an idle Asterisk (Login, Challenge, resync lists, Ping)
            chunk = await reader.read(65536)
            if not chunk:
                return
            buf += chunk
            while b"\r\n\r\n" in buf:
                raw, buf = buf.split(b"\r\n\r\n", 1)
                head = dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line)
                aid = head.get("ActionID", "")
                action = head.get("Action", "").lower()
                if action == "challenge":
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\nChallenge: 1\r\n\r\n".encode())
                elif action == "login":
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: Authentication accepted\r\n\r\n"
                                 f"Event: FullyBooted\r\nUptime: 100\r\nStatus: Fully Booted\r\n\r\n".encode())
                    if not ami_conn.done():
                        ami_conn.set_result((reader, writer))
                elif action in ("queuestatus", "coreshowchannels"):
                    done = "QueueStatusComplete" if action == "queuestatus" else "CoreShowChannelsComplete"
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n\r\nEvent: {done}\r\n"
                                 f"ActionID: {aid}\r\nEventList: Complete\r\nListItems: 0\r\n\r\n".encode())
                else:
                    writer.write(f"Response: Success\r\nActionID: {aid}\r\n\r\n".encode())

    ami_server = await asyncio.start_server(on_ami, "127.0.0.1", 0)
    ami_port_q.put(ami_server.sockets[0].getsockname()[1])
    setup = await loop.run_in_executor(None, from_server.get)
    _say("client: setup received")
    _reader, writer = await asyncio.wait_for(ami_conn, 60)
    _say("client: AMI resynced")

    waiting: dict[int, asyncio.Future[float]] = {}
    frames: dict[int, str] = {}

    async def agent(k: int, url: str) -> Any:
        ws = await websockets.connect(url, compression=None, max_size=2**20)
        await ws.recv()  # hello

        async def read() -> None:
            async for message in ws:
                if '"type":"pop"' in message:
                    got = time.perf_counter()
                    frames.setdefault(k, message)  # type: ignore[arg-type]
                    future = waiting.get(k)
                    if future is not None and not future.done():
                        future.set_result(got)

        asyncio.ensure_future(read())
        return ws

    sockets = []
    for start in range(0, agents, 100):
        sockets += await asyncio.gather(*(agent(k, setup["agent_urls"][k])
                                          for k in range(start, min(agents, start + 100))))
    _say("client: agents connected")
    to_server.put("connected")
    memory = await loop.run_in_executor(None, from_server.get)

    bare_waiting: dict[int, asyncio.Future[float]] = {}

    async def bare(k: int) -> Any:
        ws = await websockets.connect(f"{setup['bare_url']}/{k}", compression=None, max_size=2**20)
        await ws.recv()

        async def read() -> None:
            async for _message in ws:
                got = time.perf_counter()
                future = bare_waiting.get(k)
                if future is not None and not future.done():
                    future.set_result(got)

        asyncio.ensure_future(read())
        return ws

    bare_sockets = []
    for start in range(0, agents, 100):
        bare_sockets += await asyncio.gather(*(bare(k) for k in range(start, min(agents, start + 100))))
    _treader, trigger = await asyncio.open_connection("127.0.0.1", setup["trigger_port"])

    # Background: the busy hour, looped at its recorded pace (each loop's ids and numbers made unique).
    busy = _busy_loop()
    numbers = caller_numbers(text for _t, text in busy)
    background_messages = 0

    async def background() -> None:
        nonlocal background_messages
        loop_no = 1
        while True:
            began = time.perf_counter()
            for offset, text in busy:
                delay = began + offset - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(rewrite_copy(text, loop_no, numbers).encode())
                background_messages += 1
            loop_no += 1

    _say("client: bare connected")
    bg = asyncio.ensure_future(background())
    await asyncio.sleep(2.0)  # let the background settle in
    pop_ms: list[float] = []
    bare_ms: list[float] = []
    for i in range(samples):
        a = (i * 7) % agents
        b = (a + 1) % agents
        before, called, after = _call_parts(i, FIRST_EXT + a, FIRST_EXT + b)
        writer.write(before)  # the caller joins the queue: CallOffered, the card prefetched
        await asyncio.sleep(0.02)
        waiting[a] = loop.create_future()
        t0 = time.perf_counter()
        writer.write(called)
        t1 = await asyncio.wait_for(waiting[a], 10)
        pop_ms.append((t1 - t0) * 1000)
        writer.write(after)
        if i == 0:
            trigger.write(b"F" + frames[a].encode() + b"\n")  # the bare peer sends this very frame
        await asyncio.sleep(0.01)
        bare_waiting[a] = loop.create_future()
        t0 = time.perf_counter()
        trigger.write(f"{a}\n".encode())
        t1 = await asyncio.wait_for(bare_waiting[a], 10)
        bare_ms.append((t1 - t0) * 1000)
        await asyncio.sleep(0.01)
    bg.cancel()
    for ws in sockets + bare_sockets:
        await ws.close()
    to_server.put("done")

    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    results.put({
        "agents": agents, "samples": samples, "background_messages": background_messages,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "frame_bytes": len(frames[(0 * 7) % agents].encode()),
        "pop": {"p50_ms": round(statistics.median(pop_ms), 3), "p99_ms": round(pct(pop_ms, 99), 3),
                "max_ms": round(max(pop_ms), 3)},
        "bare": {"p50_ms": round(statistics.median(bare_ms), 3), "p99_ms": round(pct(bare_ms, 99), 3),
                 "max_ms": round(max(bare_ms), 3)},
        "memory": {**memory, "per_agent_kib": round((memory["rss_after_kib"] - memory["rss_before_kib"]) / agents,
                                                    2)},
    })


def run(agents: int = 1000, samples: int = 300, redis_url: str | None = None) -> dict[str, Any]:
    """``redis_url``: the frames go through Redis (``RedisBus``, that database flushed) as with several nodes."""
    ctx = mp.get_context("spawn")
    ami_port_q, to_client, to_server, results = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Queue()
    client = ctx.Process(target=_client, args=(agents, samples, ami_port_q, to_client, to_server, results))
    client.start()
    ami_port = ami_port_q.get(timeout=60)
    server = ctx.Process(target=_server, args=(agents, ami_port, to_client, to_server, redis_url))
    server.start()
    try:
        out: dict[str, Any] = results.get(timeout=60 + samples * 2)
    finally:
        client.join(30)
        server.join(30)
        for proc in (client, server):
            if proc.is_alive():
                proc.terminate()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--redis", metavar="URL", help="frames through Redis (RedisBus); the database is flushed")
    args = parser.parse_args()
    print(json.dumps(run(args.agents, args.samples, args.redis), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
