"""Process wiring for the AMI side: Asterisk servers -> live state tracker -> call-events hub -> Redis mirror and
call records (and every other subscriber).

Single node (no Redis): one AMI connection per configured Asterisk, the tracker in memory, call records
written behind to SQL. With Redis and several ccserver nodes: per Asterisk, the node holding that server's
lease (``ccserver:ami-lease:<server>``) consumes its AMI, mirrors the state into Redis, writes the call records
and relays every message its tracker applies — AMI events and the lists of each full resync — numbered within its
leadership term (ccserver/ami/relay.py). The other nodes apply the relayed messages to their own trackers in order
(so routing, screen pop … on any node see live state) and rebuild from the mirror when they find one missing
(ccserver/state/follower.py); they write nothing, so nothing is counted twice. Losing the lease stops the AMI
connection before another node may take it; the node then follows the new leader from the last message it relayed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from twisted.internet import defer

from ccserver.ami.client import AMIClient, AMIServerConfig
from ccserver.ami.lease import LeaseKeeper, RedisLease
from ccserver.ami.manager import AMIManager
from ccserver.ami.message import AMIMessage
from ccserver.ami.relay import AUDIENCE_SECONDS, EventRelay, RelayOutbox
from ccserver.bridge import drive
from ccserver.clock import Clock, LoopClock
from ccserver.cluster import default_node_id
from ccserver.config import Config
from ccserver.events import CallEnded, CallEvent, EventHub
from ccserver.state.follower import RelayFollower
from ccserver.state.records import RecordBatcher, sql_sink
from ccserver.state.redis_store import RedisMirror, RedisStateReader
from ccserver.state.tracker import EVENTS, StateTracker

log = logging.getLogger("ccserver.telephony")

LEASE_TTL_MS = 15_000
TERM_KEY = "ccserver:ami-term:"  # + server: INCR numbers the leadership terms
RELAY_FLUSH_SECONDS = 5.0  # at shutdown, how long the last relayed messages may take to go out


class Telephony:
    def __init__(self, config: Config, reactor: Any, session_factory: Any, redis: Any = None,
                 node_id: str | None = None, hub: EventHub | None = None, clock: Clock | None = None) -> None:
        self.reactor = reactor
        self.redis = redis
        self.clock: Clock = clock if clock is not None else LoopClock()
        self.node_id = node_id or f"{default_node_id()}/{id(self):x}"
        self.hub = hub if hub is not None else EventHub()
        self.tracker = StateTracker(publish=self.hub.publish)
        self.records = RecordBatcher(sql_sink(session_factory))
        # A call's record is never lost to a full queue: one that overflows is written at once (submit is O(1)).
        self.hub.subscribe("call-records", self._on_call_ended, kinds=(CallEnded,), on_overflow=self._on_call_ended)
        self.leading: set[str] = set()  # servers whose AMI this node consumes
        # Per server, the tracker's event seqs published while this node led it ([first, last], last None: still
        # leading): its call records are this node's to write, whenever the hub gets round to delivering them.
        self._led: dict[str, list[list[int | None]]] = {}
        self.relay = EventRelay(redis) if redis is not None else None
        self.follower = (RelayFollower(self.relay, RedisStateReader(redis), self.tracker, clock=self.clock,
                                       node_id=self.node_id)
                         if self.relay is not None else None)
        self.outbox = None
        if self.relay is not None and self.follower is not None:
            self.outbox = RelayOutbox(self.relay, self.node_id, listening=self.follower.listening, clock=self.clock,
                                      audience_interval=AUDIENCE_SECONDS)
            self.follower.on_hello = self.outbox.hello  # while this node leads, the others' hellos reach its outbox
        self.store = None
        if redis is not None:
            assert self.outbox is not None
            self.store = RedisMirror(redis, self.tracker, owns=self.leading.__contains__,
                                     positions=self.outbox.positions)
            # A mirror that lost an event writes its server whole at the next flush (as after a resync).
            store = self.store
            self.hub.subscribe("redis-mirror", store.on_event, on_overflow=lambda event: store.rewrite(event.server))
        servers = {
            s.name: AMIServerConfig(host=s.host, port=s.port, username=s.username, secret=s.secret,
                                    ping_interval=config.ami.ping_interval)
            for s in config.ami_servers()
        }
        self.ami = AMIManager(servers, reactor=reactor, backlog=self.hub.backlog)
        filters = self.tracker.event_filters()  # what the tracker would ignore is left undecoded by the reader
        for event in EVENTS:
            self.ami.on(event, self._on_event, when=filters.get(event))
        self.ami.on_resync(self._resync)
        self._tasks: list[asyncio.Future[Any]] = []  # lease keepers and relay readers
        self._keepers: list[LeaseKeeper] = []

    @property
    def server_names(self) -> list[str]:
        return list(self.ami.clients)

    # -- events ----------------------------------------------------------------------------------------------
    def _on_event(self, msg: AMIMessage) -> None:
        server = msg.server or "default"
        if self.outbox is None:
            self.tracker.handle(msg, msg.arrival)
            return
        if server not in self.leading:
            return  # read after this node gave the server up: the new leader's relay is the truth now
        self.tracker.handle(msg, msg.arrival)
        self.outbox.event(server, msg)  # numbered now, published by a background task (never waits for Redis)

    def _on_call_ended(self, event: CallEnded) -> None:
        # Only the node consuming a server's AMI writes its call records (followers would duplicate them).
        if self.owns(event):
            self.records.submit(event.record)

    def owns(self, event: CallEvent) -> bool:
        """Whether this node consumed ``event.server``'s AMI when its tracker published ``event``: what the event
        makes happen (a call record, a call back) is this node's to do, however late the hub delivers it."""
        return self.relay is None or self._led_at(event.server, event.seq)

    def _led_at(self, server: str, seq: int) -> bool:
        return any(first is not None and first <= seq and (last is None or seq <= last)
                   for first, last in self._led.get(server, ()))

    def _resync(self, server: str, client: AMIClient) -> defer.Deferred[None]:
        """After every (re)connect: rebuild this server's state from Asterisk's own answers (and relay them)."""

        async def resync() -> None:
            queues = await client.send_action("QueueStatus")
            channels = await client.send_action("CoreShowChannels")
            self._apply_resync(server, queues.events, channels.events, time.time())

        d = drive(resync())  # resumed straight from the AMI replies (Deferreds)
        d.addErrback(lambda f: log.warning("AMI %s resync failed: %s", server, f.getErrorMessage()))
        return d

    def _apply_resync(self, server: str, queue_items: list[AMIMessage], channel_items: list[AMIMessage],
                      now: float) -> None:
        if self.outbox is not None and server not in self.leading:
            log.info("AMI %s resync dropped: this node no longer leads it", server)
            return
        self.tracker.resync(server, queue_items, channel_items, now)
        if self.outbox is not None:
            self.outbox.resync(server, queue_items, channel_items, now)  # the followers apply the same truth
        log.info("AMI %s resynced: %d queue items, %d channels", server, len(queue_items), len(channel_items))

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
        assert self.follower is not None
        for name in self.server_names:
            lease = RedisLease(self.redis, f"ccserver:ami-lease:{name}", self.node_id, ttl_ms=LEASE_TTL_MS,
                               clock=self.clock.monotonic)
            keeper = LeaseKeeper(lease, on_acquired=functools.partial(self._lead, name),
                                 on_lost=functools.partial(self._follow, name))
            self._keepers.append(keeper)
            self._tasks.append(asyncio.ensure_future(keeper.run(self.clock.sleep)))
            self._tasks.append(asyncio.ensure_future(self.follower.run(name)))

    async def _lead(self, name: str) -> None:
        """The lease is ours: number a new term (a Redis error here gives the lease back), then consume AMI."""
        assert self.outbox is not None and self.follower is not None
        term = int(await self.redis.incr(f"{TERM_KEY}{name}"))
        after = self.follower.pause(name, term)
        self.leading.add(name)
        self._led.setdefault(name, []).append([self.tracker.last_seq(name) + 1, None])
        del self._led[name][:-8]  # a few past terms are plenty for records still queued on the hub
        self.outbox.begin(name, term, after)
        if self.store is not None:
            self.store.rewrite(name)  # the mirror holds what this node holds, not what the last leader reached
        log.info("this node (%s) now consumes AMI of %s (term %d, after %s)", self.node_id, name, term, after)
        self.ami.start_server(name)

    def _follow(self, name: str) -> None:
        if name not in self.leading:
            return
        self.leading.discard(name)
        spans = self._led.get(name)
        if spans:
            spans[-1][1] = self.tracker.last_seq(name)
        self.ami.stop_server(name)
        assert self.outbox is not None and self.follower is not None
        position = self.outbox.end(name)
        self.follower.resume(name, position)
        log.warning("this node (%s) stops consuming AMI of %s (lease lost) at %s; following the next leader",
                    self.node_id, name, position)

    async def stop(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        for keeper in self._keepers:
            keeper.stopped = True  # (released below, once the mirror is written)
        for task in self._tasks:
            task.cancel()
        self.ami.stop()
        if self.outbox is not None:  # followers get everything this node applied ...
            try:
                await asyncio.wait_for(self.outbox.flush(), RELAY_FLUSH_SECONDS)
            except TimeoutError:
                log.warning("event relay: messages still unpublished %.0f s after the stop", RELAY_FLUSH_SECONDS)
            self.outbox.close()
        await self.hub.stop()  # deliver what the tracker published (call records, mirror) before closing them
        if self.store is not None:
            await self.store.close()  # ... and the mirror its last state, before the leases go
        for keeper in self._keepers:
            await keeper.stop()
        lost = await self.records.close()
        if lost:
            log.error("%d call records could not be written at shutdown", lost)
