"""``ccserver run`` as a list of components, started in order and stopped in reverse.

A component is anything with ``name``, ``async start()`` and ``async stop()``; :class:`Step` adapts plain
functions (which may return a Deferred, a coroutine or nothing). :class:`Components` starts them one after the
other; when one fails to start, the ones already started are stopped (in reverse) and the error is raised. Stopping
goes in reverse order, each component bounded by ``timeout`` and its failure logged, never stopping the others.

The order of ``ccserver run`` says what depends on what: the thread pools and Redis first, then the live state
(AMI, the call-events hub, the Redis mirror, call records), routing, the jobs, and last the listeners (FastAGI,
HTTP). So at shutdown the listeners stop first — FastAGI stops accepting calls and lets the ones in flight finish —
before the writers flush and close, and the pools and connections go last.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ccserver.bridge import settle

log = logging.getLogger("ccserver")


class ListenError(RuntimeError):
    """A component could not open its listening port (taken, or not ours to bind): ``ccserver run`` says so in one
    line naming the setting, and exits 2."""


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Step:
    """A component made of two plain functions (either may be None)."""

    name: str
    on_start: Callable[[], Any] | None = None
    on_stop: Callable[[], Any] | None = None

    async def start(self) -> None:
        if self.on_start is not None:
            await settle(self.on_start())

    async def stop(self) -> None:
        if self.on_stop is not None:
            await settle(self.on_stop())


class Components:
    def __init__(self, components: Sequence[Component], *, stop_timeout: float = 15.0) -> None:
        self.components = list(components)
        self.stop_timeout = stop_timeout
        self.started: list[Component] = []

    async def start(self) -> None:
        for component in self.components:
            began = time.monotonic()
            try:
                await component.start()
            except BaseException:
                log.error("component %s failed to start; stopping the %d started before it", component.name,
                          len(self.started))
                await self.stop()
                raise
            self.started.append(component)
            log.debug("component %s started in %.1f ms", component.name, (time.monotonic() - began) * 1000)

    async def stop(self) -> None:
        while self.started:
            component = self.started.pop()
            try:
                await asyncio.wait_for(component.stop(), self.stop_timeout)
            except TimeoutError:
                log.error("component %s did not stop within %.0f s", component.name, self.stop_timeout)
            except Exception:  # noqa: BLE001 - one failing stop must not keep the others running
                log.exception("component %s failed to stop cleanly", component.name)
            else:
                log.debug("component %s stopped", component.name)
