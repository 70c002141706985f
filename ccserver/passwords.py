"""Password hashing with a memory-hard KDF (scrypt, from the standard library).

Stored form: ``scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>`` so parameters can be raised later and old
hashes still verify.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any

_N, _R, _P = 2**14, 8, 1
_DKLEN = 32


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_DKLEN)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p), dklen=_DKLEN
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, bytes.fromhex(digest_hex))


class PasswordBusy(Exception):
    """Too many password checks waiting already; answer "try again shortly" rather than queue without end."""


class PasswordWork:
    """scrypt off the event loop, on threads of its own.

    A KDF run is ~30 ms of CPU and 16 MiB; in the thread pool shared with SQL and the health probes, a login
    storm queued every ``/healthz`` database check behind it ("database: timed out", 503: a load balancer would
    have pulled the node). Here password work has its own small pool, and at most ``max_pending`` checks are in
    it (running or waiting); beyond that ``PasswordBusy`` is raised at once.
    """

    def __init__(self, run_in_thread: Callable[..., Any], max_pending: int):
        self._run = run_in_thread
        self.max_pending = max_pending
        self.pending = 0
        self._stop: Callable[[], None] = lambda: None

    @classmethod
    def on_own_threads(cls, reactor: Any, threads: int = 2, max_waiting: int = 32) -> PasswordWork:
        """Its own Twisted thread pool (stopped with the reactor, or by ``stop``)."""
        from functools import partial

        from twisted.internet.threads import deferToThreadPool
        from twisted.python.threadpool import ThreadPool

        pool = ThreadPool(minthreads=0, maxthreads=threads, name="ccserver-passwords")
        pool.start()
        work = cls(partial(deferToThreadPool, reactor, pool), threads + max_waiting)
        work._stop = pool.stop
        reactor.addSystemEventTrigger("during", "shutdown", work.stop)
        return work

    def stop(self) -> None:
        stop, self._stop = self._stop, lambda: None
        stop()

    async def _in_pool(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.pending >= self.max_pending:
            raise PasswordBusy(f"{self.pending} password checks in progress")
        self.pending += 1
        try:
            return await self._run(fn, *args)
        finally:
            self.pending -= 1

    async def verify(self, password: str, stored: str) -> bool:
        return bool(await self._in_pool(verify_password, password, stored))

    async def hash(self, password: str) -> str:
        return str(await self._in_pool(hash_password, password))
