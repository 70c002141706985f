"""FastAGI server benchmark: server CPU per session, event-loop lag under half-open load, idle memory.

Each server runs in its own process and a separate driver process plays Asterisk over loopback TCP, so the
figure is the server's own CPU (``resource.getrusage`` read inside the server, on SIGUSR1, around the
measured run). A session is the env block (an agi-load recording) plus 3 ``SET VARIABLE`` round trips,
each answered ``200 result=1``.

Servers compared:
- ``floor``: a bare Twisted LineReceiver that reads the env block and sends the 3 commands, nothing else;
- ``ccserver``: ``FastAGIFactory`` with a handler awaiting ``session.set_variable`` three times;
- ``ccserver_env``: the same, but the handler first reads callerid / extension / uniqueid (full env parse);
- ``ccserver_mset``: the same three variables through ``session.set_variables`` (one ``EXEC MSet``);
- ``panoramisk``: panoramisk's FastAGI ``Application`` (``pip install panoramisk``; skipped if absent).

Twisted servers run on Twisted's asyncio reactor, as in production (``--reactor epoll`` for the classic one).

    .venv/bin/python benchmarks/bench_agi.py [--sessions 10000] [--concurrency 20] [--rounds 3]

Normal calls under a half-open flood (1,000 silent connections re-opened as the 2 s header timeout drops
them; calls paced at ``--rate`` per second, each timed connect to close), and the same calls without it:

    .venv/bin/python benchmarks/bench_agi.py --only flood [--rate 200] [--seconds 12]

Instructions per session instead of CPU time (callgrind; repeatable on a loaded machine, default 2,000):

    .venv/bin/python benchmarks/bench_agi.py --instructions [KIND ...] [--sessions 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ENV_BLOCK = (
    b"agi_network: yes\nagi_network_script: incoming\nagi_request: agi://127.0.0.1:4573/incoming\n"
    b"agi_channel: Local/18800000000@callers-00000000;1\nagi_language: en\nagi_type: Local\n"
    b"agi_uniqueid: 1795418249.0\nagi_version: GIT-master-f0c1c1a7b7\nagi_callerid: 18800000000\n"
    b"agi_calleridname: Load 0\nagi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\n"
    b"agi_dnid: unknown\nagi_rdnis: unknown\nagi_context: from-pstn\nagi_extension: 4008009000\n"
    b"agi_priority: 3\nagi_enhanced: 0.0\nagi_accountcode: \nagi_threadid: 140709015213760\n\n"
)
VARIABLES = {"CC_QUEUE": "bulk", "CC_PRIORITY": "1", "CC_QUEUE_TIMEOUT": "120"}
FLOOR_COMMANDS = [f'SET VARIABLE {k} "{v}"'.encode() for k, v in VARIABLES.items()]


# ---------------------------------------------------------------------------------------------------------
# server side (one process per server kind)
# ---------------------------------------------------------------------------------------------------------
class _Stats:
    def __init__(self, stats_file: str, lag: bool, trace: bool) -> None:
        self.stats_file = stats_file
        self.sessions = 0
        self.lags: list[float] = []
        self.iterations: list[float] = []  # thread CPU of each loop iteration (see _iteration_probe)
        self.lag = lag
        self.trace = trace

    def cpu(self) -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    def snapshot(self, *_: Any) -> None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        out: dict[str, Any] = {
            "cpu": ru.ru_utime + ru.ru_stime,
            "user": ru.ru_utime,
            "sys": ru.ru_stime,
            "sessions": self.sessions,
            "rss_kib": _rss_kib(),
            "gc_collections": sum(s["collections"] for s in gc.get_stats()),
        }
        if self.lag and self.lags:
            lags = sorted(self.lags)
            out["lag_p50_ms"] = lags[len(lags) // 2] * 1e3
            out["lag_p99_ms"] = lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1e3
            out["lag_max_ms"] = lags[-1] * 1e3
            out["lag_samples"] = len(lags)
        self.lags = []
        if self.iterations:
            spans = sorted(self.iterations)
            out["iteration_cpu_p99_ms"] = spans[min(len(spans) - 1, int(len(spans) * 0.99))] * 1e3
            out["iteration_cpu_max_ms"] = spans[-1] * 1e3
            out["iterations_over_2ms"] = sum(1 for s in spans if s > 0.002)
            self.iterations = []
        if self.trace:
            import tracemalloc

            gc.collect()
            out["traced"] = tracemalloc.get_traced_memory()[0]
        tmp = self.stats_file + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(out, fh)
        os.replace(tmp, self.stats_file)


def _rss_kib() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _lag_probe(call_later: Any, now: Any, stats: _Stats, interval: float = 0.005) -> None:
    """A periodic timer measuring how late it fires: the event loop's responsiveness."""

    def tick(expected: float) -> None:
        t = now()
        stats.lags.append(max(0.0, t - expected))
        call_later(interval, tick, t + interval)

    call_later(interval, tick, now() + interval)


def _iteration_probe(loop: asyncio.AbstractEventLoop, stats: _Stats) -> None:
    """The server's own CPU (thread time) for each event-loop iteration: from one select() returning to the next
    call. Unlike the lag timer it does not count time the OS gave to other processes, so on a shared machine it
    still shows how long the server itself held the loop."""
    selector: Any = loop._selector  # type: ignore[attr-defined]
    select = selector.select
    last: list[float] = []

    def timed_select(timeout: float | None = None) -> Any:
        if last:
            stats.iterations.append(time.thread_time() - last[0])
        events = select(timeout)
        last[:] = [time.thread_time()]
        return events

    selector.select = timed_select


def serve(kind: str, port_file: str, stats_file: str, reactor_name: str, lag: bool, trace: bool) -> None:
    if trace:
        import tracemalloc

        tracemalloc.start()
    stats = _Stats(stats_file, lag, trace)
    if os.environ.get("BENCH_AGI_PROFILE"):  # BENCH_AGI_PROFILE=/tmp/x.prof: cProfile the server process
        import atexit
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        atexit.register(lambda: profiler.dump_stats(os.environ["BENCH_AGI_PROFILE"]))
    if kind == "panoramisk":
        _serve_panoramisk(port_file, stats)
        return
    if reactor_name == "asyncio":
        from twisted.internet import asyncioreactor

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        asyncioreactor.install(loop)
    from twisted.internet import reactor

    if kind == "floor":
        factory = _floor_factory(stats)
    else:
        from ccserver.agi import FastAGIFactory
        from ccserver.agi.metrics import SESSIONS

        base = SESSIONS.value()

        if kind == "ccserver_mset":

            async def incoming(session: Any) -> None:
                await session.set_variables(VARIABLES)

        elif kind == "ccserver_env":

            async def incoming(session: Any) -> None:
                # what a real router reads first: the full env gets parsed (lazily, on this first access)
                if session.callerid and session.extension and session.uniqueid:
                    for name, value in VARIABLES.items():
                        await session.set_variable(name, value)

        elif kind == "ccserver_idle":

            async def incoming(session: Any) -> None:
                await session.answer()  # the driver never answers: an idle session awaiting Asterisk

        else:

            async def incoming(session: Any) -> None:
                for name, value in VARIABLES.items():
                    await session.set_variable(name, value)

        factory = FastAGIFactory({"incoming": incoming}, clock=reactor)
        stats_snapshot = stats.snapshot

        def snapshot(*_: Any) -> None:
            stats.sessions = int(SESSIONS.value() - base)
            stats_snapshot()

        stats.snapshot = snapshot  # type: ignore[method-assign]
    port = reactor.listenTCP(0, factory, backlog=2048, interface="127.0.0.1")
    signal.signal(signal.SIGUSR1, lambda *_: stats.snapshot())
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    if lag:
        _lag_probe(reactor.callLater, time.perf_counter, stats)
        if reactor_name == "asyncio":
            _iteration_probe(reactor._asyncioEventloop, stats)  # type: ignore[attr-defined]
    Path(port_file).write_text(str(port.getHost().port))
    reactor.run(installSignalHandlers=False)


def _floor_factory(stats: _Stats) -> Any:
    from twisted.internet.protocol import ServerFactory
    from twisted.protocols.basic import LineReceiver

    class Floor(LineReceiver):
        delimiter = b"\n"
        state = -1  # -1: reading the env block; n: command n written, awaiting its answer

        def lineReceived(self, line: bytes) -> None:
            state = self.state
            if state < 0:
                if line:
                    return
                stats.sessions += 1
            state += 1
            if state < len(FLOOR_COMMANDS):
                self.state = state
                self.sendLine(FLOOR_COMMANDS[state])
            else:
                self.transport.loseConnection()

    class FloorFactory(ServerFactory):
        protocol = Floor

    return FloorFactory()


def _serve_panoramisk(port_file: str, stats: _Stats) -> None:
    from panoramisk.fast_agi import Application

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = Application(loop=loop)

    async def incoming(request: Any) -> None:
        stats.sessions += 1
        for name, value in VARIABLES.items():
            await request.send_command(f'SET VARIABLE {name} "{value}"')

    app.add_route("incoming", incoming)
    server = loop.run_until_complete(asyncio.start_server(app.handler, "127.0.0.1", 0, backlog=2048))
    signal.signal(signal.SIGUSR1, lambda *_: stats.snapshot())
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    if stats.lag:
        _lag_probe(loop.call_later, time.perf_counter, stats)
    Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
    loop.run_forever()


# ---------------------------------------------------------------------------------------------------------
# driver side (plays Asterisk)
# ---------------------------------------------------------------------------------------------------------
class _Call(asyncio.Protocol):
    """One FastAGI call: send the env block, answer every command line ``200 result=1``."""

    def __init__(self, done: asyncio.Future[None], answer: bool = True, env: bytes = ENV_BLOCK) -> None:
        self.done = done
        self.answer = answer
        self.env = env
        self.buf = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.env:
            transport.write(self.env)

    def data_received(self, data: bytes) -> None:
        if not self.answer:
            return
        buf = self.buf + data
        n = buf.count(b"\n")
        if n:
            self.buf = buf[buf.rfind(b"\n") + 1 :]
            self.transport.write(b"200 result=1\n" * n)
        else:
            self.buf = buf

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _drive(port: int, total: int, concurrency: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    remaining = total
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            done: asyncio.Future[None] = loop.create_future()
            t0 = time.perf_counter()
            await loop.create_connection(functools.partial(_Call, done), "127.0.0.1", port)
            await done
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "sessions": total,
        "elapsed_s": elapsed,
        "rate_per_s": total / elapsed,
        "latency_p50_ms": latencies[len(latencies) // 2] * 1e3,
        "latency_p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
    }


async def _pace(port: int, rate: float, seconds: float) -> dict[str, Any]:
    """Open-loop calls: one every ``1/rate`` s whatever the earlier ones do (a call rate, not a concurrency),
    each timed from connect to close."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    failures = 0

    async def one() -> None:
        nonlocal failures
        done: asyncio.Future[None] = loop.create_future()
        t0 = time.perf_counter()
        try:
            await loop.create_connection(functools.partial(_Call, done), "127.0.0.1", port)
            await asyncio.wait_for(done, 5.0)
        except (OSError, TimeoutError):
            failures += 1
            return
        latencies.append(time.perf_counter() - t0)

    total = int(rate * seconds)
    start = loop.time()
    tasks = []
    for i in range(total):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one()))
    await asyncio.gather(*tasks)
    latencies.sort()
    n = len(latencies)
    return {
        "calls": total,
        "failures": failures,
        "p50_ms": latencies[n // 2] * 1e3 if n else None,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1e3 if n else None,
        "max_ms": latencies[-1] * 1e3 if n else None,
    }


async def _hold(port: int, count: int, env: bytes, answer: bool) -> None:
    """Hold ``count`` connections open (reopened when the server drops them) until SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    transports: list[Any] = []

    async def keep() -> None:
        while not stop.done():
            done: asyncio.Future[None] = loop.create_future()
            try:
                make = functools.partial(_Call, done, answer=answer, env=env)
                tr, _ = await loop.create_connection(make, "127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            transports.append(tr)
            await asyncio.wait([done, stop], return_when=asyncio.FIRST_COMPLETED)

    tasks = [asyncio.ensure_future(keep()) for _ in range(count)]
    while len(transports) < count:
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await stop
    for tr in transports:
        tr.abort()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# ---------------------------------------------------------------------------------------------------------
# orchestration
# ---------------------------------------------------------------------------------------------------------
class _Server:
    def __init__(
        self,
        kind: str,
        reactor_name: str = "asyncio",
        lag: bool = False,
        trace: bool = False,
        wrapper: list[str] | None = None,
        env: dict[str, str] | None = None,
        slow: bool = False,
    ) -> None:
        """``wrapper``: a command the server runs under (valgrind); ``slow``: allow for it in every wait."""
        self.dir = tempfile.mkdtemp(prefix="bench_agi_")
        self.port_file = os.path.join(self.dir, "port")
        self.stats_file = os.path.join(self.dir, "stats")
        args = [*(wrapper or []), sys.executable, __file__, "--serve", kind, "--port-file", self.port_file]
        args += ["--stats-file", self.stats_file, "--reactor", reactor_name]
        args += ["--lag"] if lag else []
        args += ["--trace"] if trace else []
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env)
        self.slow = slow
        deadline = time.time() + (300 if slow else 20)
        while not os.path.exists(self.port_file) or not Path(self.port_file).read_text():
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"server {kind} did not start")
            time.sleep(0.02)
        self.port = int(Path(self.port_file).read_text())

    def stats(self) -> dict[str, Any]:
        if os.path.exists(self.stats_file):
            os.unlink(self.stats_file)
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.time() + (120 if self.slow else 10)
        while not os.path.exists(self.stats_file):
            if time.time() > deadline:
                raise RuntimeError("no stats from server")
            time.sleep(0.005)
        return json.loads(Path(self.stats_file).read_text())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _run_driver(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class _Holder:
    def __init__(self, port: int, count: int, env: bytes, answer: bool = True) -> None:
        args = [sys.executable, __file__, "--hold", str(port), str(count), "--hold-env", env.decode()]
        args += [] if answer else ["--no-answer"]
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if line.strip() != "ready":
            raise RuntimeError("holder did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def cpu_per_session(
    kind: str, sessions: int, concurrency: int, rounds: int, reactor_name: str = "asyncio"
) -> dict[str, Any]:
    server = _Server(kind, reactor_name)
    try:
        _run_driver("--drive", str(server.port), str(min(2000, sessions)), str(concurrency))  # warm-up
        per: list[float] = []
        split: list[tuple[float, float]] = []
        drive: dict[str, Any] = {}
        for _ in range(rounds):
            before = server.stats()
            drive = _run_driver("--drive", str(server.port), str(sessions), str(concurrency))
            after = server.stats()
            done = after["sessions"] - before["sessions"]
            if done != sessions:
                raise RuntimeError(f"{kind}: {done} sessions served, expected {sessions}")
            per.append((after["cpu"] - before["cpu"]) / sessions)
            split.append(((after["user"] - before["user"]) / sessions, (after["sys"] - before["sys"]) / sessions))
        return {
            "cpu_ms_per_session": statistics.median(per) * 1e3,
            "cpu_ms_per_session_min": min(per) * 1e3,
            "rounds_ms": [round(p * 1e3, 4) for p in per],
            "user_sys_ms": [(round(u * 1e3, 4), round(s * 1e3, 4)) for u, s in split],
            "sessions_per_s": drive["rate_per_s"],
            "latency_p99_ms": drive["latency_p99_ms"],
        }
    finally:
        server.stop()


def _callgrind_control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True, timeout=120)


def _callgrind_totals(path: str) -> dict[str, int]:
    """Event totals of one callgrind dump (``events:`` names, ``summary:`` / ``totals:`` values): Ir at least."""
    names: list[str] = []
    for text in Path(path).read_text().splitlines():
        if text.startswith("events:"):
            names = text.split()[1:]
        elif text.startswith(("summary:", "totals:")):
            return dict(zip(names, (int(v) for v in text.split()[1:]), strict=False))
    raise RuntimeError(f"no event totals in {path}")


def instructions_per_session(
    kind: str, sessions: int = 2000, concurrency: int = 20, warmup: int = 300, reactor_name: str = "asyncio"
) -> dict[str, Any]:
    """User-space instructions the server executes per session, counted by callgrind (``valgrind`` needed).

    Unlike CPU time this does not depend on what else the machine is running, so two servers can be compared
    on a busy machine: the server runs under callgrind, the counters are zeroed after a warm-up, and dumped
    after ``sessions`` more. Kernel time (syscalls) is not counted; both servers make the same ones.
    ``BENCH_AGI_CALLGRIND_KEEP=1`` keeps the dump for ``callgrind_annotate``; ``BENCH_AGI_CALLGRIND_ARGS`` adds
    valgrind options (``--cache-sim=yes --branch-sim=yes``).
    """
    out_dir = tempfile.mkdtemp(prefix="bench_agi_cg_")
    out_file = os.path.join(out_dir, "callgrind.out")
    wrapper = ["valgrind", "-q", "--tool=callgrind", f"--callgrind-out-file={out_file}", "--dump-instr=no"]
    wrapper += os.environ.get("BENCH_AGI_CALLGRIND_ARGS", "").split()  # e.g. "--cache-sim=yes"
    env = dict(os.environ, PYTHONHASHSEED="0")  # same dict layouts every run: repeatable counts
    server = _Server(kind, reactor_name, wrapper=wrapper, env=env, slow=True)
    try:
        _run_driver("--drive", str(server.port), str(warmup), str(concurrency))
        before = server.stats()
        _callgrind_control("--zero", server.proc.pid)
        _run_driver("--drive", str(server.port), str(sessions), str(concurrency))
        _callgrind_control("--dump", server.proc.pid)
        after = server.stats()
        done = after["sessions"] - before["sessions"]
        if done != sessions:
            raise RuntimeError(f"{kind}: {done} sessions served, expected {sessions}")
        dumps = sorted(Path(out_dir).glob("callgrind.out*"), key=os.path.getmtime)
        if not dumps:
            raise RuntimeError("callgrind wrote no dump")
        dump = str(dumps[-1])
        totals = _callgrind_totals(dump)
        # cyclic-GC runs: none when every session is freed by reference counting (see FastAGIProtocol._close)
        gc_runs = after["gc_collections"] - before["gc_collections"]
        result: dict[str, Any] = {
            "instructions_per_session": round(totals["Ir"] / sessions),
            "gc_collections_per_1000_sessions": round(gc_runs * 1000 / sessions, 2),
        }
        for event, count in totals.items():
            if event != "Ir":
                result[f"{event}_per_session"] = round(count / sessions)
        if os.environ.get("BENCH_AGI_CALLGRIND_KEEP"):
            result["dump"] = dump
        return result
    finally:
        server.stop()


def run_instructions(
    sessions: int = 2000, concurrency: int = 20, kinds: list[str] | None = None, reactor_name: str = "asyncio"
) -> dict[str, Any]:
    kinds = kinds or ["floor", "ccserver"]
    results: dict[str, Any] = {"sessions": sessions, "concurrency": concurrency, "reactor": reactor_name}
    for kind in kinds:
        results[kind] = instructions_per_session(kind, sessions, concurrency, reactor_name=reactor_name)
    if "floor" in kinds:
        floor = results["floor"]["instructions_per_session"]
        for kind in kinds:
            if kind != "floor":
                results[f"{kind}_vs_floor"] = round(results[kind]["instructions_per_session"] / floor, 3)
    return results


def lag_under_half_open(kind: str = "ccserver", half_open: int = 1000, sessions: int = 3000) -> dict[str, Any]:
    """Loop lag (5 ms timer) while ``half_open`` silent connections are held (and re-opened whenever the
    2 s header timeout drops them), with normal sessions running alongside."""
    server = _Server(kind, lag=True)
    try:
        time.sleep(0.5)
        server.stats()
        time.sleep(1.0)
        idle = server.stats()
        holder = _Holder(server.port, half_open, b"agi_network: yes\n", answer=False)
        try:
            server.stats()
            drive = _run_driver("--drive", str(server.port), str(sessions), "5")
            time.sleep(max(0.0, 4.5 - drive["elapsed_s"]))  # span at least two header-timeout sweeps
            loaded = server.stats()
        finally:
            holder.stop()
        return {
            "half_open": half_open,
            "lag_p99_ms": loaded.get("lag_p99_ms"),
            "lag_max_ms": loaded.get("lag_max_ms"),
            "lag_p99_idle_ms": idle.get("lag_p99_ms"),
            "sessions_meanwhile": sessions,
            "session_latency_p99_ms": drive["latency_p99_ms"],
            "sessions_per_s": drive["rate_per_s"],
        }
    finally:
        server.stop()


def calls_under_half_open_flood(half_open: int = 1000, rate: float = 200.0, seconds: float = 12.0) -> dict[str, Any]:
    """Normal calls (env block + 3 SET VARIABLE, paced at ``rate``/s) with ``half_open`` silent connections
    cycling: every 2 s the header timeout drops them and the holder opens them again at once, so each wave of
    drops meets a wave of accepts. Reported: the calls' p50/p99/max, with the flood and without it (same
    server, same rate), and the loop lag under the flood. ``seconds`` spans several waves."""
    server = _Server("ccserver", lag=True)
    try:
        time.sleep(0.5)
        _run_driver("--drive", str(server.port), "500", "5")  # warm-up
        quiet = _run_driver("--pace", str(server.port), str(rate), str(seconds / 2))
        holder = _Holder(server.port, half_open, b"agi_network: yes\n", answer=False)
        try:
            time.sleep(0.5)
            server.stats()
            flood = _run_driver("--pace", str(server.port), str(rate), str(seconds))
            loaded = server.stats()
        finally:
            holder.stop()
        return {
            "half_open": half_open,
            "rate_per_s": rate,
            "calls": flood["calls"],
            "p50_ms": flood["p50_ms"],
            "p99_ms": flood["p99_ms"],
            "max_ms": flood["max_ms"],
            "failures": flood["failures"],
            "p50_quiet_ms": quiet["p50_ms"],
            "p99_quiet_ms": quiet["p99_ms"],
            "lag_p99_ms": loaded.get("lag_p99_ms"),
            "lag_max_ms": loaded.get("lag_max_ms"),
            "iteration_cpu_p99_ms": loaded.get("iteration_cpu_p99_ms"),
            "iteration_cpu_max_ms": loaded.get("iteration_cpu_max_ms"),
            "iterations_over_2ms": loaded.get("iterations_over_2ms"),
        }
    finally:
        server.stop()


def memory_per_idle(count: int = 1000) -> dict[str, Any]:
    """Python heap (tracemalloc) and RSS per idle connection: a session awaiting Asterisk's answer, and a
    half-open connection whose header has not arrived."""
    out: dict[str, Any] = {}
    for label, env, in_header in (("session", ENV_BLOCK, False), ("half_open", b"agi_network: yes\n", True)):
        server = _Server("ccserver_idle", trace=True)
        try:
            # warm-up: one of each so first-use allocations (imports, caches) are not counted
            warm = _Holder(server.port, 5, env, answer=False)
            warm.stop()
            time.sleep(0.3)
            before = server.stats()
            holder = _Holder(server.port, count, env, answer=False)
            time.sleep(0.3 if in_header else 0.5)
            after = server.stats()
            holder.stop()
        finally:
            server.stop()
        out[f"{label}_heap_bytes"] = round((after["traced"] - before["traced"]) / count)
        out[f"{label}_rss_kib"] = round((after["rss_kib"] - before["rss_kib"]) / count, 2)
    return out


def run(sessions: int = 10_000, concurrency: int = 20, rounds: int = 3, reactor_name: str = "asyncio") -> dict:
    results: dict[str, Any] = {"sessions": sessions, "concurrency": concurrency, "reactor": reactor_name}
    kinds = ["floor", "ccserver", "ccserver_env", "ccserver_mset"]
    try:
        import panoramisk  # noqa: F401

        kinds.append("panoramisk")
    except ImportError:
        results["panoramisk"] = "not installed"
    for kind in kinds:
        results[kind] = cpu_per_session(kind, sessions, concurrency, rounds, reactor_name)
    floor = results["floor"]["cpu_ms_per_session"]
    for kind in kinds[1:]:
        results[f"{kind}_vs_floor"] = round(results[kind]["cpu_ms_per_session"] / floor, 3)
    results["lag"] = lag_under_half_open()
    results["flood"] = calls_under_half_open_flood()
    results["memory"] = memory_per_idle()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve")
    parser.add_argument("--port-file")
    parser.add_argument("--stats-file")
    parser.add_argument("--reactor", default="asyncio", choices=["asyncio", "epoll"])
    parser.add_argument("--lag", action="store_true")
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--drive", nargs=3, metavar=("PORT", "SESSIONS", "CONCURRENCY"))
    parser.add_argument("--hold", nargs=2, metavar=("PORT", "COUNT"))
    parser.add_argument("--pace", nargs=3, metavar=("PORT", "RATE", "SECONDS"))
    parser.add_argument("--rate", type=float, default=200.0, help="--only flood: normal calls per second")
    parser.add_argument("--seconds", type=float, default=12.0, help="--only flood: how long the flood runs")
    parser.add_argument("--hold-env", default="")
    parser.add_argument("--no-answer", action="store_true")
    parser.add_argument("--sessions", type=int, help="default 10,000 (2,000 with --instructions)")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["cpu", "lag", "flood", "memory"])
    parser.add_argument(
        "--instructions",
        nargs="*",
        metavar="KIND",
        help="count server instructions per session under callgrind instead (default kinds: floor ccserver)",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port_file, args.stats_file, args.reactor, args.lag, args.trace)
    elif args.drive:
        port, total, conc = (int(x) for x in args.drive)
        print(json.dumps(asyncio.run(_drive(port, total, conc))))
    elif args.pace:
        print(json.dumps(asyncio.run(_pace(int(args.pace[0]), float(args.pace[1]), float(args.pace[2])))))
    elif args.hold:
        asyncio.run(_hold(int(args.hold[0]), int(args.hold[1]), args.hold_env.encode(), not args.no_answer))
    elif args.instructions is not None:
        sessions = args.sessions or 2000  # callgrind is ~50x slower than the CPU
        result = run_instructions(sessions, args.concurrency, args.instructions or None, args.reactor)
        print(json.dumps(result, indent=2))
    elif args.only == "lag":
        print(json.dumps(lag_under_half_open(), indent=2))
    elif args.only == "flood":
        print(json.dumps(calls_under_half_open_flood(rate=args.rate, seconds=args.seconds), indent=2))
    elif args.only == "memory":
        print(json.dumps(memory_per_idle(), indent=2))
    else:
        print(json.dumps(run(args.sessions or 10_000, args.concurrency, args.rounds, args.reactor), indent=2))


if __name__ == "__main__":
    main()
