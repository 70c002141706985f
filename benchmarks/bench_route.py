"""A routed call end to end: ``agi_*`` block in → routing variables out, against the demo dealer group with
1,000,000 customers on PostgreSQL and the number cache in Redis.

    python -m benchmarks.bench_route [--customers 1000000] [--calls 2000]

The server runs in its own process exactly as ``ccserver run`` wires it (``RoutingRuntime``: cache in Redis,
SQL directory in worker threads, decisions written behind) on Twisted's asyncio reactor. A client process plays
Asterisk: one call at a time, the env block in, the single ``EXEC MSet`` line out (answered ``200 result=1``),
latency measured from the first byte sent to the MSet line received. Phases: a **miss** (each number's first
call goes to SQL) and a **hit** (the same numbers again), in ``rounds`` rounds of new numbers; each figure is
reported as the median over the rounds, with the p99 range. Server CPU per call is read from the
server's own ``getrusage`` around each phase (a ``stats`` FastAGI script reports it).

The peer figure, measured in the same run and process as the client: the floor of one Redis round trip plus
one phonenumbers parse per call. Targets: p99 ≤ 1 ms on a hit, ≤ 5 ms on a miss; ≤ 1 ms of server CPU per
routed call.

A freshly loaded database is vacuumed, analyzed and checkpointed first, so autovacuum and the load's WAL do not
run through the measured calls. The server logs at INFO (one line per routed call) into a file, like ``ccserver
run``; at exit the client checks that every call left a log line and a ``routing_decisions`` row. Server CPU is
split into kernel time and the reactor thread's own (the rest: SQL worker threads, the decision writer).
Switches (environment):

    BENCH_ROUTE_PROFILE=/tmp/route.prof   cProfile of the server's reactor thread, written when it exits (SIGTERM)
    BENCH_ROUTE_PROFILE_PHASE=hit         … of that phase only (warm, miss or hit)
    BENCH_ROUTE_PROFILE_CPU=1             … timed by the thread's CPU clock, not the wall clock (a send that wakes
                                          another process otherwise counts the time that process ran)
    BENCH_ROUTE_DUMP=/tmp/lat             each phase's latencies, one per line, in /tmp/lat.<phase>
    BENCH_ROUTE_THREADS=1                 the server's CPU seconds per thread, printed at each phase boundary
    BENCH_ROUTE_STEPS=/tmp/steps          the loop's steps over 0.5 ms of CPU (by callback or task) and the garbage
                                          collector's pauses, from the first call on, written at exit: what held
                                          the loop, apart from the machine (CPU time, not wall time)

For worker threads too: ``py-spy record --gil --subprocesses -f raw -- python -m benchmarks.bench_route …``.

**Two source trees against each other** (a change measured beside the code it changes, on one kept schema —
``bench_demo_load --keep``, vacuumed once): ``python -m benchmarks.bench_route_trees --schema S --tree
main=/path/to/main --tree new=.`` runs this module's server from each tree and alternates them round by round.

What the miss phase counts was checked against what a cache miss costs the server (issue #8): everything the
server does between the phase's two ``stats`` calls is per-call work — the warm-up phase opens the SQL lookup's
connection, the COPY connection and the Redis client before any phase is timed; no collector pause worth
counting falls in a phase (``BENCH_ROUTE_STEPS``); the first round is not systematically dearer than the
others; the routing data refresh (every 60 s, a worker thread) rarely falls in a phase of this run. So nothing
is taken out.

**Library against ours** (the README says which of the call path's I/O is hand-written, and why)::

    python -m benchmarks.bench_route --ab [--customers 100000] [--calls 1000] [--rounds 6] [--schema S]

runs one server per variant at the same time on the same data — ``ours`` (the Twisted RESP client for the
call path's Redis lookup and store) and ``library`` (``redis.asyncio`` with hiredis, bounded like ours: no
retries, 0.5 s connect and reply timeouts, so no per-call timer either) — and gives every variant, each round,
its own new numbers (miss, then hit) in alternating order, so a shared machine's drift falls on all of them
alike. ``--variant NAME=redis`` names variants by hand. Each figure is the median over the rounds, and
``all_calls`` takes every call of a variant together (with the counts over 1 ms and 5 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"  # the benchmark's own database (flushed)
DID = "4008001000"


# -- the server process ------------------------------------------------------------------------------------------
LIBRARY_PIECES = ("redis",)  # what `--library` can switch to the maintained client (A/B)


def _step_trace(path: str, slow: float = 0.0005) -> tuple[Any, Any]:
    """(start, dump) for BENCH_ROUTE_STEPS: every loop callback's CPU time and every collection's, once started."""
    import asyncio.events
    import collections
    import gc

    on = [False]
    steps = [0, 0.0]
    slow_steps: collections.Counter[str] = collections.Counter()
    worst: list[tuple[float, str]] = []
    pauses: dict[int, list[float]] = collections.defaultdict(list)
    gc_started = [0.0]
    run = asyncio.events.Handle._run

    def timed(handle: Any) -> None:
        if not on[0]:
            return run(handle)
        t0 = time.thread_time()
        run(handle)
        spent = time.thread_time() - t0
        steps[0] += 1
        steps[1] += spent
        if spent > slow:
            owner = getattr(handle._callback, "__self__", None)
            name = owner.get_name() if isinstance(owner, asyncio.Task) else getattr(
                handle._callback, "__qualname__", type(handle._callback).__name__)
            slow_steps[name] += 1
            worst.append((spent, name))

    def collected(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.thread_time()
        elif on[0]:
            pauses[info["generation"]].append(time.thread_time() - gc_started[0])

    def start(result: Any = None) -> Any:
        asyncio.events.Handle._run = timed  # type: ignore[method-assign, assignment]
        gc.callbacks.append(collected)
        on[0] = True
        return result

    def dump() -> None:
        lines = [f"loop steps {steps[0]}, {steps[1]:.3f} s CPU; over {slow * 1e3:g} ms: {sum(slow_steps.values())}"]
        lines += [f"  {n:5d}  {name}" for name, n in slow_steps.most_common(15)]
        lines.append("  slowest (ms): " + ", ".join(f"{t * 1e3:.2f} {name}" for t, name in sorted(worst)[-8:]))
        for generation, times in sorted(pauses.items()):
            times.sort()
            lines.append(f"gc gen{generation}: {len(times)} pauses, p50 {times[len(times) // 2] * 1e3:.3f} ms, "
                         f"max {times[-1] * 1e3:.3f} ms, total {sum(times) * 1e3:.1f} ms")
        Path(path).write_text("\n".join(lines) + "\n")

    return start, dump


def serve(url: str, redis_url: str, port_file: str, library: frozenset[str] = frozenset()) -> None:
    from ccserver.server import freeze_startup_objects, install_reactor

    reactor = install_reactor()
    from ccserver.logs import setup_logging

    # Logged as `ccserver run` logs (INFO: one line per routed call) into a file, as a service's stderr would be.
    setup_logging("INFO")
    import redis.asyncio as aioredis
    from twisted.internet.threads import deferToThreadPool

    from ccserver.agi import FastAGIFactory, listen_fastagi
    from ccserver.bridge import as_deferred
    from ccserver.callrouting import RoutingRuntime
    from ccserver.config import load_config
    from ccserver.customers.cache import RedisSummaryCache
    from ccserver.db.engine import make_engine, session_factory

    config = load_config(environ={"CCSERVER_DATABASE_URL": url, "CCSERVER_REDIS_URL": redis_url})
    sessions = session_factory(make_engine(url))
    pool = reactor.getThreadPool()
    pool.adjustPoolsize(4, 16)

    def run_blocking(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return deferToThreadPool(reactor, pool, fn, *args, **kwargs)

    from ccserver.customers.resp import RespClient

    # The clients as `ccserver run` makes them (server.py: 1 s socket timeouts; lookups on the Twisted client).
    # With --library, the pieces named there use the maintained client instead (A/B: see run_ab).
    call_path = None if "redis" in library else RespClient.for_url(reactor, redis_url)
    if "redis" in library:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.utils import HIREDIS_AVAILABLE

        # Bounded like the Twisted client (no retries: connect 0.5 s + reply 0.5 s), so no timer per call.
        client = aioredis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                         retry=Retry(NoBackoff(), 0))
        cache = RedisSummaryCache(client, lookup_timeout=1.0)
        print(f"bench_route: call-path Redis through redis.asyncio (hiredis: {HIREDIS_AVAILABLE})", file=sys.stderr)
    else:
        cache = RedisSummaryCache(aioredis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0),
                                  call_path=call_path)
    routing = RoutingRuntime.from_config(config, sessions, reactor=reactor, run_blocking=run_blocking, cache=cache)

    async def stats(session: Any) -> None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        loop = time.thread_time()  # the reactor thread; the rest is worker threads (SQL) and Redis/asyncio helpers
        if os.environ.get("BENCH_ROUTE_THREADS"):
            import threading

            per = {t.name: time.clock_gettime(time.pthread_getcpuclockid(t.ident)) for t in threading.enumerate()
                   if t.ident is not None}
            print("threads", {k: round(v, 3) for k, v in sorted(per.items())}, file=sys.stderr, flush=True)
        await session.verbose(f"cpu={ru.ru_utime + ru.ru_stime:.6f} sys={ru.ru_stime:.6f} loop={loop:.6f}")

    # BENCH_ROUTE_PROFILE=path: cProfile of the reactor thread, written at exit; BENCH_ROUTE_PROFILE_PHASE=hit
    # (or miss, warm) limits it to that phase (the client brackets the phase with `profile` sessions).
    import cProfile

    profile_path = os.environ.get("BENCH_ROUTE_PROFILE")
    cpu_clock = os.environ.get("BENCH_ROUTE_PROFILE_CPU")
    profiler = cProfile.Profile(time.thread_time) if cpu_clock else cProfile.Profile()

    async def profile(session: Any) -> None:
        profiler.enable() if session.args and session.args[0] == "on" else profiler.disable()
        await session.verbose("ok")

    factory = FastAGIFactory({**routing.handlers(), "stats": stats, "profile": profile}, clock=reactor)
    port: Any = listen_fastagi(reactor, factory, 0)

    steps_path = os.environ.get("BENCH_ROUTE_STEPS")
    trace_steps, dump_steps = _step_trace(steps_path) if steps_path else (None, None)

    def ready(_: Any) -> None:
        if trace_steps is not None:
            trace_steps()
        Path(port_file + ".tmp").write_text(str(port.getHost().port))
        os.rename(port_file + ".tmp", port_file)

    def start() -> None:
        if call_path is not None:
            call_path.start()
        as_deferred(routing.start()).addCallback(freeze_startup_objects).addCallback(
            lambda _: call_path.when_connected() if call_path is not None else None).addCallback(ready)

    reactor.callLater(0, start)
    # As `ccserver run` does at shutdown: flush the decisions still buffered (the client counts the rows).
    reactor.addSystemEventTrigger("before", "shutdown", lambda: as_deferred(routing.stop()))
    # SIGTERM (the client's terminate()) stops the reactor, so reactor.run() returns and a profile is written.
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    if profile_path and not os.environ.get("BENCH_ROUTE_PROFILE_PHASE"):
        profiler.enable()
    try:
        reactor.run(installSignalHandlers=False)
    finally:
        if profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)
        if dump_steps is not None:
            dump_steps()


# -- the client (plays Asterisk) -----------------------------------------------------------------------------------
def _env_block(port: int, script: str, caller: str, uniqueid: str, arg: str | None = None) -> bytes:
    args = f"agi_arg_1: {arg}\n" if arg is not None else ""
    return (f"agi_network: yes\nagi_network_script: {script}\nagi_request: agi://127.0.0.1:{port}/{script}\n"
            f"agi_channel: PJSIP/trunk-{uniqueid}\nagi_language: zh\nagi_type: PJSIP\nagi_uniqueid: {uniqueid}\n"
            f"agi_version: 20.0.0\nagi_callerid: {caller}\nagi_calleridname: Bench\nagi_callingpres: 0\n"
            f"agi_dnid: unknown\nagi_rdnis: unknown\nagi_context: ccserver-inbound\nagi_extension: {DID}\n"
            f"agi_priority: 6\nagi_enhanced: 0.0\nagi_accountcode: \nagi_threadid: 1\n{args}\n").encode()


def _call(port: int, script: str, caller: str, uniqueid: str, arg: str | None = None) -> tuple[float, str]:
    """One FastAGI session; (seconds from first byte sent to the first command received, that command)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        t0 = time.perf_counter()
        sock.sendall(_env_block(port, script, caller, uniqueid, arg))
        line = reader.readline()
        elapsed = time.perf_counter() - t0
        sock.sendall(b"200 result=1\n")
        while reader.readline():  # until the server closes: the session is over
            sock.sendall(b"200 result=1\n")
    return elapsed, line.decode().rstrip("\n")


def _server_cpu(port: int) -> tuple[float, float, float]:
    """(user + system, system, reactor thread) CPU seconds of the server process so far."""
    _, line = _call(port, "stats", "", "stats")
    fields = dict(part.split("=", 1) for part in line.split('"', 2)[1].split())
    return float(fields["cpu"]), float(fields["sys"]), float(fields["loop"])


def _pcts(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1e3, 3),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3, 3),
            "mean_ms": round(statistics.fmean(ordered) * 1e3, 3), "over_1ms": sum(x > 1e-3 for x in ordered),
            "over_5ms": sum(x > 5e-3 for x in ordered)}


def _phase(port: int, callers: list[str], tag: str, sink: list[float] | None = None) -> dict[str, Any]:
    """One phase's figures; ``sink`` also gets each call's latency."""
    dump = os.environ.get("BENCH_ROUTE_DUMP")
    profiled = os.environ.get("BENCH_ROUTE_PROFILE") and os.environ.get("BENCH_ROUTE_PROFILE_PHASE") == tag
    if profiled:
        _call(port, "profile", "", "profile", "on")
    cpu0 = _server_cpu(port)
    latencies = []
    for i, caller in enumerate(callers):
        # As the shipped dialplan calls it: AGI(agi://…/incoming,${CC_CAMPAIGN_ID}), empty for inbound calls.
        elapsed, line = _call(port, "incoming", caller, f"{tag}.{i}", "")
        if not line.startswith("EXEC MSet ") or "CC_TIER=" not in line:
            raise RuntimeError(f"unexpected answer to {caller}: {line!r}")
        latencies.append(elapsed)
    cpu1 = _server_cpu(port)
    cpu, kernel, loop = (b - a for a, b in zip(cpu0, cpu1, strict=True))
    if profiled:
        _call(port, "profile", "", "profile", "off")
    if dump:
        Path(f"{dump}.{tag}").write_text("\n".join(f"{x:.6f}" for x in latencies))
    if sink is not None:
        sink.extend(latencies)
    return {"calls": len(callers), **_pcts(latencies), "server_cpu_ms_per_call": round(cpu / len(callers) * 1e3, 3),
            "of_which_kernel_ms": round(kernel / len(callers) * 1e3, 3),
            "of_which_reactor_thread_ms": round(loop / len(callers) * 1e3, 3)}


def _floor(redis_url: str, callers: list[str]) -> dict[str, Any]:
    """The peer: one phonenumbers parse and one Redis GET per call, nothing else."""
    import phonenumbers
    import redis

    client = redis.Redis.from_url(redis_url)
    client.set("bench:floor", "x")
    latencies = []
    for caller in callers:
        t0 = time.perf_counter()
        phonenumbers.parse(caller, "CN")
        client.get("bench:floor")
        latencies.append(time.perf_counter() - t0)
    client.close()
    return {"calls": len(callers), **_pcts(latencies)}


def _national(e164: str) -> str:
    """How a carrier presents the number to Asterisk: national digits, trunk 0 before landline area codes."""
    import phonenumbers

    parsed = phonenumbers.parse(e164)
    digits = phonenumbers.national_significant_number(parsed)
    mobile = phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
    return digits if mobile else "0" + digits


def _settle(url: str, schema: str) -> None:
    """Let the freshly loaded database reach the steady state a production one is in before anything is measured:
    vacuumed and analyzed (else autovacuum works through the 8.8 M new rows during the calls) and checkpointed
    (else the load's WAL is flushed during them)."""
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        tables = conn.execute(sqlalchemy.text("select tablename from pg_tables where schemaname = :s"),
                              {"s": schema}).scalars().all()
        for table in tables:
            conn.execute(sqlalchemy.text(f'VACUUM (ANALYZE) "{schema}"."{table}"'))
        try:
            conn.execute(sqlalchemy.text("CHECKPOINT"))
        except sqlalchemy.exc.DBAPIError as exc:  # not a superuser: the checkpoint comes when it comes
            print(f"bench_route: no CHECKPOINT ({exc.orig})", file=sys.stderr)
    engine.dispose()


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure as the median over the rounds (this machine's speed varies between runs), with the p99 range."""
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    out: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["calls"] = sum(r["calls"] for r in runs)
    out["p99_ms_range"] = [min(r["p99_ms"] for r in runs), max(r["p99_ms"] for r in runs)]
    return out


def run(customers: int = 1_000_000, calls: int = 2_000, url: str = DEFAULT_URL, redis_url: str = DEFAULT_REDIS,
        schema: str | None = None, rounds: int = 5) -> dict[str, Any]:
    from benchmarks import bench_demo_load

    made_here = schema is None
    if schema is None:
        schema = bench_demo_load.run(customers, url, keep=True, quiet=True)["schema"]
    sep = "&" if "?" in url else "?"
    schema_url = f"{url}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        if made_here:
            _settle(url, schema)
        engine = sqlalchemy.create_engine(schema_url)
        with engine.connect() as conn:
            total = conn.execute(sqlalchemy.text("select count(*) from customers")).scalar_one()
            decisions_before = conn.execute(sqlalchemy.text("select count(*) from routing_decisions")).scalar_one()
            numbers = [row[0] for row in conn.execute(sqlalchemy.text(
                "select p.e164 from phone_numbers p join customer_phones cp on cp.phone_id = p.id "
                "where p.e164 like '+86%' order by p.id"))]
        engine.dispose()
        rng = random.Random(7)
        picked = [_national(n) for n in rng.sample(numbers, min(len(numbers), rounds * calls + 300))]
        warmup = picked[:300]
        batches = [picked[300 + i * calls:300 + (i + 1) * calls] for i in range(rounds)]  # new numbers each round

        import redis

        redis.Redis.from_url(redis_url).flushdb()
        port_file = Path(tempfile.mkdtemp(prefix="bench_route.")) / "port"
        server_log = open(port_file.parent / "server.log", "wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_route", "--serve", schema_url,
                                   "--redis", redis_url, "--port-file", str(port_file)], cwd=ROOT,
                                  stderr=server_log)
        try:
            deadline = time.monotonic() + 60
            while not port_file.exists():
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the routing server did not start")
                time.sleep(0.05)
            port = int(port_file.read_text())
            _phase(port, warmup, "warm")  # connection pool, prepared statements, imports
            misses, hits = [], []
            for batch in batches:  # each round: its numbers' first calls (miss), then the same again (hit)
                misses.append(_phase(port, batch, "miss"))
                hits.append(_phase(port, batch, "hit"))
        finally:
            server.terminate()
            server.wait(timeout=30)
            server_log.close()
            log_path = port_file.parent / "server.log"
            logged = log_path.read_text(errors="replace").splitlines()
            routed = sum(" route uniqueid=" in line for line in logged)
            for line in logged:
                if line.startswith("threads "):
                    print(line, file=sys.stderr)
            first = next((i for i, line in enumerate(logged) if " ERROR " in line or "Traceback" in line), None)
            problems = [] if first is None else logged[first:first + 40]
            if server.returncode not in (0, -signal.SIGTERM):
                problems = logged[-30:]  # the server died: show how
            if problems:
                print("\n".join(problems[:20]), file=sys.stderr)
            log_path.unlink()
            port_file.unlink(missing_ok=True)
            port_file.parent.rmdir()
        with engine.connect() as conn:
            decisions = conn.execute(sqlalchemy.text("select count(*) from routing_decisions")).scalar_one()
        engine.dispose()
        recorded = decisions - decisions_before
        routed_calls = len(warmup) + 2 * sum(len(b) for b in batches)
        if recorded != routed_calls:
            raise RuntimeError(f"{recorded} decision rows written for {routed_calls} calls")
        floors = [_floor(redis_url, batch) for batch in batches]
        redis.Redis.from_url(redis_url).flushdb()
    finally:
        if made_here:
            admin = sqlalchemy.create_engine(url)
            with admin.begin() as conn:
                conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    miss, hit, floor = _median_run(misses), _median_run(hits), _median_run(floors)
    return {"customers": total, "rounds": rounds, "miss": miss, "hit": hit, "floor": floor,
            "runs": {"miss": misses, "hit": hits, "floor": floors}, "route_log_lines": routed,
            "decision_rows": recorded,
            "calls_per_s_one_core_hit": round(1000 / hit["server_cpu_ms_per_call"])}


def _start_server(schema_url: str, redis_url: str, library: frozenset[str]) -> tuple[subprocess.Popen[bytes], int,
                                                                                  Path]:
    port_file = Path(tempfile.mkdtemp(prefix="bench_route.")) / "port"
    server_log = open(port_file.parent / "server.log", "wb")  # noqa: SIM115 - the child holds it
    command = [sys.executable, "-m", "benchmarks.bench_route", "--serve", schema_url, "--redis", redis_url,
               "--port-file", str(port_file), "--library", ",".join(sorted(library))]
    server = subprocess.Popen(command, cwd=ROOT, stderr=server_log)
    server_log.close()
    deadline = time.monotonic() + 60
    while not port_file.exists():
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError(f"the routing server did not start: {(port_file.parent / 'server.log').read_text()}")
        time.sleep(0.05)
    return server, int(port_file.read_text()), port_file


def run_ab(customers: int = 100_000, calls: int = 1_000, url: str = DEFAULT_URL, redis_url: str = DEFAULT_REDIS,
           schema: str | None = None, rounds: int = 6,
           variants: dict[str, frozenset[str]] | None = None) -> dict[str, Any]:
    """Library against ours, side by side in one run on the same data: one server per variant (all running at
    once), each round every variant gets its own new numbers — a miss phase, then the same numbers again (hit)
    — in alternating order, so the shared machine's drift falls on all alike. Medians over the rounds."""
    from benchmarks import bench_demo_load

    variants = variants or {"ours": frozenset(), "library": frozenset(LIBRARY_PIECES)}
    made_here = schema is None
    if schema is None:
        schema = bench_demo_load.run(customers, url, keep=True, quiet=True)["schema"]
    sep = "&" if "?" in url else "?"
    schema_url = f"{url}{sep}options={quote(f'-csearch_path={schema}')}"
    servers: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
    try:
        if made_here:
            _settle(url, schema)
        engine = sqlalchemy.create_engine(schema_url)
        with engine.connect() as conn:
            total = conn.execute(sqlalchemy.text("select count(*) from customers")).scalar_one()
            decisions_before = conn.execute(sqlalchemy.text("select count(*) from routing_decisions")).scalar_one()
            numbers = [row[0] for row in conn.execute(sqlalchemy.text(
                "select p.e164 from phone_numbers p join customer_phones cp on cp.phone_id = p.id "
                "where p.e164 like '+86%' order by p.id"))]
        names = list(variants)
        need = len(names) * (rounds * calls + 300)
        picked = [_national(n) for n in random.Random(7).sample(numbers, min(len(numbers), need))]
        if len(picked) < need:
            raise RuntimeError(f"{len(picked)} numbers for {need} calls: use more customers or fewer calls")
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        for name in names:
            servers[name] = _start_server(schema_url, redis_url, variants[name])
        results: dict[str, dict[str, list[dict[str, Any]]]] = {n: {"miss": [], "hit": []} for n in names}
        pooled: dict[str, dict[str, list[float]]] = {n: {"miss": [], "hit": []} for n in names}
        cursor = 0
        for name in names:  # warm-up: connections, prepared statements, imports
            _phase(servers[name][1], picked[cursor:cursor + 300], "warm")
            cursor += 300
        for r in range(rounds):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                batch = picked[cursor:cursor + calls]
                cursor += calls
                port = servers[name][1]
                results[name]["miss"].append(_phase(port, batch, "miss", pooled[name]["miss"]))
                results[name]["hit"].append(_phase(port, batch, "hit", pooled[name]["hit"]))
                miss, hit = results[name]["miss"][-1], results[name]["hit"][-1]
                load = os.getloadavg()[0]
                print(f"round {r + 1} {name}: miss p99 {miss['p99_ms']} ms cpu {miss['server_cpu_ms_per_call']} ms; "
                      f"hit p99 {hit['p99_ms']} ms cpu {hit['server_cpu_ms_per_call']} ms (load {load:.2f})",
                      file=sys.stderr, flush=True)
    finally:
        for name, (server, _, port_file) in servers.items():
            server.terminate()
            server.wait(timeout=30)
            log_path = port_file.parent / "server.log"
            logged = log_path.read_text(errors="replace").splitlines()
            problems = [line for line in logged if " ERROR " in line or "Traceback" in line or "bench_route:" in line]
            if problems:
                print(f"[{name}]", "\n".join(problems[:10]), file=sys.stderr)
            log_path.unlink()
            port_file.unlink(missing_ok=True)
            port_file.parent.rmdir()
        if made_here:
            admin = sqlalchemy.create_engine(url)
            with admin.begin() as conn:
                conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    with engine.connect() as conn:
        recorded = conn.execute(sqlalchemy.text("select count(*) from routing_decisions")).scalar_one() \
            - decisions_before if not made_here else None
    engine.dispose()
    out: dict[str, Any] = {"customers": total, "rounds": rounds, "calls_per_phase": calls,
                           "variants": {n: sorted(v) for n, v in variants.items()}}
    for name in names:  # medians over the rounds, and every call of the variant taken together ("all_calls")
        out[name] = {phase: {**_median_run(results[name][phase]), "all_calls": _pcts(pooled[name][phase])}
                     for phase in ("miss", "hit")}
    out["runs"] = results
    if recorded is not None:
        out["decision_rows"] = recorded
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", metavar="URL")
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--port-file")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--schema", help="reuse a schema already holding demo data (kept)")
    parser.add_argument("--library", default="", help=f"serve with these pieces on the library: {LIBRARY_PIECES}")
    parser.add_argument("--ab", action="store_true", help="library against ours, side by side (run_ab)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=piece,piece (A/B variants; default: ours= and library=redis)")
    args = parser.parse_args()
    if args.serve:
        library = frozenset(p for p in args.library.split(",") if p)
        if library - set(LIBRARY_PIECES):
            parser.error(f"--library: unknown pieces {sorted(library - set(LIBRARY_PIECES))}")
        serve(args.serve, args.redis, args.port_file, library)
    elif args.ab:
        variants = {v.split("=", 1)[0]: frozenset(p for p in v.split("=", 1)[1].split(",") if p)
                    for v in args.variant} or None
        result = run_ab(args.customers, args.calls, redis_url=args.redis, schema=args.schema,
                        rounds=args.rounds or 6, variants=variants)
        print(json.dumps(result, indent=2))
    else:
        print(json.dumps(run(args.customers, args.calls, redis_url=args.redis, schema=args.schema,
                             rounds=args.rounds or 5), indent=2))


if __name__ == "__main__":
    main()
