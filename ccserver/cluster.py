"""Jobs that must run once per cluster: the nightly score recompute now; SLA alarms, the recordings clean-up and
the dialer later.

Every node schedules the job; when it is due, each node calls ``ClusterJobs.run(name, job, slot=…)`` and the
job's Redis lease ``ccserver:job:<name>:<slot>`` decides (``slot`` names one occurrence, e.g. the local date of
a nightly run, so two nights never share a lease):

- the node that takes the lease (``SET NX PX``) runs the job and renews the lease every ``ttl/3`` while it
  runs (compare-and-``PEXPIRE``: a node never extends a lease it lost). On success the lease is turned into
  a *done* marker (``done:<node>``, kept ``keep_done`` seconds) so a node whose clock runs late does not run
  that occurrence again; on failure it is deleted (compare-and-delete) so a waiting node may try once more.
- the other nodes wait while it is held, re-asking every ``ttl/3``, and return "ran elsewhere" when they see
  the done marker. If the holder dies, nobody renews its lease: it expires within ``ttl`` and a waiting node
  takes it over and runs the job.
- no Redis (a single node): the job simply runs.
- Redis configured but unreachable when the job is due: the job does **not** run (``ClusterUnavailable``) —
  once per cluster means at most once; the next occurrence will try again.

A holder that cannot renew (Redis lost for longer than ``ttl``) cannot stop a job already running in a
worker thread: that is logged as an error and counted (another node may have started the same occurrence).
Jobs should therefore be idempotent, as the score recompute is.

``slot=None`` makes a plain mutex: the lease is deleted after the run and nothing is remembered.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ccserver.ami.lease import RedisLease
from ccserver.metrics import REGISTRY

__all__ = ["ClusterJobs", "ClusterUnavailable", "JobRun", "default_node_id"]

log = logging.getLogger("ccserver.cluster")

T = TypeVar("T")

JOBS = REGISTRY.counter(
    "ccserver_cluster_jobs_total",
    "Once-per-cluster job occurrences seen by this node, by job and outcome: ran, elsewhere, failed, unavailable, "
    "lease_lost",
)

DONE_PREFIX = "done:"

# KEYS: lease; ARGV: our node id, done marker, keep ms. Only the holder may mark its occurrence done.
_MARK_DONE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""


class ClusterUnavailable(RuntimeError):
    """Redis is configured but could not be asked: the job was not run (at most once per cluster)."""


@dataclass(frozen=True)
class JobRun(Generic[T]):
    """What became of one occurrence on this node: ``ran`` here (with ``result``), or ran by ``holder``."""

    ran: bool
    result: T | None = None
    holder: str | None = None  # the node that ran it (this one when ``ran``)
    lease_lost: bool = False  # ran here, but the lease could not be kept to the end


def default_node_id() -> str:
    """host:pid — what ``ccserver run`` calls itself in leases and logs."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ClusterJobs:
    """Runs jobs once per cluster (see the module docstring). ``redis``: a ``redis.asyncio.Redis`` or None.

    ``sleep`` (default ``asyncio.sleep``) and ``clock`` (monotonic seconds) are injectable for tests.
    """

    def __init__(self, redis: Any | None, node_id: str | None = None, *, prefix: str = "ccserver:job:",
                 ttl_ms: int = 30_000, keep_done: float = 36 * 3600.0,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_ms <= 0 or keep_done < 0:
            raise ValueError("ttl_ms must be > 0 and keep_done ≥ 0")
        self.redis = redis
        self.node_id = node_id or default_node_id()
        if self.node_id.startswith(DONE_PREFIX):
            raise ValueError(f"a node id may not start with {DONE_PREFIX!r}")
        self.prefix = prefix
        self.ttl_ms = ttl_ms
        self.keep_done_ms = int(keep_done * 1000)
        self.interval = ttl_ms / 3000.0
        self._sleep = sleep
        self._clock = clock

    def key(self, name: str, slot: str | None) -> str:
        return f"{self.prefix}{name}" if slot is None else f"{self.prefix}{name}:{slot}"

    async def run(self, name: str, job: Callable[[], Awaitable[T]], *, slot: str | None = None,
                  wait: bool = True) -> JobRun[T]:
        """Run ``job()`` here if this node wins the occurrence, else report who ran it. ``wait=False``: return
        at once when another node holds the lease (``holder`` = that node) instead of waiting to take over.
        The job's own exception propagates (after the lease is freed)."""
        if self.redis is None:
            result = await job()
            JOBS.inc(job=name, outcome="ran")
            return JobRun(True, result, self.node_id)
        lease = RedisLease(self.redis, self.key(name, slot), self.node_id, ttl_ms=self.ttl_ms, clock=self._clock)
        while True:
            try:
                if await lease.acquire():
                    break
                holder = await lease.holder()
            except Exception as exc:  # noqa: BLE001 - any Redis failure: we cannot know who runs it
                JOBS.inc(job=name, outcome="unavailable")
                log.error("job %s: Redis unavailable (%s); not run on this node", lease.key, exc)
                raise ClusterUnavailable(f"job {name}: Redis unavailable ({exc})") from exc
            if holder is None:
                continue  # freed or expired between the two questions: ask again
            if holder.startswith(DONE_PREFIX):
                JOBS.inc(job=name, outcome="elsewhere")
                log.info("job %s: already done by %s", lease.key, holder[len(DONE_PREFIX):])
                return JobRun(False, None, holder[len(DONE_PREFIX):])
            if not wait:
                JOBS.inc(job=name, outcome="elsewhere")
                return JobRun(False, None, holder)
            await self._sleep(self.interval)  # held by a live node: wait, and take over if it dies
        return await self._run_holding(name, lease, job, slot is not None)

    async def _run_holding(self, name: str, lease: RedisLease, job: Callable[[], Awaitable[T]],
                           remember: bool) -> JobRun[T]:
        log.info("job %s: running on %s", lease.key, self.node_id)
        lost = asyncio.Event()
        keeper = asyncio.ensure_future(self._keep(lease, lost))
        try:
            result = await job()
        except BaseException:  # cancelled or failed: free the occurrence for a waiting node
            keeper.cancel()
            JOBS.inc(job=name, outcome="failed")
            await self._quietly(lease.release(), lease.key, "release")
            raise
        keeper.cancel()
        if lost.is_set():
            JOBS.inc(job=name, outcome="lease_lost")
            log.error("job %s: finished on %s, but its lease was lost while it ran (another node may have run it "
                      "too)", lease.key, self.node_id)
            return JobRun(True, result, self.node_id, lease_lost=True)
        if remember and self.keep_done_ms:
            marked = await self._quietly(
                lease.redis.eval(_MARK_DONE, 1, lease.key, self.node_id, DONE_PREFIX + self.node_id,
                                 self.keep_done_ms), lease.key, "done marker")
            if not marked:
                log.warning("job %s: done, but not marked done (a late node may run it again)", lease.key)
        else:
            await self._quietly(lease.release(), lease.key, "release")
        JOBS.inc(job=name, outcome="ran")
        return JobRun(True, result, self.node_id)

    async def _keep(self, lease: RedisLease, lost: asyncio.Event) -> None:
        while True:
            await self._sleep(self.interval)
            try:
                held = await lease.renew()
            except Exception as exc:  # noqa: BLE001 - Redis blip: keep it while our copy is surely valid
                held = lease.held
                log.warning("job %s: renewal failed (%s)%s", lease.key, exc, "" if held else "; lease lost")
            if not held:
                lost.set()
                log.error("job %s: lease lost by %s while the job runs", lease.key, self.node_id)
                return

    @staticmethod
    async def _quietly(call: Awaitable[Any], key: str, what: str) -> Any:
        try:
            return await call
        except Exception as exc:  # noqa: BLE001 - the lease expires by itself
            log.warning("job %s: %s failed (%s); the lease expires by itself", key, what, exc)
            return None
