"""The awaitable each session command returns, and the lean coroutine runner the server drives handlers with.

Why not a Deferred per command plus ``Deferred.fromCoroutine``: on the benchmark that machinery alone was a
quarter of the server's CPU per call beyond a bare Twisted server. An ``AGIRequest`` is one small object that
the protocol completes directly, and ``HandlerRunner`` resumes the handler straight from the answer line.

Compatibility is kept both ways:
- a handler awaiting an ``AGIRequest`` under Twisted's own driver (``Deferred.fromCoroutine`` /
  ``ensureDeferred``, e.g. in a test) works: the request notices the unknown driver and yields a Deferred;
- a handler run by ``HandlerRunner`` is a plain asyncio-style coroutine: it may await other coroutines and
  asyncio futures (``BlockingPool.run``, ``asyncio.sleep``, an asyncio Task, ``asyncio.wait_for``), each resumed
  from its done callback — and, still, any ``Deferred``. It is not an asyncio Task: ``asyncio.timeout()`` and
  ``asyncio.current_task()`` are not available in a FastAGI handler (use ``asyncio.wait_for``).
- ``request.deferred()`` gives a plain Deferred for callback-style code.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

from ccserver.agi.results import AGIResult

_PENDING = object()


class AGIRequest:
    """One AGI command: written when its turn comes, completed by Asterisk's answer.

    ``await request`` returns the ``AGIResult`` or raises the mapped error (see ``session``).
    """

    __slots__ = ("data", "flags", "timeout", "_outcome", "_error", "_waiter", "_deferred")

    def __init__(self, data: bytes, flags: int, timeout: float | None = None) -> None:
        self.data = data
        self.flags = flags
        self.timeout = timeout  # seconds Asterisk may take to answer; None: the server's agi.command_timeout
        self._outcome: Any = _PENDING
        self._error: BaseException | None = None
        self._waiter: HandlerRunner | None = None
        self._deferred: Deferred[AGIResult] | None = None

    @classmethod
    def failed(cls, error: BaseException) -> AGIRequest:
        request = cls(b"", 0)
        request._outcome = None
        request._error = error
        return request

    @property
    def done(self) -> bool:
        return self._outcome is not _PENDING

    def complete(self, result: AGIResult) -> None:
        self._outcome = result
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.send(result)
        if self._deferred is not None:
            self._deferred.callback(result)

    def fail(self, error: BaseException) -> None:
        self._outcome = None
        self._error = error
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.throw(error)
        if self._deferred is not None:
            self._deferred.errback(error)

    def deferred(self) -> Deferred[AGIResult]:
        """A Deferred firing with the result (or failing); one per request."""
        if self._outcome is not _PENDING:
            return fail(self._error) if self._error is not None else succeed(self._outcome)
        if self._deferred is None:
            self._deferred = Deferred()
        return self._deferred

    def __await__(self) -> Generator[Any, Any, AGIResult]:
        if self._outcome is _PENDING:
            value = yield self
            if value is self:
                # Driven by something that does not know AGIRequest (Twisted's inlineCallbacks sends a
                # non-Deferred straight back): wait through a Deferred instead.
                value = yield self.deferred()
            return value  # type: ignore[no-any-return]
        if self._error is not None:
            raise self._error
        return self._outcome  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        state = "pending" if self._outcome is _PENDING else ("failed" if self._error else "done")
        return f"<AGIRequest {self.data[:40]!r} {state}>"


class HandlerRunner:
    """Drive one handler coroutine: resume it from AGI answers directly, from Deferreds via callbacks.

    Like Twisted's driver it runs every step in the handler's own copy of the context, so context
    variables a handler sets never leak into the reactor or other calls.
    """

    __slots__ = ("_coro", "_send", "_ctx", "_on_done", "_on_error")

    def __init__(
        self,
        coro: Coroutine[Any, Any, Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[Failure], None],
    ) -> None:
        self._coro = coro
        self._send = coro.send  # bound once: a handler is resumed once per command
        self._ctx = contextvars.copy_context()
        self._on_done = on_done
        self._on_error = on_error

    def start(self) -> None:
        self.send(None)

    def send(self, value: Any) -> None:
        try:
            yielded = self._ctx.run(self._send, value)
        except StopIteration as stop:
            self._on_done(stop.value)
            return
        except BaseException:
            self._on_error(Failure())
            return
        if type(yielded) is AGIRequest and yielded._waiter is None:
            yielded._waiter = self  # the usual step, inline: the handler awaits its next command
        else:
            self._wait(yielded)

    def throw(self, error: BaseException) -> None:
        try:
            yielded = self._ctx.run(self._coro.throw, error)
        except StopIteration as stop:
            self._on_done(stop.value)
            return
        except BaseException:
            self._on_error(Failure())
            return
        self._wait(yielded)

    def _wait(self, yielded: Any) -> None:
        if type(yielded) is AGIRequest:
            if yielded._waiter is None:
                yielded._waiter = self
            else:  # already awaited elsewhere: share through its Deferred
                yielded.deferred().addCallbacks(self.send, self._throw_failure)
        elif isinstance(yielded, Deferred):
            yielded.addCallbacks(self.send, self._throw_failure)
        elif isinstance(yielded, asyncio.Future):
            # An asyncio awaitable (a coroutine's future, pool.run, asyncio.sleep, a Task): resume when it is done,
            # as asyncio's Task would (it clears the "blocking" flag it set when it yielded).
            yielded._asyncio_future_blocking = False
            yielded.add_done_callback(self._future_done)
        elif yielded is None:  # a bare yield (asyncio.sleep(0)): let the loop run others, then carry on
            asyncio.get_running_loop().call_soon(self.send, None)
        else:
            self.throw(
                TypeError(
                    f"a FastAGI handler awaited {yielded!r}: await AGI commands, coroutines and asyncio futures "
                    "(or Deferreds)"
                )
            )

    def _future_done(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            self.throw(asyncio.CancelledError())
            return
        error = future.exception()
        if error is not None:
            self.throw(error)
        else:
            self.send(future.result())

    def _throw_failure(self, failure: Failure) -> None:
        self.throw(failure.value)


def drive(coro: Coroutine[Any, Any, Any]) -> Deferred[Any]:
    """Run ``coro`` with :class:`HandlerRunner` (it may await AGI commands, Deferreds and asyncio futures alike);
    a Deferred with its result. The runner of application coroutines on the routed call's path."""
    result: Deferred[Any] = Deferred()
    HandlerRunner(coro, result.callback, result.errback).start()
    return result
