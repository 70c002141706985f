"""Process wiring for the AMI side: Asterisk servers -> live state tracker -> call-events hub -> Redis mirror and
call records (and every other subscriber).

Single node (no Redis): one AMI connection per configured Asterisk, the tracker in memory, call records
written behind to SQL. With Redis and several ccserver nodes: per Asterisk, the node holding that server's
lease consumes its AMI, mirrors the state into Redis, writes the call records and relays every tracked event
over pub/sub; the other nodes follow the relay into their own trackers (so routing on any node sees live
state) and write nothing, so nothing is counted twice. Losing the lease stops the AMI connection before
another node may take it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from typing import Any

from twisted.internet import defer

from ccserver.ami.client import AMIClient, AMIServerConfig
from ccserver.ami.lease import EventRelay, LeaseKeeper, RedisLease
from ccserver.ami.manager import AMIManager
from ccserver.ami.message import AMIMessage
from ccserver.config import Config
from ccserver.events import CallEnded, EventHub
from ccserver.state.records import RecordBatcher, sql_sink
from ccserver.state.redis_store import RedisMirror
from ccserver.state.tracker import EVENTS, StateTracker

log = logging.getLogger("ccserver.telephony")

LEASE_TTL_MS = 15_000


class Telephony:
    def __init__(self, config: Config, reactor: Any, session_factory: Any, redis: Any = None,
                 node_id: str | None = None, hub: EventHub | None = None) -> None:
        self.reactor = reactor
        self.redis = redis
        self.node_id = node_id or f"{socket.gethostname()}:{id(self):x}"
        self.hub = hub if hub is not None else EventHub()
        self.tracker = StateTracker(publish=self.hub.publish)
        self.records = RecordBatcher(sql_sink(session_factory))
        self.hub.subscribe("call-records", self._on_call_ended, kinds=(CallEnded,))
        self.store = RedisMirror(redis, self.tracker) if redis is not None else None
        if self.store is not None:
            self.hub.subscribe("redis-mirror", self.store.on_event)
        servers = {
            s.name: AMIServerConfig(host=s.host, port=s.port, username=s.username, secret=s.secret,
                                    ping_interval=config.ami.ping_interval)
            for s in config.ami_servers()
        }
        self.ami = AMIManager(servers, reactor=reactor)
        for event in EVENTS:
            self.ami.on(event, self._on_event)
        self.ami.on_resync(self._resync)
        self.relay = EventRelay(redis) if redis is not None else None
        self.leading: set[str] = set()  # servers whose AMI this node consumes
        # Called with the server name after each resync this node ran (e.g. agent sign-ins reconciled).
        self.after_resync: list[Any] = []
        self._outbox: list[AMIMessage] = []  # tracked events waiting to be relayed, in arrival order
        self._relaying = False
        self._followers: list[asyncio.Future[Any]] = []  # lease keepers and relay subscriptions
        self._keepers: list[LeaseKeeper] = []

    @property
    def server_names(self) -> list[str]:
        return list(self.ami.clients)

    # -- events ----------------------------------------------------------------------------------------------
    def _on_event(self, msg: AMIMessage) -> None:
        self.tracker.handle(msg, msg.arrival)
        if self.relay is not None and (msg.server or "default") in self.leading:
            # The AMI read path never waits for Redis: queue it; one drain task relays in order.
            self._outbox.append(msg)
            if not self._relaying:
                self._relaying = True
                asyncio.ensure_future(self._drain_outbox()).add_done_callback(_log_failure)

    async def _drain_outbox(self) -> None:
        assert self.relay is not None
        try:
            while self._outbox:
                batch, self._outbox = self._outbox, []
                try:
                    await self.relay.publish_batch(batch)
                except Exception as exc:  # noqa: BLE001 - Redis down: followers resync from Redis state later
                    log.warning("event relay: %d events not relayed: %s", len(batch), exc)
        finally:
            self._relaying = False

    def _on_followed(self, msg: AMIMessage) -> None:
        if (msg.server or "default") not in self.leading:
            self.tracker.handle(msg, msg.arrival)

    def _on_call_ended(self, event: CallEnded) -> None:
        # Only the node consuming a server's AMI writes its call records (followers would duplicate them).
        if self.relay is None or event.server in self.leading:
            self.records.submit(event.record)

    def _resync(self, server: str, client: AMIClient) -> defer.Deferred[None]:
        """After every (re)connect: rebuild this server's state from Asterisk's own answers."""

        async def resync() -> None:
            queues = await client.send_action("QueueStatus")
            channels = await client.send_action("CoreShowChannels")
            self.tracker.resync(server, queues.events, channels.events, time.time())
            log.info("AMI %s resynced: %d queue items, %d channels", server, len(queues.events),
                     len(channels.events))
            for callback in list(self.after_resync):
                try:
                    await callback(server)
                except Exception:  # noqa: BLE001 - one failing follow-up must not stop the others
                    log.exception("after-resync step failed for %s", server)

        d = defer.ensureDeferred(resync())
        d.addErrback(lambda f: log.warning("AMI %s resync failed: %s", server, f.getErrorMessage()))
        return d

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.hub.start()
        self.records.start()
        if self.store is not None:
            self.store.start()
        if self.redis is None:
            self.leading.update(self.server_names)
            self.ami.start()
            return
        assert self.relay is not None
        for name in self.server_names:
            lease = RedisLease(self.redis, f"ccserver:ami-lease:{name}", self.node_id, ttl_ms=LEASE_TTL_MS)
            keeper = LeaseKeeper(lease, on_acquired=functools.partial(self._lead, name),
                                 on_lost=functools.partial(self._follow, name))
            self._keepers.append(keeper)
            self._followers.append(asyncio.ensure_future(keeper.run(asyncio.sleep)))
            self._followers.append(asyncio.ensure_future(self.relay.follow(name, self._on_followed)))

    def _lead(self, name: str) -> None:
        log.info("this node (%s) now consumes AMI of %s", self.node_id, name)
        self.leading.add(name)
        self.ami.start_server(name)

    def _follow(self, name: str) -> None:
        log.warning("this node (%s) stops consuming AMI of %s (lease lost)", self.node_id, name)
        self.leading.discard(name)
        self.ami.stop_server(name)

    async def stop(self) -> None:
        for task in self._followers:
            task.cancel()
        self.ami.stop()
        for keeper in self._keepers:
            await keeper.stop()
        await self.hub.stop()  # deliver what the tracker published (call records, mirror) before closing them
        lost = await self.records.close()
        if lost:
            log.error("%d call records could not be written at shutdown", lost)
        if self.store is not None:
            await self.store.close()


def _log_failure(future: asyncio.Future[Any]) -> None:
    # Redis errors are handled per batch inside the drain; anything reaching here is a bug: say so loudly.
    if not future.cancelled() and future.exception() is not None:
        log.error("event relay drain crashed: %r", future.exception())
