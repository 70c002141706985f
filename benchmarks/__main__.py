"""`make bench`: run the benchmarks and rewrite BENCHMARKS.md.

Each section records the machine and date it ran on, and every figure stands beside its peer measured in
the same run. Results are kept in benchmarks/results.json so one section can be re-run (`--only agi`)
without losing the others.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results.json"
REPORT = ROOT / "BENCHMARKS.md"
SECTIONS = ("ami", "ami_process", "agi", "state", "routing", "demo_load", "route", "ivr", "wallboard", "screenpop",
            "crm_import", "dialer")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "?"
    return (f"{cpu}, {os.cpu_count()} cores, {memory}; Python {platform.python_version()}; "
            f"{platform.system()} {platform.release()}")


def run_section(name: str, quick: bool) -> dict[str, Any]:
    if name == "ami":
        from benchmarks import bench_ami

        return bench_ami.run(copies=4 if quick else 10, runs=3)
    if name == "ami_process":
        from benchmarks import bench_ami_process

        return bench_ami_process.run(copies=4 if quick else 10, runs=3)
    if name == "agi":
        from benchmarks import bench_agi

        return bench_agi.run(sessions=2_000 if quick else 10_000, concurrency=20, rounds=3)
    if name == "state":
        from benchmarks import bench_state

        return bench_state.run()
    if name == "routing":
        from benchmarks import bench_routing

        return bench_routing.run()
    if name == "demo_load":
        # Its own process: a million-customer load should not share a heap with the other benchmarks.
        customers = 100_000 if quick else 1_000_000
        out = subprocess.run(
            [sys.executable, "-c",
             "import json,sys; from benchmarks import bench_demo_load as b; "
             f"print(json.dumps(b.run({customers}, quiet=True)))"],
            cwd=ROOT, check=True, capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    if name == "route":
        from benchmarks import bench_route

        return bench_route.run(customers=20_000 if quick else 1_000_000, calls=500 if quick else 2_000)
    if name == "ivr":
        # Its own processes (server and driver), as bench_ivr runs itself.
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_ivr", "--sessions", "300" if quick else "1000"],
                             cwd=ROOT, check=True, capture_output=True, text=True)
        return json.loads(out.stdout)  # type: ignore[no-any-return]
    if name == "wallboard":
        # Its own process: the server's CPU must not include another benchmark's leftovers.
        out = subprocess.run([sys.executable, "benchmarks/bench_wallboard.py", "--updates", "5" if quick else "20"],
                             cwd=ROOT, check=True, capture_output=True, text=True)
        return json.loads(out.stdout)  # type: ignore[no-any-return]
    if name == "screenpop":
        from benchmarks import bench_screenpop

        return bench_screenpop.run(agents=1000, samples=100 if quick else 500)
    if name == "crm_import":
        # Its own process: 100,000 parsed rows should not share a heap with the other benchmarks.
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_crm_import", "--rows",
                              "10000" if quick else "100000"], cwd=ROOT, check=True, capture_output=True, text=True)
        return json.loads(out.stdout)  # type: ignore[no-any-return]
    if name == "dialer":
        from benchmarks import bench_dialer

        return bench_dialer.run(contacts=100_000 if quick else 1_000_000, seconds=10.0 if quick else 30.0)
    raise ValueError(name)


def _f(value: Any, digits: int = 0) -> str:
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return str(value)


def render(results: dict[str, Any]) -> str:
    lines = ["# Benchmarks", "",
             "Written by `make bench` (`python -m benchmarks`); each section names the machine and date it ran on,",
             "and each figure stands beside its peer from the same run. Re-run one section with",
             "`python -m benchmarks --only NAME`.", ""]

    def head(title: str, key: str) -> None:
        meta = results[key]["_meta"]
        lines.extend([f"## {title}", "", f"Measured {meta['date']} on {meta['machine']}.", ""])

    if "ami" in results:
        r = results["ami"]
        head("AMI end to end: bytes on a TCP socket → parsed and dispatched", "ami")
        lines += [
            f"The busy-hour transcript multiplied ×{r['copies']} ({r['payload_bytes'] / 1e6:.1f} MB, "
            f"{r['messages']:,} messages, {r['subscribed_messages']:,} to subscribed handlers) from the same fake "
            f"Asterisk to each client in its own process; median of {r['runs']} runs.", "",
            "| client | messages/s (median) | best | client CPU (median) |", "|---|---|---|---|",
            f"| **ccserver** | **{_f(r['ccserver']['msgs_per_s_median'])}** | {_f(r['ccserver']['msgs_per_s_best'])} "
            f"| {r['ccserver']['cpu_s_median']} s |",
            f"| panoramisk | {_f(r['panoramisk']['msgs_per_s_median'])} | {_f(r['panoramisk']['msgs_per_s_best'])} "
            f"| {r['panoramisk']['cpu_s_median']} s |",
            "", f"ccserver / panoramisk: **{r['ratio_median']}×** (target ≥ 4×).", ""]
    if "agi" in results:
        r = results["agi"]
        head("FastAGI server CPU per session (env block + 3 SET VARIABLE)", "agi")
        rows = [("bare Twisted LineReceiver (floor)", "floor"), ("**ccserver**", "ccserver"),
                ("ccserver, handler reads caller ID / extension / uniqueid", "ccserver_env"),
                ("ccserver, the three variables in one MSet", "ccserver_mset"), ("panoramisk", "panoramisk")]
        lines += [f"{r['sessions']:,} sessions, {r['concurrency']} concurrent, over loopback from a separate "
                  f"client process; server on the {r['reactor']} reactor; server process CPU / sessions.", "",
                  "| server | CPU per session | × floor |", "|---|---|---|"]
        for label, key in rows:
            if isinstance(r.get(key), dict):
                ratio = "1.00" if key == "floor" else r.get(f"{key}_vs_floor", "")
                lines.append(f"| {label} | {r[key]['cpu_ms_per_session']:.3f} ms | {ratio} |")
        lines += ["", "Target: ccserver ≤ 1.1× the floor.", ""]
        lag, mem = r.get("lag", {}), r.get("memory", {})
        if lag:
            lines += [f"Event-loop lag while {lag['half_open']:,} half-open FastAGI connections are held and "
                      f"{lag['sessions_meanwhile']:,} normal sessions run:", "",
                      "| figure | held open | idle loop (peer) |", "|---|---|---|",
                      f"| loop lag p99 | {lag['lag_p99_ms']:.2f} ms | {lag['lag_p99_idle_ms']:.2f} ms |",
                      f"| loop lag max | {lag['lag_max_ms']:.1f} ms | |",
                      f"| normal session latency p99 | {lag['session_latency_p99_ms']:.2f} ms | |", ""]
        flood = r.get("flood", {})
        if flood:
            lines += [f"Normal calls at {flood['rate_per_s']:.0f}/s while {flood['half_open']:,} half-open connections "
                      "cycle (dropped by the 2 s header timeout, re-opened at once), each call timed connect to close:",
                      "", "| figure | under the flood | same calls, no flood |", "|---|---|---|",
                      f"| call p50 | {flood['p50_ms']:.2f} ms | {flood['p50_quiet_ms']:.2f} ms |",
                      f"| call p99 | {flood['p99_ms']:.2f} ms | {flood['p99_quiet_ms']:.2f} ms |",
                      f"| call max | {flood['max_ms']:.1f} ms | |",
                      f"| loop lag p99 / max | {flood['lag_p99_ms']:.2f} / {flood['lag_max_ms']:.1f} ms | |",
                      f"| server CPU per loop iteration p99 / max | {flood['iteration_cpu_p99_ms']:.2f} / "
                      f"{flood['iteration_cpu_max_ms']:.2f} ms | |",
                      "", "Target: call p99 < 10 ms under the flood. The per-iteration CPU (thread time from one "
                      "select() to the next) is what the server itself holds the loop for, whatever else the "
                      "machine runs.", ""]
        if mem:
            lines += ["| memory | Python heap | RSS |", "|---|---|---|",
                      f"| per FastAGI session waiting on Asterisk | {mem['session_heap_bytes']:,} B "
                      f"| {mem['session_rss_kib']} KiB |",
                      f"| per half-open connection | {mem['half_open_heap_bytes']:,} B "
                      f"| {mem['half_open_rss_kib']} KiB |",
                      ""]
    if "ami_process" in results:
        r = results["ami_process"]
        head("AMI end to end through the whole `ccserver run` process", "ami_process")
        ours, theirs = r["ccserver_run"], r["panoramisk"]
        lines += [
            f"The same busy-hour stream (×{r['copies']}, {r['payload_bytes'] / 1e6:.1f} MB, {r['messages']:,} "
            "messages) consumed by a real `ccserver run` — AMI client, state tracker, call-events hub and every "
            "subscriber (Redis mirror, cross-node relay, call records, KPIs, screen pop, wallboard, wrap-up, "
            "abandoned callers), on PostgreSQL and Redis as in production — beside panoramisk fed the same bytes, "
            f"alternating, {r['runs']} runs each (`benchmarks/bench_ami_process.py`). ccserver's finish line is its "
            "own `ccserver_ami_messages_total` reaching the count sent (polled every 10 ms, that family alone: "
            "`/metrics?name[]=…`, over one kept-alive connection). A lone node: nobody follows its cross-node relay, "
            "so it numbers what it applies and publishes none of it (README, Connecting Asterisk).", "",
            "| consumer | messages/s (median) | seconds per run |", "|---|---|---|",
            f"| **ccserver run** | **{_f(ours['msgs_per_s_median'])}** | "
            f"{', '.join(str(x) for x in ours['seconds'])} |",
            f"| panoramisk (client only) | {_f(theirs['msgs_per_s_median'])} | "
            f"{', '.join(str(x) for x in theirs['seconds'])} |", "",
            f"ccserver run / panoramisk: **{r['ratio_median']}×** (target ≥ 4×); {_f(ours['events_published'])} call "
            "events published on the hub per run.", ""]
        if ours.get("drained"):
            lines += ["Readers first: while the reader is behind on the stream the hub's subscribers wait (half a "
                      "second at most, README: The call-events hub), then handle what queued in one go. Their queues "
                      "(`ccserver_events_queued`) were empty again "
                      f"{', '.join(str(x) for x in ours['drained'])} s after the start: the stream read *and* every "
                      f"event taken by its subscriber, {r['ratio_drained_median']}× panoramisk's time to read it. "
                      f"The ≥ 4× target is judged on the first line ({r['ratio_median']}× here), not on this one; "
                      "before readers first the "
                      "subscribers' work was spread through the stream, so earlier figures of this section fall "
                      "between the two lines.", ""]
        if ours.get("cpu_by_thread"):
            spent = ours["cpu_by_thread"]
            main = sorted(t.get("main", 0.0) for t in spent)[len(spent) // 2]
            rest = sorted(sum(v for k, v in t.items() if k != "main") for t in spent)[len(spent) // 2]
            lines += [f"ccserver's CPU over the stream (median of the runs): reactor thread {main:.2f} s, its other "
                      f"threads (SQL workers, the asyncio executor) {rest:.2f} s.", ""]
        if ours.get("loop_held"):
            held = ours["loop_held"][-1]  # cumulative buckets of the last run's server
            total = held.get("+Inf", 0)
            bound = next((le for le, n in held.items() if n == total and le != "+Inf"), "+Inf")
            over = {le: total - n for le, n in held.items() if le in ("0.005", "0.02")}
            lines += [f"How long the AMI reads held the event loop (`ccserver_ami_read_seconds`, last run): {total} "
                      f"reads or slices, every one within {float(bound) * 1000:g} ms; over 5 ms: {over.get('0.005')}, "
                      f"over 20 ms: {over.get('0.02')}.", ""]
        if ours.get("cpu_after"):
            after = sorted(ours["cpu_after"])[len(ours["cpu_after"]) // 2]
            lines += [f"The subscribers' work still queued at the finish line (call records, callback tickets for the "
                      f"abandoned callers, KPI writes; the hub is asynchronous by design): {after:.2f} s of CPU in the "
                      f"2 s after it (median; an idle server's ticks included).", ""]

    if "ivr" in results:
        r = results["ivr"]
        head("IVR: full self-service booking sessions over FastAGI", "ivr")
        srv, drv = r["slowest_decision_ms_server"], r["slowest_decision_ms_driver"]
        lines += [
            f"{r['sessions']:,} booking sessions ({r['commands_per_session']:g} commands each: menus, the car and "
            f"three slots read back, confirm, book, read-back, hang-up), {r['concurrency']} callers at once, each "
            f"answer after {r['think_ms']:g} ms (the prompt and the key); the server wired as `ccserver run` wires "
            "the IVR, on a demo dealer group in SQLite, with an in-memory tickets port; the driver plays Asterisk "
            f"from another process (`benchmarks/bench_ivr.py`). Booked: {r['booked']:,} of {r['sessions']:,}.", "",
            "| figure | p50 | p99 | max | target |", "|---|---|---|---|---|",
            f"| slowest decision per session, in the server | {srv['p50']} ms | **{srv['p99']} ms** | {srv['max']} ms "
            "| p99 ≤ 5 ms |",
            f"| the same, seen by the driver (loopback included) | {drv['p50']} ms | {drv['p99']} ms | {drv['max']} ms "
            "| |", "",
            f"Server CPU per booking session: **{r['server_cpu_ms_per_session']} ms**; "
            f"{r['sessions_per_second']} sessions/s.", ""]

    if "state" in results:
        r = results["state"]
        head("Live state model", "state")
        m, rp = r["memory_per_call"], r["replay"]
        lines += ["| figure | value |", "|---|---|",
                  f"| memory per live call (tracemalloc, {m['calls']:,} waiting callers) "
                  f"| {m['bytes_per_call']} bytes |",
                  f"| tracker on the parsed busy hour ({rp['messages']:,} messages) | {_f(rp['msgs_per_s'])} msg/s |",
                  ""]
    if "routing" in results:
        r = results["routing"]
        head("Routing primitives (pure functions)", "routing")
        lines += ["| function | µs per call |", "|---|---|"]
        lines += [f"| {k.removesuffix('_us')} | {v} |" for k, v in r.items()
                  if k.endswith("_us") and not k.startswith("cutoffs")]
        if "cutoffs_1m_ms" in r:
            lines.append(f"| compute_cutoffs over 1,000,000 scores | {r['cutoffs_1m_ms']} ms |")
        lines.append("")
    if "demo_load" in results:
        r = results["demo_load"]
        head("Demo data bulk load into PostgreSQL", "demo_load")
        lines += [f"`ccserver demo-data --customers {r['customers']:,}` into a fresh schema on the local PostgreSQL "
                  "(COPY for the big tables).", "",
                  "| figure | value | target |", "|---|---|---|",
                  f"| load time | **{r['load_seconds']:.1f} s** | ≤ 300 s |",
                  f"| rows | {r['total_rows']:,} ({_f(r['rows_per_second'])} rows/s) | |",
                  f"| migrations | {r['migrate_seconds']:.2f} s | |", ""]
    if "route" in results:
        r = results["route"]
        head("A routed call: agi_* block in → routing variables out", "route")
        miss, hit, floor = r["miss"], r["hit"], r["floor"]
        rounds = r.get("rounds", 1)

        def p99(phase: dict[str, Any]) -> str:
            low, high = phase.get("p99_ms_range", (phase["p99_ms"], phase["p99_ms"]))
            return f"**{phase['p99_ms']:.2f} ms** ({low:.2f}–{high:.2f})" if rounds > 1 else f"**{high:.2f} ms**"

        lines += [f"{r['customers']:,} demo customers on PostgreSQL, number cache in Redis, the server wired as "
                  "`ccserver run` wires it, one call at a time from a client process playing Asterisk. "
                  f"{rounds} rounds of {hit['calls'] // rounds:,} known callers each, new numbers every round: "
                  "first calls (miss: read from PostgreSQL on the event loop, then cached), then the same numbers "
                  "again (hit). Each figure is the median of the rounds, the p99's range across them in brackets. "
                  "The peer is the floor of one Redis round trip + one phonenumbers parse, measured in the same "
                  "run. Every call also writes its log line and its `routing_decisions` row (checked).", "",
                  "| | p50 | p99 (range) | server CPU per call | target |", "|---|---|---|---|---|",
                  f"| **cache hit** | **{hit['p50_ms']:.2f} ms** | {p99(hit)} "
                  f"| {hit['server_cpu_ms_per_call']:.2f} ms | p99 ≤ 1 ms, CPU ≤ 1 ms |",
                  f"| **cache miss** (SQL) | **{miss['p50_ms']:.2f} ms** | {p99(miss)} "
                  f"| {miss['server_cpu_ms_per_call']:.2f} ms | p99 ≤ 5 ms, CPU ≤ 1 ms |",
                  f"| floor: Redis GET + phonenumbers parse | {floor['p50_ms']:.3f} ms "
                  f"| {floor['p99_ms']:.3f} ms | | |",
                  "", f"Calls per second on one core at the hit CPU cost: {r['calls_per_s_one_core_hit']:,}; "
                  f"at the miss cost: {round(1000 / miss['server_cpu_ms_per_call']):,}.", ""]
    if "wallboard" in results:
        r = results["wallboard"]
        head("Wallboard fan-out: one update to every connected client", "wallboard")
        first = r["runs"][0]
        lines += [f"One {first['frame_bytes']:,}-byte snapshot (16 queues, 40 callers, 60 agents, two charts) to N "
                  "websocket clients held by a separate process, over loopback; server CPU per update "
                  "(`process_time` until every send buffer has drained) / N, median of "
                  f"{first['updates']} updates per variant, the variants interleaved on the same connections. "
                  "**floor**: `websockets.broadcast` of the frame encoded beforehand. **ccserver**: the wallboard "
                  "publisher builds the snapshot, encodes it once and its fan-out writes one pre-built websocket "
                  "frame to every connection. **per-client encoding**: `json.dumps` once per client.", "",
                  "| clients | floor: `websockets.broadcast` | **ccserver** (build + 1 encoding + fan-out) "
                  "| × floor | per-client encoding | encodings / updates | messages received / sent |",
                  "|---|---|---|---|---|---|---|"]
        for run in r["runs"]:
            lines.append(
                f"| {run['clients']:,} | {run['floor']['cpu_us_per_client']:.2f} µs "
                f"| **{run['ccserver']['cpu_us_per_client']:.2f} µs** | {run['ccserver_vs_floor']:.2f} "
                f"| {run['per_client']['cpu_us_per_client']:.1f} µs | {run['encodings']} / {run['updates']} "
                f"| {run['received']:,} / {run['sent']:,} |")
        lines += ["", "Target: ccserver ≤ the broadcast floor per client, one JSON encoding per update whatever "
                  "the number of clients.", ""]
    if "screenpop" in results:
        r = results["screenpop"]
        head("Screen pop: AgentCalled bytes on the AMI socket → the pop frame at the agent's websocket", "screenpop")
        pop, bare, mem = r["pop"], r["bare"], r["memory"]
        split = r.get("crowd_processes") is not None
        lines += [f"{r['agents']:,} agents connected (and {r['agents']:,} bare sockets), the busy hour looped as "
                  f"background ({r['background_messages']:,} AMI messages during the run"
                  + (", its agents' phones moved onto connected agents" if split else "") + f"), {r['samples']:,} "
                  f"samples, each a recorded call rewritten for one agent; the pop frame is {r['frame_bytes']:,} "
                  "bytes (card included). The peer: a bare `websockets` server sending the same frame to one of "
                  "its 1,000 sockets when a TCP trigger arrives, measured alternately in the same run. "
                  + (f"The sampled agents' sockets ({r['probes']}) are held by the probe process that plays "
                     f"Asterisk and times both ends; the other sockets by {r['crowd_processes']} crowd processes "
                     "(`bench_screenpop.py`)" if split else
                     "Both ends of every sample are timed in the client process (`bench_screenpop.py`)")
                  + (f"; the machine's 1-minute load average at the end was {r['load_average_1m']}"
                     if "load_average_1m" in r else "") + ".", "",
                  "| | p50 | p99 | max | target |", "|---|---|---|---|---|",
                  f"| **screen pop** (AMI → tracker → hub → card → websocket) | **{pop['p50_ms']:.2f} ms** "
                  f"| **{pop['p99_ms']:.2f} ms** | {pop['max_ms']:.1f} ms | p99 ≤ 5 ms |"]
        parts = r.get("pop_parts", {})
        if "server" in parts:
            s_, o_ = parts["server"], parts["outside"]
            lines += [f"| … in the server (AMI bytes read → the pop handed to the socket) | {s_['p50_ms']:.2f} ms "
                      f"| {s_['p99_ms']:.2f} ms | {s_['max_ms']:.1f} ms | |",
                      f"| … outside it (kernel, scheduler, the server's loop busy before it reads, the probe) "
                      f"| {o_['p50_ms']:.2f} ms "
                      f"| {o_['p99_ms']:.2f} ms | {o_['max_ms']:.1f} ms | |"]
        if "server_cpu" in parts:
            c_ = parts["server_cpu"]
            lines.append(f"| … the server's CPU time on that path | {c_['p50_ms']:.2f} ms | {c_['p99_ms']:.2f} ms "
                         f"| {c_['max_ms']:.1f} ms | |")
        lines += [f"| bare `websockets` unicast of the same frame | {bare['p50_ms']:.2f} ms | {bare['p99_ms']:.2f} ms "
                  f"| {bare['max_ms']:.1f} ms | |",
                  "", f"Server memory per connected agent (RSS after the {r['agents']:,} agent sockets opened and "
                  f"got their hello, minus before): **{mem['per_agent_kib']:.1f} KiB** (target ≤ 20 KiB).", ""]
    if "crm_import" in results:
        r = results["crm_import"]
        target = "< 60 s" if r["rows"] == 100_000 else "(quick run: the target, < 60 s, is for 100,000 rows)"
        head("CRM import: a customers CSV into SQLite", "crm_import")
        lines += [f"`ccserver import customers`' path on a {r['rows']:,}-row GB18030 CSV with Chinese headers "
                  f"({r['bytes']:,} bytes) into a fresh SQLite file: decode + read, check every row (numbers "
                  "through phonenumbers), one-transaction write, score/tier recompute.", "",
                  "| figure | value | target |", "|---|---|---|",
                  f"| **total** ({r['rows']:,} rows) | **{r['total_s']:.1f} s** ({_f(r['rows_per_s'])} rows/s) "
                  f"| {target} |",
                  f"| read / check / write / recompute | {r['read_s']:.1f} / {r['check_s']:.1f} / "
                  f"{r['write_s']:.1f} / {r['recompute_s']:.1f} s | |",
                  f"| imported / errors | {r['imported']:,} / {r['errors']} | all rows, no errors |",
                  f"| re-check of the same file | {r['rerun_check_s']:.1f} s, {r['rerun_new']} new | 0 new |", ""]
    if "dialer" in results:
        r = results["dialer"]
        head("Outbound dialer: next contact, Originates per second, pacing simulation", "dialer")
        sel, o, m, sim = r["selection"], r["originates"], r["originates_no_sql"], r["simulation"]
        pg = r.get("originates_pg")
        lines += [f"**Next-contact selection** from {sel['contacts']:,} targets (tiers first, a fifth not due yet, "
                  f"through the compliance gate): median {sel['median_us']} µs, **p99 {sel['p99_us']} µs**, max "
                  f"{sel['max_us']} µs over {sel['picks']:,} picks (target p99 ≤ 1 ms); the queue built in "
                  f"{sel['build_s']} s.", "",
                  f"**Originates per second**: the real dialer, a line owed every {1000 / o['target_rate']:.0f} ms for "
                  f"{o['seconds']:g} s; pacing error = sent − due.", "",
                  "| store | sent/s | pacing error p50 | p99 | max | target |", "|---|---|---|---|---|---|",
                  f"| SQLite (attempt rows written ahead) | {o['rate']} | {o['error_median_ms']} ms "
                  f"| **{o['error_p99_ms']} ms** | {o['error_max_ms']} ms | 100/s, p99 ≤ 10 ms |",
                  *([f"| PostgreSQL (8 SQL threads) | {pg['rate']} | {pg['error_median_ms']} ms "
                     f"| **{pg['error_p99_ms']} ms** | {pg['error_max_ms']} ms | 100/s, p99 ≤ 10 ms |"] if pg else []),
                  f"| in memory (the dialer's own path) | {m['rate']} | {m['error_median_ms']} ms "
                  f"| **{m['error_p99_ms']} ms** | {m['error_max_ms']} ms | |", "",
                  "**Simulation** (`ccserver dialer simulate`: 20 agents, answer rate 0.3, 8 h, lognormal handle time "
                  "of mean 240 s, the real pacing code):", "",
                  "| mode | occupancy | abandon rate | worst hour | dialled | answered | abandoned |",
                  "|---|---|---|---|---|---|---|"]
        for mode in ("progressive", "predictive"):
            x = sim[mode]
            lines.append(f"| {mode} | **{x['occupancy']:.1%}** | **{x['abandon_rate']:.2%}** | "
                         f"{x['worst_hour']:.2%} | {x['dialed']:,} | {x['answered']:,} | {x['abandoned']:,} |")
        lines += ["", "Target: predictive ≥ 80 % occupancy at ≤ 3 % abandon.", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test, not for the record)")
    parser.add_argument("--render", action="store_true", help="rewrite BENCHMARKS.md from results.json only")
    args = parser.parse_args(argv)
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not args.render:
        for name in args.only or SECTIONS:
            print(f"bench: {name} …", file=sys.stderr, flush=True)
            result = run_section(name, args.quick)
            result["_meta"] = {"date": dt.date.today().isoformat(), "machine": machine(), "quick": args.quick}
            results[name] = result
            RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    REPORT.write_text(render(results))
    print(f"wrote {REPORT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
