"""Once-per-cluster jobs against the real test Redis: one node runs each occurrence, a dead holder's lease expires
and another node takes over, a failure frees the occurrence, and without Redis the job simply runs."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ccserver.cluster import ClusterJobs, ClusterUnavailable

ROOT = Path(__file__).resolve().parent.parent


def run(coro):
    return asyncio.run(coro)


def test_two_nodes_one_run_per_occurrence(redis_url):
    async def main():
        r = aioredis.Redis.from_url(redis_url)
        a, b = ClusterJobs(r, "node-a", ttl_ms=300), ClusterJobs(r, "node-b", ttl_ms=300)
        started: list[str] = []
        finish = asyncio.Event()

        def job(node: str):
            async def work() -> str:
                started.append(node)
                await finish.wait()
                return f"rescored by {node}"
            return work

        try:
            runs = [asyncio.ensure_future(a.run("scores", job("a"), slot="2026-03-16")),
                    asyncio.ensure_future(b.run("scores", job("b"), slot="2026-03-16"))]
            while not started:
                await asyncio.sleep(0)
            # One node runs; the other waits on the lease across several renewals (ttl 0.3 s) without running.
            waited = time.monotonic()
            while time.monotonic() - waited < 1.0:
                assert len(started) == 1
                await asyncio.wait(runs, timeout=0.1)
            finish.set()
            done = await asyncio.gather(*runs)
            winner = started[0]
            assert started == [winner]
            ran = [d for d in done if d.ran]
            assert len(ran) == 1 and ran[0].result == f"rescored by {winner}"
            other = next(d for d in done if not d.ran)
            assert other.holder == f"node-{winner}" and other.result is None
            # A node whose clock runs late asks after the run: the done marker says it already happened.
            late = await ClusterJobs(r, "node-c").run("scores", job("c"), slot="2026-03-16")
            assert not late.ran and late.holder == f"node-{winner}" and started == [winner]
            assert 0 < await r.pttl("ccserver:job:scores:2026-03-16") <= 36 * 3600 * 1000
            # The next occurrence is a new lease.
            nxt = await b.run("scores", job("b"), slot="2026-03-17")
            assert nxt.ran and started[-1] == "b"
        finally:
            await r.aclose()

    run(main())


def test_a_dead_holders_lease_expires_and_a_waiting_node_takes_over(redis_url):
    """The holder is a real process killed with SIGKILL mid-job: nobody releases its lease; it expires."""
    child = textwrap.dedent(f"""
        import asyncio, sys
        import redis.asyncio as aioredis
        from ccserver.cluster import ClusterJobs

        async def main():
            r = aioredis.Redis.from_url({redis_url!r})
            async def job():
                print("RUNNING", flush=True)
                await asyncio.Event().wait()  # forever: the job is killed, never finishes
            await ClusterJobs(r, "node-dead", ttl_ms=600).run("cleanup", job, slot="s1")

        asyncio.run(main())
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "RUNNING"

        async def main():
            r = aioredis.Redis.from_url(redis_url)
            survivor = ClusterJobs(r, "node-b", ttl_ms=600)
            ran_at: list[float] = []

            async def job() -> str:
                ran_at.append(time.monotonic())
                return "cleaned"

            try:
                busy = await survivor.run("cleanup", job, slot="s1", wait=False)
                assert not busy.ran and busy.holder == "node-dead" and not ran_at
                # The holder keeps renewing while alive: still held after more than a ttl.
                pending = asyncio.ensure_future(survivor.run("cleanup", job, slot="s1"))
                done, _ = await asyncio.wait([pending], timeout=1.5)
                assert not done and not ran_at
                killed = time.monotonic()
                os.kill(proc.pid, signal.SIGKILL)
                outcome = await asyncio.wait_for(pending, timeout=5)
                assert outcome.ran and outcome.result == "cleaned" and outcome.holder == "node-b"
                assert ran_at[0] - killed < 0.6 + 0.2 + 1.0  # within ttl + one poll (+ slack for a busy machine)
            finally:
                await r.aclose()

        run(main())
    finally:
        proc.kill()
        proc.wait()


def test_a_failed_run_frees_the_occurrence_for_a_waiting_node(redis_url):
    async def main():
        r = aioredis.Redis.from_url(redis_url)
        a, b = ClusterJobs(r, "node-a", ttl_ms=300), ClusterJobs(r, "node-b", ttl_ms=300)
        go = asyncio.Event()

        async def broken() -> None:
            await go.wait()
            raise RuntimeError("database down")

        async def works() -> str:
            return "ok"

        try:
            first = asyncio.ensure_future(a.run("alarms", broken, slot="10:05"))
            while await r.get("ccserver:job:alarms:10:05") is None:
                await asyncio.sleep(0)
            second = asyncio.ensure_future(b.run("alarms", works, slot="10:05"))
            go.set()
            with pytest.raises(RuntimeError, match="database down"):
                await first
            outcome = await asyncio.wait_for(second, timeout=3)
            assert outcome.ran and outcome.result == "ok"
        finally:
            await r.aclose()

    run(main())


def test_a_lost_lease_is_reported(redis_url, caplog):
    async def main():
        r = aioredis.Redis.from_url(redis_url)
        lost = asyncio.Event()

        class Seen(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "lease lost by" in record.getMessage():
                    lost.set()

        handler = Seen()
        logging.getLogger("ccserver.cluster").addHandler(handler)
        jobs = ClusterJobs(r, "node-a", ttl_ms=60_000, sleep=lambda _s: asyncio.sleep(0))

        async def job() -> str:
            await r.set("ccserver:job:dialer", "node-x", px=60_000)  # someone else holds it now
            await asyncio.wait_for(lost.wait(), timeout=5)
            return "done"

        try:
            outcome = await jobs.run("dialer", job)
            assert outcome.ran and outcome.lease_lost
            assert await r.get("ccserver:job:dialer") == b"node-x"  # never deleted someone else's lease
        finally:
            logging.getLogger("ccserver.cluster").removeHandler(handler)
            await r.aclose()

    run(main())


def test_without_redis_it_simply_runs_and_unreachable_redis_runs_nothing():
    async def main():
        calls: list[str] = []

        async def job() -> int:
            calls.append("ran")
            return 7

        single = await ClusterJobs(None, "solo").run("scores", job, slot="2026-03-16")
        assert single.ran and single.result == 7 and calls == ["ran"]
        again = await ClusterJobs(None, "solo").run("scores", job, slot="2026-03-16")
        assert again.ran and calls == ["ran", "ran"]  # nothing to remember runs with: it runs when asked

        down = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
        with pytest.raises(ClusterUnavailable):
            await ClusterJobs(down, "node-a").run("scores", job, slot="2026-03-16")
        assert calls == ["ran", "ran"]
        await down.aclose()

    run(main())
