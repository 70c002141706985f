"""Screen pop latency and memory: ``AgentCalled`` bytes on the AMI socket → the ``pop`` frame at the agent's
websocket, with 1,000 agents connected and the busy hour streaming as background load; beside a bare
``websockets`` unicast of the same frame (TCP bytes in → the frame out on one of 1,000 sockets) measured in the
same run, under the same load.

Processes:

- the *server*: the real pipeline as ``ccserver run`` wires it: the AMI client (Twisted, on the asyncio
  reactor) → the state tracker → the call-events hub → the screen-pop lifecycle → the bus → the websocket
  listener; the cards come from the card cache (prefetched at ``CallOffered``), the agents' phones from the agent
  map. It also runs the bare peer: a plain ``websockets`` server and a raw TCP trigger.
- the *probe*: plays Asterisk (recorded calls, rewritten per sample: ``ami-inbound-ivr-ringnoanswer-then-
  answered``; the busy hour ``ami-inbound-load-40-calls`` looped at its recorded pace, ids made unique per loop
  and its agents' phones spread over the crowd's agents, so the background reaches open sockets) and holds only
  the ``--probes`` agents' sockets (and as many bare ones) that the samples ring: nothing else runs on its loop.
- the *crowd* (``--crowd`` processes): the other agents' sockets (and bare sockets), reading every frame sent to
  them. ``--crowd 0`` puts every socket in the probe process, as the first version of this benchmark did.

Every sample is stamped four times with ``time.perf_counter()`` (CLOCK_MONOTONIC: one clock for every process
on the machine): the probe writes the ``AgentCalled`` bytes (t0); the server's AMI protocol receives them (t1);
the server hands the ``pop`` frame to the socket's transport (t2, just before the write); the probe reads the
frame (t3). So the end-to-end figure (t3 − t0) splits into the server's own path (t2 − t1) and the time outside
it: in (t1 − t0: the kernel, and the server's loop finishing what it was doing — background AMI bursts — or not
being scheduled) and out (t3 − t2: the kernel, the scheduler, the probe's loop). The server also takes its
thread's CPU time at t1 and t2: the path's wall time minus that CPU time is time the server was not running
(the machine's other processes had the cores). The bare unicast is stamped the same way (trigger written,
read, frame written, frame read). The server also records its garbage-collector pauses during the samples.

Memory: the server's RSS after the 1,000 agent sockets opened and got their hello, minus before, per agent.

    .venv/bin/python -m benchmarks.bench_screenpop [--agents 1000] [--samples 300] [--probes 50] [--crowd 2]

``BENCH_PROFILE=FILE``: the server process's cProfile stats while sampling; ``BENCH_TRACE=1``: the server's path
stage by stage (AMI in → the AgentRinging event on the hub → the lifecycle takes it → the pop posted → out).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import re
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
BUSY_AGENTS = re.compile(r"Local/80([1-2]\d)@agent-phones")  # the busy hour's agents: 8010 … 8029
AGENT_CALLED_ID = re.compile(rb"Event: AgentCalled\r\n(?:[^\r\n]*\r\n)*?Uniqueid: ([0-9.]+)\r\n")
POP_ID = re.compile(r'"uniqueid":"([0-9.]+)"')
CARD = {
    "id": 42, "name": "张伟", "kind": "person", "tier": "gold", "score": 71.5, "lifecycle": "customer",
    "reasons": ["service spend ¥12,400 in 24 months: +18.2", "customer for 6.2 years: +6.1"],
    "membership_level": 3, "membership_points": 4200, "language": "zh",
    "consultant": {"name": "王芳", "extension": "8001"}, "advisor": {"name": "李伟", "extension": "8002"},
    "store": "上海沃尔沃", "numbers": ["+8613912345678"], "birthday": "1985-12-10",
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


class Stamps:
    """The server's side of each sample (perf_counter): AMI bytes in / pop out by the call's uniqueid, trigger in /
    bare frame out by sample number; and the garbage collector's pauses while sampling."""

    def __init__(self) -> None:
        self.ami_in: dict[str, float] = {}
        self.pop_out: dict[str, float] = {}
        self.cpu_in: dict[str, float] = {}  # the server thread's CPU time at ami_in / pop_out
        self.cpu_out: dict[str, float] = {}
        self.trigger_in: dict[int, float] = {}
        self.bare_out: dict[int, float] = {}
        self.gc_ms: list[tuple[int, float]] = []  # (generation, pause)
        self.stages: dict[str, dict[str, tuple[float, float]]] = {}  # BENCH_TRACE: stage -> uniqueid -> (wall, cpu)
        self._gc_start = 0.0
        self.recording = False

    def install(self) -> None:
        """Wrap the AMI protocol's read and the websocket write (only a substring test on the hot path)."""
        from ccserver.ami import protocol as ami_protocol
        from screenpop import ws_server

        read = ami_protocol.AMIProtocol.dataReceived
        ami_in, pop_out, cpu_in, cpu_out = self.ami_in, self.pop_out, self.cpu_in, self.cpu_out
        clock, cpu_clock = time.perf_counter, time.thread_time

        def data_received(proto: Any, data: bytes) -> None:
            if b"Event: AgentCalled" in data:
                now, cpu = clock(), cpu_clock()
                for m in AGENT_CALLED_ID.finditer(data):
                    ami_in.setdefault(m.group(1).decode(), now)
                    cpu_in.setdefault(m.group(1).decode(), cpu)
            read(proto, data)

        def stamp(text: str) -> None:
            if '"type":"pop"' in text[:40]:  # stamped as the frame is handed to the transport
                now, cpu = clock(), cpu_clock()
                m = POP_ID.search(text)
                if m:
                    pop_out.setdefault(m.group(1), now)
                    cpu_out.setdefault(m.group(1), cpu)

        ami_protocol.AMIProtocol.dataReceived = data_received  # type: ignore[method-assign,assignment]
        if hasattr(ws_server, "write_frames"):  # the frames a turn of the loop queued, written at once
            write_frames = ws_server.write_frames

            def write_stamped(ws: Any, texts: list[str]) -> None:
                for text in texts:
                    stamp(text)
                write_frames(ws, texts)

            ws_server.write_frames = write_stamped
        else:  # one write per frame (websockets' broadcast)
            write = ws_server.broadcast

            def broadcast(targets: Any, text: Any) -> None:
                stamp(text)
                write(targets, text)

            ws_server.broadcast = broadcast  # type: ignore[assignment]
        gc.callbacks.append(self._gc)
        if os.environ.get("BENCH_TRACE"):
            self._trace()

    def _trace(self) -> None:
        """Stamp the stages between (BENCH_TRACE=1), wall and thread CPU time: the AgentRinging event published
        on the hub, the lifecycle taking it, the pop frame posted to the bus."""
        from ccserver.events import AgentRinging, EventHub
        from screenpop.lifecycle import ScreenPop

        published, taken = self.stages.setdefault("published", {}), self.stages.setdefault("taken", {})
        posted = self.stages.setdefault("posted", {})
        clock, cpu_clock = time.perf_counter, time.thread_time
        publish, ringing = EventHub.publish, ScreenPop._ringing

        def hub_publish(hub: Any, event: Any) -> None:
            if type(event) is AgentRinging:
                published.setdefault(event.uniqueid, (clock(), cpu_clock()))
            publish(hub, event)

        async def lifecycle_ringing(pop: Any, event: Any) -> None:
            taken.setdefault(event.uniqueid, (clock(), cpu_clock()))
            post_body = pop.bus.post_body

            def bus_post_body(user_id: int, body: str, kind: str, **kw: Any) -> Any:
                if kind == "pop":
                    posted.setdefault(event.uniqueid, (clock(), cpu_clock()))
                return post_body(user_id, body, kind, **kw)

            pop.bus.post_body = bus_post_body
            try:
                await ringing(pop, event)
            finally:
                del pop.bus.post_body

        EventHub.publish = hub_publish  # type: ignore[method-assign,assignment]
        ScreenPop._ringing = lifecycle_ringing  # type: ignore[method-assign,assignment]

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif self.recording:
            self.gc_ms.append((int(info.get("generation", -1)), (time.perf_counter() - self._gc_start) * 1000))


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

    stamps = Stamps()
    stamps.install()
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
            from ccserver.redis_pool import make_redis_client
            from screenpop.bus import RedisBus

            client = make_redis_client(redis_url)  # as ccserver run makes it
            await client.flushdb()
            bus = RedisBus(client)
        directory = AgentDirectory(load_map, now=time.time)
        pop = ScreenPop(bus, directory, CardCache(load_card, identify, now=time.time), leads=lambda _s: True)
        ws = WsServer(MemoryTickets(time.time, lifetime=600), host="127.0.0.1", port=0)
        service = ScreenPopService(ws, bus, pop, hub)
        hub.start()
        await service.start()
        # The bare peer: a plain websockets server and a raw TCP trigger ("<sample> <k>\n" → the frame to
        # socket k; "F<frame>\n" sets the frame).
        bare: dict[int, Any] = {}
        frame_text: list[str] = ['{"seq":1,"type":"pop"}']

        async def bare_handler(conn: Any) -> None:
            k = int(conn.request.path.rsplit("/", 1)[1])
            bare[k] = conn
            await conn.send("hi")
            async for _m in conn:
                pass

        bare_server = await serve(bare_handler, "127.0.0.1", 0, compression=None)
        clock = time.perf_counter

        class Trigger(asyncio.Protocol):
            buf = b""

            def data_received(self, data: bytes) -> None:
                now = clock()
                self.buf += data
                while b"\n" in self.buf:
                    line, self.buf = self.buf.split(b"\n", 1)
                    if line.startswith(b"F"):
                        frame_text[0] = line[1:].decode()
                    else:
                        sample, k = (int(x) for x in line.split())
                        stamps.trigger_in[sample] = now
                        stamps.bare_out[sample] = clock()
                        broadcast((bare[k],), frame_text[0])

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
        await loop.run_in_executor(None, from_client.get)  # sampling starts
        stamps.recording = True
        profile_to = os.environ.get("BENCH_PROFILE")  # a file: the server's cProfile stats while sampling
        profiler = None
        if profile_to:
            import cProfile

            profiler = cProfile.Profile(time.process_time)  # CPU time: not the time others had the cores
            profiler.enable()
        await loop.run_in_executor(None, from_client.get)  # done
        stamps.recording = False
        if profiler is not None and profile_to:
            profiler.disable()
            profiler.dump_stats(profile_to)
        to_client.put({"ami_in": stamps.ami_in, "pop_out": stamps.pop_out, "trigger_in": stamps.trigger_in,
                       "bare_out": stamps.bare_out, "gc_ms": stamps.gc_ms, "stages": stamps.stages,
                       "cpu_in": stamps.cpu_in, "cpu_out": stamps.cpu_out})
        reactor.stop()

    def started() -> None:
        task = asyncio.ensure_future(main())
        task.add_done_callback(lambda t: t.cancelled() or t.exception() is None
                               or print(f"bench server failed: {t.exception()!r}", file=sys.stderr, flush=True))

    reactor.callLater(0, started)
    reactor.run()


# -- the probe and crowd processes ----------------------------------------------------------------------------
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


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


READERS: dict[Any, asyncio.Future[None]] = {}  # each client socket's reading task


async def _open(url: str, on_message: Any) -> Any:
    """A websocket whose every frame after the first (hello / "hi") goes to ``on_message`` (read by its own task)."""
    import websockets

    ws = await websockets.connect(url, compression=None, max_size=2**20, open_timeout=60)
    await ws.recv()

    async def read() -> None:
        try:
            async for message in ws:
                on_message(message)
        except websockets.ConnectionClosed:
            pass

    READERS[ws] = asyncio.ensure_future(read())
    return ws


async def _open_all(urls: list[str], on_message: Any) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(urls), 100):
        out += await asyncio.gather(*(_open(u, on_message) for u in urls[start:start + 100]))
    return out


async def _close_all(sockets: list[Any]) -> None:
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    for ws in sockets:
        reader = READERS.pop(ws, None)
        if reader is not None:
            reader.cancel()


def _crowd(orders: Any, replies: Any) -> None:
    asyncio.run(_crowd_main(orders, replies))


async def _crowd_main(orders: Any, replies: Any) -> None:
    """Hold agents' (then bare) sockets and read every frame sent to them until told to stop."""
    loop = asyncio.get_running_loop()
    received = 0

    def count(_message: Any) -> None:
        nonlocal received
        received += 1

    job = await loop.run_in_executor(None, orders.get)
    agents = await _open_all(job["agent_urls"], count)
    replies.put("agents")
    await loop.run_in_executor(None, orders.get)
    bare = await _open_all(job["bare_urls"], count)
    replies.put("bare")
    await loop.run_in_executor(None, orders.get)  # sampling starts
    cpu = _cpu_s()
    await loop.run_in_executor(None, orders.get)  # sampling done
    cpu = _cpu_s() - cpu
    await _close_all(agents + bare)
    replies.put({"frames": received, "cpu_s": cpu})


def _probe(agents: int, samples: int, probes: int, crowd: int, ami_port_q: Any, from_server: Any, to_server: Any,
           crowd_orders: list[Any], crowd_replies: Any, results: Any) -> None:
    asyncio.run(_probe_main(agents, samples, probes, crowd, ami_port_q, from_server, to_server, crowd_orders,
                            crowd_replies, results))


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


async def _probe_main(agents: int, samples: int, probes: int, crowd: int, ami_port_q: Any, from_server: Any,
                      to_server: Any, crowd_orders: list[Any], crowd_replies: Any, results: Any) -> None:
    from tests.replay.ami_peer import caller_numbers, rewrite_copy

    loop = asyncio.get_running_loop()
    ami_conn: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = loop.create_future()

    async def on_ami(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/13.0.0\r\n")
        buf = b""
        while True:  # answer every action like an idle Asterisk (Login, Challenge, resync lists, Ping)
            try:
                chunk = await reader.read(65536)
            except (ConnectionError, asyncio.CancelledError):
                return
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
    _say("probe: setup received")
    _reader, writer = await asyncio.wait_for(ami_conn, 60)
    _say("probe: AMI resynced")

    # The probe holds the agents the samples ring (all of them with no crowd); the crowd the others.
    mine = list(range(agents)) if crowd == 0 else list(range(min(probes, agents)))
    probes = min(probes, agents)
    others = [k for k in range(agents) if k not in set(mine)]
    waiting: dict[int, asyncio.Future[float]] = {}
    frames: dict[int, str] = {}
    probe_frames = 0

    def on_agent(k: int) -> Any:
        def got(message: Any) -> None:
            nonlocal probe_frames
            now = time.perf_counter()
            probe_frames += 1
            if '"type":"pop"' in message[:40]:
                frames.setdefault(k, message)
                future = waiting.get(k)
                if future is not None and not future.done():
                    future.set_result(now)

        return got

    sockets = []
    for start in range(0, len(mine), 100):
        sockets += await asyncio.gather(*(_open(setup["agent_urls"][k], on_agent(k)) for k in mine[start:start + 100]))
    shares = _split(others, crowd) if crowd else []
    for orders, share in zip(crowd_orders, shares, strict=True):
        orders.put({"agent_urls": [setup["agent_urls"][k] for k in share],
                    "bare_urls": [f"{setup['bare_url']}/{k}" for k in share]})
    for _ in crowd_orders:
        await loop.run_in_executor(None, crowd_replies.get)  # "agents"
    _say("probe: agents connected")
    to_server.put("connected")
    memory = await loop.run_in_executor(None, from_server.get)

    bare_waiting: dict[int, asyncio.Future[float]] = {}

    def on_bare(k: int) -> Any:
        def got(_message: Any) -> None:
            now = time.perf_counter()
            future = bare_waiting.get(k)
            if future is not None and not future.done():
                future.set_result(now)

        return got

    bare_sockets = []
    for start in range(0, len(mine), 100):
        bare_sockets += await asyncio.gather(*(_open(f"{setup['bare_url']}/{k}", on_bare(k))
                                               for k in mine[start:start + 100]))
    for orders in crowd_orders:
        orders.put("bare")
    for _ in crowd_orders:
        await loop.run_in_executor(None, crowd_replies.get)  # "bare"
    _treader, trigger = await asyncio.open_connection("127.0.0.1", setup["trigger_port"])

    # Background: the busy hour, looped at its recorded pace (each loop's ids and numbers made unique, its 20
    # agents' phones moved onto 20 other agents of the crowd's).
    busy = _busy_loop()
    numbers = caller_numbers(text for _t, text in busy)
    background_messages = 0
    crowd_agents = [k for k in range(agents) if k >= probes] or list(range(agents))

    def move_agents(text: str, loop_no: int) -> str:
        def to(m: re.Match[str]) -> str:
            k = crowd_agents[(loop_no * 20 + int(m.group(1)) - 10) % len(crowd_agents)]
            return f"Local/{FIRST_EXT + k}@agent-phones"

        return BUSY_AGENTS.sub(to, text)

    async def background() -> None:
        nonlocal background_messages
        loop_no = 1
        while True:
            began = time.perf_counter()
            for offset, text in busy:
                delay = began + offset - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(move_agents(rewrite_copy(text, loop_no, numbers), loop_no).encode())
                background_messages += 1
            loop_no += 1

    _say("probe: bare connected")
    bg = asyncio.ensure_future(background())
    await asyncio.sleep(2.0)  # let the background settle in
    to_server.put("sampling")
    for orders in crowd_orders:
        orders.put("sampling")
    cpu = _cpu_s()
    pop: list[tuple[str, float, float]] = []  # (uniqueid, t0, t3)
    bare: list[tuple[int, float, float]] = []  # (sample, t0, t3)
    for i in range(samples):
        a = (2 * i) % probes
        b = (2 * i + 1) % probes
        before, called, after = _call_parts(i, FIRST_EXT + a, FIRST_EXT + b)
        found = AGENT_CALLED_ID.search(called)
        assert found is not None
        uniqueid = found.group(1).decode()
        writer.write(before)  # the caller joins the queue: CallOffered, the card prefetched
        await asyncio.sleep(0.02)
        waiting[a] = loop.create_future()
        t0 = time.perf_counter()
        writer.write(called)
        t3 = await asyncio.wait_for(waiting[a], 10)
        pop.append((uniqueid, t0, t3))
        writer.write(after)
        if i == 0:
            trigger.write(b"F" + frames[a].encode() + b"\n")  # the bare peer sends this very frame
        await asyncio.sleep(0.01)
        bare_waiting[a] = loop.create_future()
        t0 = time.perf_counter()
        trigger.write(f"{i} {a}\n".encode())
        t3 = await asyncio.wait_for(bare_waiting[a], 10)
        bare.append((i, t0, t3))
        await asyncio.sleep(0.01)
    cpu = _cpu_s() - cpu
    bg.cancel()
    for orders in crowd_orders:
        orders.put("done")
    to_server.put("done")
    server = await loop.run_in_executor(None, from_server.get)
    crowds = [await loop.run_in_executor(None, crowd_replies.get) for _ in crowd_orders]
    await _close_all(sockets + bare_sockets)
    writer.close()
    ami_server.close()

    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    def figures(values: list[float]) -> dict[str, float]:
        return {"p50_ms": round(statistics.median(values), 3), "p99_ms": round(pct(values, 99), 3),
                "max_ms": round(max(values), 3)}

    def parts(rows: list[tuple[Any, float, float]], got_in: dict[Any, float], sent: dict[Any, float]
              ) -> dict[str, dict[str, float]]:
        """End to end (t3 − t0); the server's own path (t2 − t1); the rest: in (t1 − t0), out (t3 − t2)."""
        e2e = [(t3 - t0) * 1000 for _key, t0, t3 in rows]
        stamped = [(t0, got_in[key], sent[key], t3) for key, t0, t3 in rows if key in got_in and key in sent]
        out = {"end_to_end": figures(e2e)}
        if stamped:
            out.update(server=figures([(t2 - t1) * 1000 for _t0, t1, t2, _t3 in stamped]),
                       inbound=figures([(t1 - t0) * 1000 for t0, t1, _t2, _t3 in stamped]),
                       outbound=figures([(t3 - t2) * 1000 for _t0, _t1, t2, t3 in stamped]),
                       outside=figures([((t1 - t0) + (t3 - t2)) * 1000 for t0, t1, t2, t3 in stamped]))
        return out

    server_in = {str(k): v for k, v in server["ami_in"].items()}
    pop_parts = parts(pop, server_in, server["pop_out"])
    bare_parts = parts(bare, {int(k): v for k, v in server["trigger_in"].items()},
                       {int(k): v for k, v in server["bare_out"].items()})
    cpu_in, cpu_out = server["cpu_in"], server["cpu_out"]
    path_cpu = [(cpu_out[u] - cpu_in[u]) * 1000 for u, _t0, _t3 in pop if u in cpu_in and u in cpu_out]
    if path_cpu:
        pop_parts["server_cpu"] = figures(path_cpu)
        pop_parts["server_not_running"] = figures([
            (server["pop_out"][u] - server_in[u] - (cpu_out[u] - cpu_in[u])) * 1000 for u, _t0, _t3 in pop
            if u in cpu_in and u in cpu_out])
    gcs = server["gc_ms"]
    stages: dict[str, dict[str, float]] = {}
    if server["stages"]:  # BENCH_TRACE: the server's path stage by stage, wall and CPU time
        def both(wall: dict[str, float], cpu: dict[str, float]) -> dict[str, tuple[float, float]]:
            return {u: (wall[u], cpu[u]) for u in wall if u in cpu}

        marks = [("ami_in", both(server_in, cpu_in)),
                 *((name, {u: tuple(v) for u, v in server["stages"][name].items()})
                   for name in ("published", "taken", "posted")),
                 ("pop_out", both(server["pop_out"], cpu_out))]
        for (first, at), (then, later) in zip(marks, marks[1:], strict=False):
            keys = [u for u, _t0, _t3 in pop if u in at and u in later]
            if keys:
                stages[f"{first}→{then}"] = figures([(later[u][0] - at[u][0]) * 1000 for u in keys])
                stages[f"{first}→{then} cpu"] = figures([(later[u][1] - at[u][1]) * 1000 for u in keys])
    results.put({
        "agents": agents, "samples": samples, "probes": probes, "crowd_processes": crowd,
        "background_messages": background_messages,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "frame_bytes": len(frames[0].encode()),
        "pop": pop_parts["end_to_end"], "bare": bare_parts["end_to_end"],
        "pop_parts": pop_parts, "bare_parts": bare_parts, **({"server_stages": stages} if stages else {}),
        "server_gc": {"collections": len(gcs), "gen2": sum(1 for g, _ in gcs if g == 2),
                      "max_ms": round(max((ms for _g, ms in gcs), default=0.0), 3),
                      "total_ms": round(sum(ms for _g, ms in gcs), 3)},
        "probe": {"frames": probe_frames, "cpu_s_sampling": round(cpu, 3)},
        "crowd": {"frames": sum(c["frames"] for c in crowds),
                  "cpu_s_sampling": round(sum(c["cpu_s"] for c in crowds), 3)},
        "memory": {**memory, "per_agent_kib": round((memory["rss_after_kib"] - memory["rss_before_kib"]) / agents,
                                                    2)},
    })


def run(agents: int = 1000, samples: int = 300, redis_url: str | None = None, probes: int = 50,
        crowd: int = 2) -> dict[str, Any]:
    """``redis_url``: the frames go through Redis (``RedisBus``, that database flushed) as with several nodes.
    ``crowd`` processes hold all sockets but the ``probes`` ones the samples ring (0: the probe holds them all)."""
    ctx = mp.get_context("spawn")
    ami_port_q, to_client, to_server, results, crowd_replies = (ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Queue(),
                                                                 ctx.Queue())
    crowd_orders = [ctx.Queue() for _ in range(crowd)]
    crowds = [ctx.Process(target=_crowd, args=(orders, crowd_replies)) for orders in crowd_orders]
    for proc in crowds:
        proc.start()
    probe = ctx.Process(target=_probe, args=(agents, samples, probes, crowd, ami_port_q, to_client, to_server,
                                             crowd_orders, crowd_replies, results))
    probe.start()
    ami_port = ami_port_q.get(timeout=60)
    server = ctx.Process(target=_server, args=(agents, ami_port, to_client, to_server, redis_url))
    server.start()
    try:
        out: dict[str, Any] = results.get(timeout=90 + samples * 2)
    finally:
        for proc in (probe, server, *crowds):
            proc.join(30)
            if proc.is_alive():
                proc.terminate()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--probes", type=int, default=50, help="agents the samples ring, held by the probe process")
    parser.add_argument("--crowd", type=int, default=2,
                        help="processes holding the other sockets (0: every socket in the probe process)")
    parser.add_argument("--redis", metavar="URL", help="frames through Redis (RedisBus); the database is flushed")
    args = parser.parse_args()
    print(json.dumps(run(args.agents, args.samples, args.redis, args.probes, args.crowd), indent=2,
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
