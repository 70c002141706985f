"""Admin edits reach every node at once: a reload published over Redis pub/sub (without Redis: this node only).

The node that made the change reloads before it answers (so the admin's next call is routed by it); every other
node reloads when the message arrives — no restart, no waiting for the 60 s refresh. A message carries the
sender's node id, so the sender does not reload twice. The subscription reconnects after a Redis error; while it
is down the periodic refresh still catches up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("ccserver.admin")

CHANNEL = "ccserver:admin:reload"
RETRY_SECONDS = 2.0

Reloader = Callable[[], Awaitable[Any]]


class ConfigReloads:
    def __init__(self, redis: Any = None, node: str | None = None,
                 sleep: Callable[[float], Awaitable[Any]] | None = None):
        self.redis = redis
        self.node = node or secrets.token_hex(6)
        self.reloaders: list[Reloader] = []
        self.applied = 0  # reloads run on this node (tests and the admin API's answer)
        self._sleep = sleep or asyncio.sleep
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    def on_reload(self, reloader: Reloader) -> None:
        self.reloaders.append(reloader)

    async def apply(self, what: str) -> None:
        self.applied += 1
        for reloader in self.reloaders:
            try:
                await reloader()
            except Exception as exc:  # noqa: BLE001 - one failed reload must not stop the others
                log.warning("reload after %s failed on this node (%s)", what, type(exc).__name__)

    async def publish(self, what: str) -> bool:
        """Reload here, then tell the other nodes. False: the other nodes could not be told (they catch up at
        their next periodic refresh)."""
        await self.apply(what)
        if self.redis is None:
            return True
        try:
            await self.redis.publish(CHANNEL, json.dumps({"node": self.node, "what": what}))
        except Exception as exc:  # noqa: BLE001 - Redis down: this node has it; the rest refresh on their own
            log.warning("could not tell the other nodes to reload (%s)", type(exc).__name__)
            return False
        return True

    async def start(self) -> None:
        if self.redis is not None and self._task is None:
            self._task = asyncio.ensure_future(self._listen())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                self.subscribed.set()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        body = json.loads(message["data"])
                    except (ValueError, TypeError):
                        continue
                    if isinstance(body, dict) and body.get("node") != self.node:
                        await self.apply(str(body.get("what", "")))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect after a pause
                self.subscribed.clear()
                log.warning("admin reload subscription lost (%s); retrying", type(exc).__name__)
                await self._sleep(RETRY_SECONDS)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # noqa: BLE001, S110 - closing a broken connection
                    pass
