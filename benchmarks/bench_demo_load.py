"""Demo-data load speed: a fresh PostgreSQL schema, migrate, generate N customers, report rows/s.

    python -m benchmarks.bench_demo_load --customers 1000000 --url postgresql+psycopg://root@127.0.0.1/test

The schema (random name) is dropped afterwards unless --keep. Target: 1,000,000 customers in <= 300 s on
a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from datetime import date
from typing import Any
from urllib.parse import quote

import sqlalchemy

from ccserver.db import migrate
from ccserver.demo import generate

DEFAULT_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")


def _progress(done: int, total: int) -> None:
    width = 40
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def run(customers: int, url: str = DEFAULT_URL, seed: int = 1, as_of: date | None = None,
        keep: bool = False, quiet: bool = False) -> dict[str, Any]:  # fmt: skip
    schema = "bench_" + secrets.token_hex(4)
    admin = sqlalchemy.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in url else "?"
    schema_url = f"{url}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        t0 = time.perf_counter()
        migrate.upgrade(schema_url)
        t1 = time.perf_counter()
        summary = generate(schema_url, customers=customers, seed=seed, as_of=as_of or date(2026, 1, 15),
                           progress=None if quiet else _progress)  # fmt: skip
        t2 = time.perf_counter()
    finally:
        if not keep:
            with admin.begin() as conn:
                conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    load = t2 - t1
    result = {
        "benchmark": "demo_load",
        "backend": "postgresql",
        "customers": customers,
        "total_rows": summary["total_rows"],
        "rows": summary["rows"],
        "migrate_seconds": round(t1 - t0, 2),
        "load_seconds": round(load, 2),
        "rows_per_second": round(summary["total_rows"] / load),
        "customers_per_second": round(customers / load),
        "cpus": os.cpu_count(),
        "schema": schema if keep else None,
    }
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL URL (a schema is created inside it)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the schema for inspection")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    result = run(args.customers, args.url, args.seed, keep=args.keep, quiet=args.quiet)
    print(f"loaded {result['customers']:,} customers / {result['total_rows']:,} rows in "
          f"{result['load_seconds']:.1f} s ({result['rows_per_second']:,} rows/s, "
          f"{result['customers_per_second']:,} customers/s); migrate {result['migrate_seconds']:.2f} s")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
