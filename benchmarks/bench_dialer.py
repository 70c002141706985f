"""The dialer's hot paths and the pacing simulation.

    python -m benchmarks.bench_dialer [--contacts 1000000] [--seconds 30] [--only sqlite|postgresql|memory|…]
                                      [--prewrite SECONDS]

- **next-contact selection**: a campaign of ``contacts`` targets (random tiers, due dates, a fifth of them not due
  yet), tiers first; each measured call is :func:`ccserver.campaigns.planner.pick` of one contact through the
  compliance gate (window in the callee's zone, DNC, consent, attempts, spacing) — what the dialer does per line.
  Target: p99 ≤ 1 ms.
- **Originates per second**: the real :class:`ccserver.dialer.engine.Dialer` on the asyncio loop (real clock,
  tick 2 ms; its attempt rows written ahead, ``campaigns.prewrite_seconds`` — ``--prewrite 0`` writes each line in its
  tick, before its Originate, as the dialer did before), a SQLite database (SQL in one worker thread, off the loop
  as in ``ccserver run``), an originator that answers "no answer" after 300 ms, and a floor that owes one line
  every 10 ms (line k due at start + k/100 s).
  Pacing error = when Originate k left − when line k was due. Target: 100/s sustained, p99 ≤ 10 ms. The same on
  PostgreSQL (TEST_DATABASE_URL, a private schema, 8 SQL threads), and with the store in memory: the dialer's
  own path (pacing, gate, leases, Originate) without SQL.
- **simulation**: ``ccserver dialer simulate`` progressive and predictive side by side (20 agents, answer rate
  0.3, 8 hours, lognormal handle time of mean 240 s). Target: predictive ≥ 80 % occupancy at ≤ 3 % abandon.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ccserver.campaigns.compliance import Contact
from ccserver.campaigns.planner import CampaignRules
from ccserver.campaigns.selection import Target, TargetQueue
from ccserver.campaigns.windows import CallingWindow

MORNING = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Contacts(Mapping[int, Contact]):
    """A million contacts without a million objects: made when the gate asks (as a SQL row would be)."""

    def __init__(self, n: int, rng: random.Random) -> None:
        self.n = n
        self.flags = bytes(rng.randrange(256) for _ in range(n))
        self.zone = (ZoneInfo("Asia/Shanghai"),)

    def __getitem__(self, key: int) -> Contact:
        f = self.flags[key]
        # ~1 in 32 on a customer's DNC, ~1 in 8 without consent (only matters for marketing types)
        return Contact(f"+86139{key:08d}", "maintenance", self.zone, do_not_call=f % 32 == 0, consent=f % 8 != 1,
                       attempts=f % 3 if f % 5 == 0 else 0)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n


def selection(contacts: int = 1_000_000, picks: int = 20_000, seed: int = 1) -> dict[str, Any]:
    from ccserver.campaigns.planner import pick

    rng = random.Random(seed)
    tiers = ("diamond", "gold", "silver", "bronze", "prospect")
    now = MORNING.timestamp()
    began = time.perf_counter()
    queue = TargetQueue((Target(i, i, rng.choice(tiers), rng.uniform(0, 1e6),
                                now + rng.uniform(0, 86400) if rng.random() < 0.2 else 0.0)
                         for i in range(contacts)), tiers_first=True)
    built = time.perf_counter() - began
    book = _Contacts(contacts, rng)
    rules = CampaignRules(CallingWindow())
    dnc = {f"+86139{rng.randrange(contacts):08d}" for _ in range(10_000)}
    latencies = []
    got = 0
    for _ in range(picks):
        t0 = time.perf_counter()
        chosen = pick(queue, book, rules, dnc, MORNING, 1)
        latencies.append((time.perf_counter() - t0) * 1e6)
        got += len(chosen)
    return {"contacts": contacts, "picks": picks, "picked": got, "build_s": round(built, 2),
            "median_us": round(statistics.median(latencies), 1), "p99_us": round(_pct(latencies, 0.99), 1),
            "max_us": round(max(latencies), 1)}


class _MemoryStore:
    """The DialerStore's shape in memory: the dialer's own path without SQL (the peer row of the benchmark)."""

    def __init__(self, real: Any) -> None:
        self.campaigns = real.running_campaigns()
        self.targets = {c.id: real.open_targets(c.id) for c in self.campaigns}
        self.active: set[int] = set()

    def running_campaigns(self) -> Any:
        return self.campaigns

    def open_targets(self, campaign_id: int) -> Any:
        return self.targets[campaign_id]

    def dnc_numbers(self) -> set[str]:
        return set()

    def begin_attempts(self, rows: list[Any], *, sent: bool = True) -> set[str]:
        began = set()
        for row in rows:
            if row[1] not in self.active:
                self.active.add(row[1])
                began.add(row[3])
        return began

    def prepare_attempts(self, rows: list[Any]) -> set[str]:
        return self.begin_attempts(rows, sent=False)

    def settle(self, sent: list[Any], finished: list[Any], unsent: list[Any]) -> None:
        return None

    def release_unsent(self, items: list[Any]) -> None:
        return None

    def preview_outstanding(self) -> list[Any]:
        return []

    def release_undisposed(self, *a: Any) -> None:
        return None

    def finish_attempts(self, items: list[Any]) -> None:
        return None

    def finish_attempt(self, *a: Any, **k: Any) -> None:
        return None

    def drop_target(self, *a: Any) -> None:
        return None

    def answered(self, *a: Any) -> None:
        return None

    def unsettled(self, node: str | None = None, before: Any = None) -> list[Any]:
        return []


def _postgres_url() -> tuple[str, Any]:
    """A private schema in the test PostgreSQL (TEST_DATABASE_URL); returns (url, drop)."""
    import os
    import secrets
    from urllib.parse import quote

    import sqlalchemy

    base = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
    schema = "bench_" + secrets.token_hex(4)
    engine = sqlalchemy.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"create schema {schema}"))

    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"drop schema {schema} cascade"))
        engine.dispose()

    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}", drop


def originates(seconds: float = 30.0, rate: int = 100, *, sql: bool = True, backend: str = "sqlite",
               prewrite: float | None = None) -> dict[str, Any]:
    from ccserver.clock import LoopClock
    from ccserver.db.models import Campaign, CampaignTarget
    from ccserver.dialer.engine import Dialer
    from ccserver.dialer.leases import MemoryContactLeases
    from ccserver.dialer.store import DialerStore
    from tests.dialer_support import database

    n = int(seconds * rate) + rate
    drop = None
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "postgresql":
            url, drop = _postgres_url()
        else:
            url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        sessions = database(url)
        with sessions.begin() as s:
            c = Campaign(name="bench", type="return_visit", mode="progressive", status="running", queue="sales",
                         store_id=1, window={"start": "00:00", "end": "23:59"}, targets_spec={},
                         tiers_first=False, max_attempts=1)
            s.add(c)
            s.flush()
            s.bulk_insert_mappings(CampaignTarget, [  # type: ignore[arg-type]
                {"campaign_id": c.id, "customer_id": None, "e164": f"+86139{i:08d}", "status": "pending",
                 "attempts": 0} for i in range(n)])
        sent: list[float] = []
        start: list[float] = []
        paths: list[float] = []  # from the start of its tick to the Originate: the send's own path
        ticked = [0.0]

        def owed(now: float) -> int:
            """Lines the schedule owes by now: one every 1/rate s from the first tick."""
            if not start:
                start.append(time.monotonic())
            return max(0, int((time.monotonic() - start[0]) * rate) + 1 - len(sent))

        class Fast:
            def __init__(self) -> None:
                self.n = 0

            def new_action_id(self, server: str) -> str:
                self.n += 1
                return f"bench-{self.n}"

            def originate(self, server: str, channel: str, **kwargs: Any) -> Any:
                sent.append(time.monotonic())
                paths.append(sent[-1] - ticked[0])
                return self._later()

            async def _later(self) -> Any:
                await asyncio.sleep(0.3)

                class R:
                    outcome, answered, uniqueid = "no_answer", False, None
                return R()

        from concurrent.futures import ThreadPoolExecutor

        # SQL off the loop: one SQLite writer (no lock contention), or a pool like ccserver run's on PostgreSQL
        pool = ThreadPoolExecutor(8 if backend == "postgresql" else 1, "bench-sql")

        async def in_thread(fn: Any, *a: Any, **k: Any) -> Any:
            return await asyncio.get_running_loop().run_in_executor(pool, lambda: fn(*a, **k))

        from ccserver.campaigns.settings import CampaignSettings
        from ccserver.campaigns.windows import CallingWindow as Window

        settings = CampaignSettings(window=Window(datetime.min.time(), datetime.max.time().replace(microsecond=0)))
        if prewrite is not None:
            settings = replace(settings, prewrite_seconds=prewrite)
        store: Any = DialerStore(sessions) if sql else _MemoryStore(DialerStore(sessions))
        dialer = Dialer(store, Fast(), MemoryContactLeases(), run_blocking=in_thread,
                        settings=settings, clock=LoopClock(), tick=0.002, refresh=3600.0,
                        default_zone="UTC",
                        floor=lambda q, s, now: (sum(1 for v in dialer.live.values() if v.answered_at is None)
                                                 + owed(now), []))

        real_tick = dialer.tick

        async def timed_tick(**kw: Any) -> int:
            ticked[0] = time.monotonic()
            return await real_tick(**kw)

        dialer.tick = timed_tick  # type: ignore[method-assign]
        loop_cpu = [0.0]

        async def main() -> None:
            await dialer.refresh()
            cpu0 = time.thread_time()  # the loop thread's CPU (SQL runs in the pool's threads)
            await dialer.start()
            await asyncio.sleep(seconds)
            loop_cpu[0] = time.thread_time() - cpu0
            await dialer.stop()
            await asyncio.sleep(0.5)

        asyncio.run(main())
        pool.shutdown()
        sessions.kw["bind"].dispose()
    if drop is not None:
        drop()
    errors = [(at - (start[0] + k / rate)) * 1000 for k, at in enumerate(sent)]
    steady = errors[rate * 2:]  # after the first two seconds (the reserve's ramp)
    span = sent[-1] - sent[0] if len(sent) > 1 else 0.0
    return {"sql": sql, "backend": backend if sql else "memory", "prewrite_seconds": settings.prewrite_seconds,
            "seconds": seconds, "target_rate": rate,
            "sent": len(sent),
            "rate": round((len(sent) - 1) / span, 1) if span else 0.0,
            "error_median_ms": round(statistics.median(errors), 3), "error_p99_ms": round(_pct(errors, 0.99), 3),
            "error_max_ms": round(max(errors), 3),
            "steady_error_p99_ms": round(_pct(steady, 0.99), 3) if steady else None,
            "path_median_ms": round(statistics.median(paths) * 1000, 3),
            "path_p99_ms": round(_pct(paths, 0.99) * 1000, 3),
            "lines": dict(dialer.lines), "loop_cpu_ms_per_originate": round(loop_cpu[0] * 1000 / max(1, len(sent)), 3),
            "error_by_second_p99_ms": [round(_pct(errors[i:i + rate], 0.99), 1) for i in range(0, len(errors), rate)]}


def simulation(seed: int = 1, hours: float = 8.0) -> dict[str, Any]:
    from ccserver.dialer.simulate import simulate

    out = {}
    for mode in ("progressive", "predictive"):
        r = simulate(agents=20, answer_rate=0.3, hours=hours, mode=mode, seed=seed)
        out[mode] = {"occupancy": round(r.occupancy, 4), "abandon_rate": round(r.abandon_rate, 4),
                     "worst_hour": round(r.max_hourly_abandon_rate, 4), "dialed": r.dialed, "answered": r.answered,
                     "connected": r.connected, "abandoned": r.abandoned}
    return out


def run(contacts: int = 1_000_000, seconds: float = 30.0) -> dict[str, Any]:
    return {"selection": selection(contacts), "originates": originates(seconds),
            "originates_pg": originates(seconds, backend="postgresql"),
            "originates_no_sql": originates(seconds, sql=False), "simulation": simulation()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--only", choices=("selection", "sqlite", "postgresql", "memory", "simulation"),
                        help="one part only (the Originates rows: sqlite, postgresql, memory)")
    parser.add_argument("--prewrite", type=float, default=None,
                        help="campaigns.prewrite_seconds for the Originates rows (default: the shipped value)")
    args = parser.parse_args()
    if args.only is None:
        out = run(args.contacts, args.seconds)
    elif args.only == "selection":
        out = selection(args.contacts)
    elif args.only == "simulation":
        out = simulation()
    else:
        out = originates(args.seconds, sql=args.only != "memory",
                         backend="postgresql" if args.only == "postgresql" else "sqlite", prewrite=args.prewrite)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
