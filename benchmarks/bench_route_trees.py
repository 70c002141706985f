"""The routed call's cache miss (and hit) with two source trees side by side: one ``bench_route`` server per tree
on the same schema, all running at once, every round each tree gets its own new numbers (a miss phase, then
the same numbers again: the hit) in alternating order, so the shared machine's drift falls on both alike.

    python -m benchmarks.bench_route_trees --schema bench_xxx --tree main=/work/main --tree new=. \\
        [--rounds 8] [--calls 1000] [--redis redis://127.0.0.1:6379/10]

Each server is ``python -m benchmarks.bench_route --serve`` run from its tree (``cwd`` and ``PYTHONPATH``), so
it is that tree's server code and that tree's wiring; the client (the calls, the CPU reading) is this tree's
``bench_route._phase`` for all. Prints each round's server CPU per call, then the medians and ranges.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy

from benchmarks.bench_route import DEFAULT_REDIS, DEFAULT_URL, _national, _phase


def _start(tree: Path, schema_url: str, redis_url: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port_file = Path(tempfile.mkdtemp(prefix="bench_route_trees.")) / "port"
    log = open(port_file.parent / "server.log", "wb")  # noqa: SIM115 - the child holds it
    env = {**os.environ, "PYTHONPATH": str(tree)}
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_route", "--serve", schema_url, "--redis",
                               redis_url, "--port-file", str(port_file)], cwd=tree, env=env, stderr=log)
    log.close()
    deadline = time.monotonic() + 60
    while not port_file.exists():
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError(f"server of {tree} did not start: {(port_file.parent / 'server.log').read_text()}")
        time.sleep(0.05)
    return server, int(port_file.read_text()), port_file


def _stop(name: str, server: subprocess.Popen[bytes], port_file: Path) -> int:
    server.terminate()
    server.wait(timeout=30)
    log_path = port_file.parent / "server.log"
    logged = log_path.read_text(errors="replace").splitlines()
    problems = [line for line in logged if " ERROR " in line or "Traceback" in line]
    if problems:
        print(f"[{name}]", "\n".join(problems[:10]), file=sys.stderr)
    routed = sum(" route uniqueid=" in line for line in logged)
    log_path.unlink()
    port_file.unlink(missing_ok=True)
    port_file.parent.rmdir()
    return routed


def run(trees: dict[str, Path], schema: str, url: str, redis_url: str, rounds: int, calls: int,
        warm: int = 300) -> dict[str, Any]:
    sep = "&" if "?" in url else "?"
    schema_url = f"{url}{sep}options={quote(f'-csearch_path={schema}')}"
    engine = sqlalchemy.create_engine(schema_url)
    count = "select count(*) from routing_decisions"
    with engine.connect() as conn:
        before = conn.execute(sqlalchemy.text(count)).scalar_one()
        numbers = [row[0] for row in conn.execute(sqlalchemy.text(
            "select p.e164 from phone_numbers p join customer_phones cp on cp.phone_id = p.id "
            "where p.e164 like '+86%' order by p.id"))]
    names = list(trees)
    need = len(names) * (rounds * calls + warm)
    # A seed of the time: a rerun on the same schema and Redis gets numbers not cached by the previous run.
    picked = [_national(n) for n in random.Random(time.time_ns()).sample(numbers, need)]
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    servers = {name: _start(trees[name], schema_url, redis_url) for name in names}
    results: dict[str, dict[str, list[dict[str, Any]]]] = {n: {"miss": [], "hit": []} for n in names}
    routed: dict[str, int] = {}
    cursor = 0
    try:
        for name in names:
            _phase(servers[name][1], picked[cursor:cursor + warm], "warm")
            cursor += warm
        for r in range(rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                batch = picked[cursor:cursor + calls]
                cursor += calls
                port = servers[name][1]
                miss = _phase(port, batch, "miss")
                hit = _phase(port, batch, "hit")
                results[name]["miss"].append(miss)
                results[name]["hit"].append(hit)
                print(f"round {r + 1} {name:>6}: miss cpu {miss['server_cpu_ms_per_call']:.3f} ms "
                      f"(loop {miss['of_which_reactor_thread_ms']:.3f}, kernel {miss['of_which_kernel_ms']:.3f}) "
                      f"p50 {miss['p50_ms']:.3f} p99 {miss['p99_ms']:.3f}; hit cpu "
                      f"{hit['server_cpu_ms_per_call']:.3f} ms p50 {hit['p50_ms']:.3f} (load "
                      f"{os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
    finally:
        for name, (server, _, port_file) in servers.items():
            routed[name] = _stop(name, server, port_file)
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text(count)).scalar_one() - before
    engine.dispose()
    expected = len(names) * (warm + 2 * rounds * calls)
    out: dict[str, Any] = {"rounds": rounds, "calls": calls, "decision_rows": rows, "expected_rows": expected,
                           "route_log_lines": routed}
    for name in names:
        out[name] = {}
        for phase in ("miss", "hit"):
            for key in ("server_cpu_ms_per_call", "of_which_reactor_thread_ms", "of_which_kernel_ms", "p50_ms",
                        "p99_ms"):
                values = [r[key] for r in results[name][phase]]
                out[name][f"{phase}_{key}"] = {"median": round(statistics.median(values), 3),
                                               "range": [min(values), max(values)]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of a source tree")
    parser.add_argument("--schema", required=True, help="a schema holding demo data (bench_demo_load --keep)")
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    trees = {t.split("=", 1)[0]: Path(t.split("=", 1)[1]).resolve() for t in args.tree}
    print(json.dumps(run(trees, args.schema, args.url, args.redis, args.rounds, args.calls), indent=2))


if __name__ == "__main__":
    main()
