"""The one place where Twisted and asyncio meet.

Application code (services, HTTP handlers, FastAGI handlers, jobs) is written as plain asyncio coroutines. Twisted
stays for the protocols it serves well (FastAGI, AMI, the HTTP server) and runs on the same asyncio loop (its
asyncio reactor). Where the two meet, use these:

- :func:`wait` — await a Twisted Deferred (an AMI action's reply, say) from asyncio code;
- :func:`as_deferred` — hand a coroutine to Twisted code that wants a Deferred (a shutdown trigger);
- :func:`spawn` — run a coroutine in the background, its failure logged (never lost silently);
- :class:`BlockingPool` — the one thread pool for blocking work (SQL through SQLAlchemy); ``await pool.run(fn, …)``;
- :func:`drive` — run a coroutine that may await Deferreds *and* asyncio futures (the routed call's services, whose
  protocol clients answer with Deferreds resumed without a loop turn), as a Deferred.

FastAGI handlers are driven by :class:`ccserver.agi.request.HandlerRunner`, which resumes them straight from
Asterisk's answers and also waits on asyncio futures: a handler awaits AGI commands, coroutines, ``pool.run``,
``asyncio.sleep`` and the like. (Not being an asyncio Task, it cannot use ``asyncio.timeout()``; use
``asyncio.wait_for``.)
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")

log = logging.getLogger("ccserver")


def wait(deferred: Deferred[T], loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[T]:
    """An asyncio future for a Deferred (on ``loop``, else the running loop): ``result = await wait(d)``."""
    return deferred.asFuture(loop if loop is not None else asyncio.get_running_loop())


def drive(coro: Coroutine[Any, Any, T]) -> Deferred[T]:
    """A Deferred for ``coro`` run by the FastAGI handler runner (it resumes on Deferreds, asyncio futures and AGI
    answers alike, each without an extra loop turn)."""
    from ccserver.agi.request import drive as run

    return run(coro)


async def settle(result: Any) -> Any:
    """Await whatever a callable returned — a Deferred, an asyncio awaitable — or take a plain value as it is."""
    if isinstance(result, Deferred):
        return await wait(result)
    if inspect.isawaitable(result):
        return await result
    return result


def as_deferred(awaitable: Awaitable[T]) -> Deferred[T]:
    """A Deferred for an asyncio coroutine or future, run as a task on the running (or current) loop."""
    return Deferred.fromFuture(asyncio.ensure_future(awaitable))


def spawn(coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
    """Run ``coro`` as a background task; an exception it ends with is logged (``what`` says whose)."""
    task = asyncio.ensure_future(coro)

    def done(t: asyncio.Future[Any]) -> None:
        if not t.cancelled() and t.exception() is not None:
            log.error("%s failed: %r", what, t.exception(), exc_info=t.exception())

    task.add_done_callback(done)
    return task


class BlockingPool:
    """The thread pool for blocking calls (SQL). ``await pool.run(fn, *args, **kwargs)`` from asyncio code."""

    def __init__(self, max_workers: int = 16, name: str = "ccserver-sql") -> None:
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)

    def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs) if kwargs else (functools.partial(fn, *args) if args else fn)
        return loop.run_in_executor(self.executor, call)

    def serve_default(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make this pool ``loop``'s default executor, so ``asyncio.to_thread`` and ``run_in_executor(None, …)``
        (the record writers) run on it too: one pool for blocking SQL, bounded once."""
        loop.set_default_executor(self.executor)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
