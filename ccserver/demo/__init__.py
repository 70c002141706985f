"""Demo data: a realistic, deterministic dealer group to try ccserver on (``ccserver demo-data``)."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, func, select, text

from ccserver.customers.scores import record_cutoffs, settle_tiers
from ccserver.db import migrate
from ccserver.db.engine import make_engine
from ccserver.db.models import Base, Customer, DealerGroup, User
from ccserver.demo.generator import DemoGenerator
from ccserver.demo.kpi_history import kpi_history
from ccserver.demo.loader import PostgresCopyWriter, SqliteWriter, fix_sequences, insert_dicts
from ccserver.passwords import hash_password
from routing.value import TierShares, ValueWeights

__all__ = ["DemoDataExists", "demo_password_for", "describe", "generate", "has_demo_data"]

Progress = Callable[[int, int], None]


class DemoDataExists(RuntimeError):
    """The database already holds data; pass replace=True to wipe it first."""


def demo_password_for(seed: int) -> str:
    """The shared password of the generated staff logins: readable, and the same for the same seed."""
    return f"demo-{random.Random(f'demo-password:{seed}').randrange(10_000, 100_000)}"


def generate(
    url: str,
    customers: int = 10_000,
    seed: int = 1,
    as_of: date | None = None,
    agent_interface: str = "PJSIP/{ext}",
    admin_password: str = "admin",  # noqa: S107 - the documented demo login, printed in the summary
    demo_password: str | None = None,
    progress: Progress | None = None,
    *,
    replace: bool = False,
    kpi_days: int = 0,
    kpi_thresholds: tuple[float, float] = (20.0, 5.0),
    batch_size: int = 5000,
    weights: ValueWeights | None = None,
    shares: TierShares | None = None,
) -> dict[str, Any]:
    """Load the demo dealer group into ``url`` (migrating it to head first) and return a summary.

    The rows depend only on (customers, seed, as_of, agent_interface, weights, shares); ``as_of`` defaults to
    today, which is the one place the clock is read. Refuses with DemoDataExists when the database already has
    data, unless ``replace`` — which deletes every row of every ccserver table first.

    Scores and tiers end as a full recompute (``ccserver scores recompute`` as of ``as_of`` with these
    ``weights`` and ``shares``) would leave them: the generator scores every customer on the facts SQL will
    read, the tiers the base's own cut-offs change are rewritten at the end (``scores.settle_tiers``), and the
    cut-offs are recorded in ``value_cutoffs`` — so single rescores and the nightly run start from them.

    ``kpi_days``: that many days of queue and agent KPI intervals before ``as_of`` (``demo.kpi_history``), so
    the reports and the wallboard's "yesterday" have figures before any call was made; none by default.
    ``kpi_thresholds``: (service-level seconds, short-abandon seconds) they are counted with (``kpi.*``).
    """
    started = time.perf_counter()
    as_of = as_of or date.today()
    demo_password = demo_password or demo_password_for(seed)
    weights, shares = weights or ValueWeights(), shares or TierShares()
    # validates arguments before any I/O
    if kpi_days < 0:
        raise ValueError("kpi_days must not be negative")
    gen = DemoGenerator(customers, seed, as_of, agent_interface, weights=weights, shares=shares)
    if migrate.schema_status(url) != "up_to_date":
        migrate.upgrade(url)
    engine = make_engine(url)
    is_pg = engine.dialect.name == "postgresql"
    counts: Counter[str] = Counter()
    try:
        with engine.begin() as conn:
            _check_empty(conn, replace)
            # One hash each, shared by every demo login: scrypt costs ~50 ms per call.
            ref = gen.reference_tables(hash_password(admin_password), hash_password(demo_password))
            for table, rows in ref:
                insert_dicts(conn, table, rows)
                counts[table] += len(rows)
            if kpi_days:
                tables = dict(ref)
                history = kpi_history(tables["queues"], tables["users"], as_of, kpi_days, seed,
                                      sl_seconds=kpi_thresholds[0], short_abandon_seconds=kpi_thresholds[1])
                for table, rows in zip(("kpi_queue_intervals", "kpi_agent_intervals"), history, strict=True):
                    insert_dicts(conn, table, rows)
                    counts[table] += len(rows)
            writer = PostgresCopyWriter(conn) if is_pg else SqliteWriter(conn)
            writer.begin()
            done = 0
            if progress:
                progress(0, customers)
            for batch in gen.batches(batch_size):
                for table, tuples in batch.rows.items():
                    writer.write(table, tuples)
                    counts[table] += len(tuples)
                done += batch.customers
                if progress:
                    progress(done, customers)
            # Before the indexes come back (PostgreSQL): the few tier updates then touch the table alone.
            scored = gen.scored
            cut, tiers, retiered = settle_tiers(conn, scored.ids, scored.totals, scored.codes, shares)
            record_cutoffs(conn, cut, weights, shares, computed_at=datetime.now(UTC), source="demo-data",
                           as_of=as_of.isoformat(), customers=len(scored.ids), seed=seed)
            writer.finish()
            if is_pg:
                fix_sequences(conn)
    finally:
        engine.dispose()
    elapsed = time.perf_counter() - started
    return {
        "backend": "postgresql" if is_pg else "sqlite",
        "seed": seed,
        "as_of": as_of.isoformat(),
        "customers": counts["customers"],
        "rows": dict(counts),
        "total_rows": sum(counts.values()),
        "tiers": tiers,
        "retiered": retiered,
        "elapsed_seconds": round(elapsed, 2),
        "logins": _logins(gen, admin_password, demo_password),
    }


def has_demo_data(url: str) -> bool:
    """Whether the (migrated) database already holds a dealer group."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(select(func.count()).select_from(DealerGroup)).scalar_one())
    finally:
        engine.dispose()


def describe(summary: dict[str, Any]) -> str:
    """What a person needs after a load: how much was loaded and how to log in."""
    logins = summary["logins"]
    return "\n".join([
        f"demo data: {summary['total_rows']:,} rows ({summary['customers']:,} customers) "
        f"in {summary['elapsed_seconds']} s, as of {summary['as_of']}, seed {summary['seed']}",
        f"  admin login:      admin / {logins['admin']['password']}",
        f"  agents:           {logins['agents']}",
        f"  supervisors:      {', '.join(logins['supervisors'])}",
        f"  department:       {', '.join(logins['department'])}",
        f"  campaign manager: {', '.join(logins['campaign_manager'])}",
        f"  demo password:    {logins['demo_password']}  (every login except admin)",
    ])


def _check_empty(conn: Connection, replace: bool) -> None:
    present = {
        name: conn.execute(select(func.count()).select_from(model)).scalar_one()
        for name, model in (("dealer groups", DealerGroup), ("users", User), ("customers", Customer))
    }
    if not any(present.values()):
        return
    if not replace:
        held = ", ".join(f"{n} {name}" for name, n in present.items() if n)
        raise DemoDataExists(f"the database already holds data ({held}); pass replace=True to wipe it and reload")
    tables = Base.metadata.sorted_tables
    if conn.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in reversed(tables):
            conn.execute(table.delete())


def _logins(gen: DemoGenerator, admin_password: str, demo_password: str) -> dict[str, Any]:
    by_role: dict[str, list[str]] = {}
    for user in gen.users:
        by_role.setdefault(user["role"], []).append(user["username"])
    agents = by_role.get("agent", [])
    return {
        "admin": {"username": "admin", "password": admin_password},
        "demo_password": demo_password,
        "agents": f"{agents[0]} … {agents[-1]} ({len(agents)})" if agents else "",
        "supervisors": by_role.get("supervisor", []),
        "department": [u for u in by_role.get("department", []) if u == "service-dept"],
        "campaign_manager": by_role.get("campaign_manager", []),
        "store_staff": len(by_role.get("department", [])) - 1,
    }
