"""A resilient AMI client for one Asterisk server: connect, log in, keep alive, reconnect, resync.

Why not ``ClientService``: its state machine has no transition for a connection that drops while
``prepareConnection`` (our login) is still running, which is exactly what a refused AMI login does
(Asterisk closes the socket ~1 s after ``Authentication failed``). The loop below is small and owns
every case: connect failed, login failed (slow retry), connection lost (capped backoff with jitter).

Nothing is ever re-sent after a reconnect. Pending actions fail with ``AMIConnectionLost``; an
``Originate`` whose outcome was not yet known fails with ``OriginateOutcomeUnknown``.
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import IDelayedCall, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure

from ccserver.ami.actions import HeaderValue, build_action
from ccserver.ami.dispatch import EventDispatcher, Handler, When, call_handler
from ccserver.ami.errors import AMIAuthError, AMIConnectionLost, AMIError, AMITimeout, OriginateOutcomeUnknown
from ccserver.ami.message import AMIMessage
from ccserver.ami.metrics import AMIMetrics
from ccserver.ami.protocol import ActionResult, AMIProtocol
from ccserver.events.backlog import ReadBacklog
from ccserver.logs import log_text

log = logging.getLogger("ccserver.ami")

# Originate "Reason" codes (Asterisk's AST_CONTROL_* values reported in OriginateResponse).
ORIGINATE_REASONS: dict[int, str] = {
    0: "failed",  # no such extension/context, channel driver refused, …
    1: "hangup",
    3: "no_answer",  # rang until the Originate timeout
    4: "answered",
    5: "busy",
    8: "congestion",
}


def backoff_delay(attempt: int, *, initial: float = 1.0, cap: float = 30.0, factor: float = 2.0,
                  jitter: float = 0.2, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with ±jitter: 1, 2, 4, … 30 s. ``attempt`` counts from 1."""
    base = min(cap, initial * factor ** max(0, min(attempt - 1, 64)))
    spread = (rng or random).uniform(-jitter, jitter)
    return max(0.05, min(cap, base * (1.0 + spread)))


@dataclass(frozen=True)
class AMIServerConfig:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "ccserver"
    secret: str = ""
    auth: str = "md5"  # "md5" (Challenge + Key) or "plain" (Secret on the wire)
    events: str | None = None  # Login "Events:" header; None = the AMI user's read= permissions
    ping_interval: float = 20.0
    ping_timeout: float = 10.0
    login_timeout: float = 10.0
    action_timeout: float = 60.0
    fully_booted_timeout: float = 10.0  # resync anyway if FullyBooted never comes (user lacks read=system)
    auth_retry_delay: float = 60.0  # slow retry after a refused login
    backoff_initial: float = 1.0
    backoff_cap: float = 30.0
    max_message_size: int = 1 << 20

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> AMIServerConfig:
        """From ccserver.config.Config's [ami] section."""
        ami = config.ami
        return cls(host=ami.host, port=ami.port, username=ami.username, secret=ami.secret, **overrides)


class OriginateResult:
    """The ``OriginateResponse`` event of an async Originate, with its Reason decoded."""

    __slots__ = ("event", "reason", "outcome", "uniqueid", "channel", "action_id")

    def __init__(self, event: AMIMessage) -> None:
        self.event = event
        try:
            self.reason = int(event.get("Reason", "0") or 0)
        except ValueError:
            self.reason = 0
        self.outcome = ORIGINATE_REASONS.get(self.reason, "failed")
        uniqueid = event.get("Uniqueid")
        self.uniqueid = None if uniqueid in (None, "", "<unknown>") else uniqueid
        self.channel = event.get("Channel")
        self.action_id = event.action_id

    @property
    def answered(self) -> bool:
        return self.reason == 4 and event_succeeded(self.event)

    def __repr__(self) -> str:
        return f"<OriginateResult {self.action_id} reason={self.reason} {self.outcome}>"


def event_succeeded(event: AMIMessage) -> bool:
    return event.get("Response") == "Success"


class _OriginateWait:
    __slots__ = ("deferred", "protocol", "timer")

    def __init__(self, deferred: Deferred[OriginateResult], protocol: AMIProtocol | None) -> None:
        self.deferred = deferred
        self.protocol = protocol
        self.timer: IDelayedCall | None = None


class _Factory(Factory):
    def __init__(self, client: AMIClient) -> None:
        self.client = client

    def buildProtocol(self, addr: Any) -> AMIProtocol:
        return self.client._build_protocol()


class AMIClient:
    """One Asterisk server. ``start()`` connects and keeps the connection up until ``stop()``.

    Subscribe with ``on(event, handler)`` / ``on_any(handler)``; subscriptions survive reconnects.
    Register ``on_resync(callback)``: it runs after each (re)connect once ``FullyBooted`` arrives.
    Every delivered message carries ``msg.server`` (this client's ``server`` name).
    """

    def __init__(
        self,
        config: AMIServerConfig,
        *,
        reactor: Any,
        server: str = "default",
        endpoint: IStreamClientEndpoint | None = None,
        rng: random.Random | None = None,
        backlog: ReadBacklog | None = None,
    ) -> None:
        self.config = config
        self.backlog = backlog  # each connection reports to it whether it is behind on its input
        self.reactor = reactor
        self.server = server
        self.endpoint = endpoint or TCP4ClientEndpoint(reactor, config.host, config.port, timeout=10)
        self.rng = rng or random.Random()
        self.dispatcher = EventDispatcher()
        self.metrics = AMIMetrics(server)
        self.protocol: AMIProtocol | None = None  # set while logged in
        self.running = False
        self.attempts = 0  # consecutive failed attempts
        self.connections = 0  # successful logins so far
        # Since when (reactor seconds) this running client has had no logged-in link: the pages say so.
        self.down_since: float | None = None
        self._auth_failed = False
        self._retry: IDelayedCall | None = None
        self._connecting: Deferred[Any] | None = None
        self._logging_in: AMIProtocol | None = None
        self._resync_callbacks: list[Callable[[AMIClient], Any]] = []
        self._connected_callbacks: list[Callable[[AMIClient], Any]] = []
        self._originates: dict[str, _OriginateWait] = {}
        self._id_prefix = f"cc{secrets.token_hex(3)}"
        self._proto_seq = 0
        self._originate_seq = 0
        self._waiters: list[Deferred[AMIClient]] = []
        # Internal subscriptions: they make these events "wanted", so they are parsed.
        self.dispatcher.on("FullyBooted", self._on_fully_booted)
        self.dispatcher.on("OriginateResponse", self._on_originate_response)
        self.metrics.connected.set(0, server=server)

    # -- public API ------------------------------------------------------------------------------
    def on(self, event: str, handler: Handler, *, when: When | None = None) -> Callable[[], None]:
        """Subscribe to events named ``event`` (``when``: see :meth:`EventDispatcher.on`)."""
        return self.dispatcher.on(event, handler, when=when)

    def on_any(self, handler: Handler) -> Callable[[], None]:
        return self.dispatcher.on_any(handler)

    def on_resync(self, callback: Callable[[AMIClient], Any]) -> None:
        """``callback(client)`` after every (re)connect, once Asterisk is FullyBooted. May return an awaitable."""
        self._resync_callbacks.append(callback)

    def on_connected(self, callback: Callable[[AMIClient], Any]) -> None:
        """``callback(client)`` right after each successful login (before FullyBooted/resync)."""
        self._connected_callbacks.append(callback)

    @property
    def connected(self) -> bool:
        return self.protocol is not None and self.protocol.logged_in

    def when_connected(self) -> Deferred[AMIClient]:
        """Fires with the client once logged in (at once if already)."""
        if self.connected:
            d: Deferred[AMIClient] = Deferred()
            d.callback(self)
            return d
        d = Deferred()
        self._waiters.append(d)
        return d

    def start(self) -> None:
        if self.running:
            return
        self.running = True
        if not self.connected:
            self.down_since = self.reactor.seconds()
        self._connect()

    def stop(self) -> None:
        self.running = False
        if self._retry is not None and self._retry.active():  # type: ignore[misc]
            self._retry.cancel()  # type: ignore[misc]
        self._retry = None
        if self._connecting is not None:
            self._connecting.cancel()
        proto = self.protocol
        if proto is not None and proto.transport is not None:
            proto.transport.loseConnection()  # type: ignore[misc]

    def send_action(self, action: str, headers: dict[str, HeaderValue] | None = None, /, *,
                    timeout: float | None = -1.0, complete_event: str | None = None,
                    **more: HeaderValue) -> Deferred[ActionResult]:
        """``send_action("QueueStatus", Queue="vip")`` -> Deferred[ActionResult] (awaitable in coroutines).

        Header values: str/int/bool, list (repeated header), dict (``Variable={"A": "1"}``), None (omitted).
        Raises ValueError immediately, writing nothing, for CR/LF/NUL or non-token names.
        """
        merged = dict(headers or {})
        merged.update(more)
        action_id = merged.pop("ActionID", None)
        proto = self.protocol
        if proto is None or not proto.logged_in:
            build_action(action, "x", merged)  # validate even when offline: bad input is a ValueError
            return fail(AMIConnectionLost(f"{action}: not connected to {self.server}"))
        return proto.send_action(action, merged, action_id=action_id,  # type: ignore[arg-type]
                                 complete_event=complete_event, timeout=timeout)

    def new_originate_id(self) -> str:
        """A fresh ActionID for ``originate(action_id=…)``. The sequence makes it unique within this process (a
        random part alone collides after ~10^5 originates, and campaign attempts keep action ids unique in the
        database); the random prefix and tail keep it apart from earlier processes' ids."""
        self._originate_seq += 1
        return f"{self._id_prefix}-orig-{self._originate_seq}-{secrets.token_hex(4)}"

    def originate(
        self,
        channel: str,
        *,
        context: str | None = None,
        exten: str | None = None,
        priority: int | str | None = None,
        application: str | None = None,
        data: str | None = None,
        caller_id: str | None = None,
        timeout_ms: int = 30_000,
        variables: dict[str, Any] | None = None,
        account: str | None = None,
        result_timeout: float | None = None,
        action_id: str | None = None,
        **extra: HeaderValue,
    ) -> Deferred[OriginateResult]:
        """Async Originate that fires with the matching ``OriginateResponse`` (see ``OriginateResult.reason``).

        Fails with AMIError if Asterisk refuses the action, and with OriginateOutcomeUnknown if the
        connection drops (or nothing arrives within ``result_timeout``) before the outcome is known.
        Never re-sent.

        ``action_id``: the ActionID to send (default: a fresh ``new_originate_id()``). A caller that must
        announce the originate before Asterisk can answer it (the dialer: ``tracker.expect_originate``) takes
        an id first, announces it, then passes it here. ValueError, nothing sent, for an id that is unsafe
        (CR/LF/NUL) or already waiting for its OriginateResponse.
        """
        headers: dict[str, HeaderValue] = {
            "Channel": channel, "Context": context, "Exten": exten, "Priority": priority,
            "Application": application, "Data": data, "CallerID": caller_id, "Timeout": timeout_ms,
            "Account": account, "Async": "true", "Variable": variables or None,
        }
        headers.update(extra)
        proto = self.protocol
        if action_id is None:
            action_id = self.new_originate_id()
        elif not action_id or action_id in self._originates:
            raise ValueError(f"Originate ActionID {action_id!r} is empty or already waiting for its response")
        if proto is None or not proto.logged_in:
            build_action("Originate", action_id, headers)
            return fail(AMIConnectionLost(f"Originate: not connected to {self.server}"))
        result: Deferred[OriginateResult] = Deferred()
        wait = _OriginateWait(result, proto)
        sent = proto.send_action("Originate", headers, action_id=action_id, timeout=self.config.action_timeout)
        self._originates[action_id] = wait
        limit = result_timeout if result_timeout is not None else timeout_ms / 1000.0 + 30.0
        wait.timer = self.reactor.callLater(limit, self._originate_timed_out, action_id)

        def refused(failure: Failure) -> None:
            w = self._originates.pop(action_id, None)
            if w is None:
                return None
            self._cancel_timer(w)
            if failure.check(AMIConnectionLost) and not failure.check(OriginateOutcomeUnknown):
                failure = Failure(OriginateOutcomeUnknown(action_id, str(failure.value)))
            elif failure.check(AMITimeout):
                failure = Failure(OriginateOutcomeUnknown(action_id, "no response to the action"))
            w.deferred.errback(failure)
            return None

        sent.addErrback(refused)
        return result

    # -- connection loop -------------------------------------------------------------------------
    def _build_protocol(self) -> AMIProtocol:
        self._proto_seq += 1
        return AMIProtocol(
            self.reactor,
            dispatcher=self.dispatcher,
            server=self.server,
            action_id_prefix=f"{self._id_prefix}-{self._proto_seq}",
            max_message_size=self.config.max_message_size,
            default_timeout=self.config.action_timeout,
            metrics=self.metrics,
            on_lost=self._on_lost,
            backlog=self.backlog,
        )

    def _connect(self) -> None:
        self._retry = None
        if not self.running:
            return
        d = self.endpoint.connect(_Factory(self))  # type: ignore[call-arg, misc, arg-type]
        self._connecting = d
        d.addCallbacks(self._on_connect, self._on_connect_failed)

    def _on_connect_failed(self, failure: Failure) -> None:
        self._connecting = None
        if failure.check(Exception) and self.running:
            log.warning("AMI %s: connect to %s:%s failed: %s", self.server, self.config.host, self.config.port,
                        failure.getErrorMessage())
            self._schedule_retry()

    def _on_connect(self, proto: AMIProtocol) -> None:
        self._connecting = None
        self._logging_in = proto
        d = self._login(proto)
        d.addCallbacks(lambda _: self._logged_in(proto), lambda f: self._login_failed(proto, f))

    def _login(self, proto: AMIProtocol) -> Deferred[Any]:
        cfg = self.config
        timer = self.reactor.callLater(cfg.login_timeout, proto.abort)

        def stop_timer(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            return result

        async def run() -> None:
            await proto.banner_received
            extra: dict[str, HeaderValue] = {"Events": cfg.events}
            try:
                if cfg.auth == "md5":
                    challenge = await proto.send_action("Challenge", {"AuthType": "MD5"})
                    # MD5 is what AMI's challenge scheme uses; it keeps the secret off the wire.
                    key = hashlib.md5((challenge["Challenge"] + cfg.secret).encode()).hexdigest()  # noqa: S324
                    await proto.send_action("Login", {"AuthType": "MD5", "Username": cfg.username, "Key": key,
                                                      **extra})
                else:
                    await proto.send_action("Login", {"Username": cfg.username, "Secret": cfg.secret, **extra})
            except AMIError as exc:
                raise AMIAuthError(exc.action, exc.message, exc.response) from None

        return ensureDeferred(run()).addBoth(stop_timer)

    def _login_failed(self, proto: AMIProtocol, failure: Failure) -> None:
        if self._logging_in is proto:
            self._logging_in = None
        self.metrics.login_failures.inc(server=self.server)
        if failure.check(AMIError):
            self._auth_failed = True
            log.error("AMI %s: login as %r refused by Asterisk: %s — check [ami] username/secret and "
                      "manager.conf; retrying in %.0f s", self.server, self.config.username,
                      log_text(failure.value.message, 200),  # type: ignore[union-attr]
                      self.config.auth_retry_delay)
        else:
            log.warning("AMI %s: login did not complete: %s", self.server, log_text(failure.getErrorMessage(), 200))
        if proto.connected:
            proto.abort()  # _on_lost schedules the retry
        # else: connectionLost already ran and scheduled it

    def _logged_in(self, proto: AMIProtocol) -> None:
        if self._logging_in is proto:
            self._logging_in = None
        if not proto.connected:
            return
        proto.logged_in = True
        self._auth_failed = False
        self.attempts = 0
        if self.connections:
            self.metrics.reconnects.inc(server=self.server)
        self.connections += 1
        self.protocol = proto
        self.down_since = None
        self.metrics.connected.set(1, server=self.server)
        log.info("AMI %s: logged in (Asterisk Call Manager %s)", self.server, proto.version)
        proto.start_keepalive(self.config.ping_interval, self.config.ping_timeout)
        proto.resynced = False  # type: ignore[attr-defined]
        proto.booted_timer = self.reactor.callLater(  # type: ignore[attr-defined]
            self.config.fully_booted_timeout, self._fully_booted_missing, proto)
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            w.callback(self)
        for cb in list(self._connected_callbacks):
            self._run_callback(cb, "connected")
        if getattr(proto, "booted_early", False):
            self._resync(proto)

    def _on_lost(self, proto: AMIProtocol, reason: Failure) -> None:
        timer = getattr(proto, "booted_timer", None)
        if timer is not None and timer.active():
            timer.cancel()
        if self.protocol is proto:
            self.protocol = None
            self.down_since = self.reactor.seconds()
            self.metrics.connected.set(0, server=self.server)
            log.warning("AMI %s: connection lost: %s", self.server, reason.getErrorMessage())
        for aid, wait in list(self._originates.items()):
            if wait.protocol is proto:
                del self._originates[aid]
                self._cancel_timer(wait)
                wait.deferred.errback(Failure(OriginateOutcomeUnknown(aid, "connection lost before OriginateResponse")))
        if self.running:
            self._schedule_retry()

    def _schedule_retry(self) -> None:
        if self._retry is not None and self._retry.active():  # type: ignore[misc]
            return
        self.attempts += 1
        delay = backoff_delay(self.attempts, initial=self.config.backoff_initial, cap=self.config.backoff_cap,
                              rng=self.rng)
        if self._auth_failed:
            delay = max(delay, self.config.auth_retry_delay)  # never hammer Asterisk with a bad secret
        log.info("AMI %s: reconnecting in %.1f s (attempt %d)", self.server, delay, self.attempts)
        self._retry = self.reactor.callLater(delay, self._connect)

    # -- resync ----------------------------------------------------------------------------------
    def _on_fully_booted(self, msg: AMIMessage) -> None:
        proto = self.protocol
        if proto is None or not proto.logged_in:
            # FullyBooted can be read in the same chunk as the login response, before _logged_in ran.
            if self._logging_in is not None:
                self._logging_in.booted_early = True  # type: ignore[attr-defined]
            return
        self._resync(proto)

    def _fully_booted_missing(self, proto: AMIProtocol) -> None:
        if proto is self.protocol and not getattr(proto, "resynced", False):
            log.warning("AMI %s: no FullyBooted within %.0f s (does the AMI user have read=system?); resyncing "
                        "anyway", self.server, self.config.fully_booted_timeout)
            self._resync(proto)

    def _resync(self, proto: AMIProtocol) -> None:
        proto.resynced = True  # type: ignore[attr-defined]
        timer = getattr(proto, "booted_timer", None)
        if timer is not None and timer.active():
            timer.cancel()
        log.info("AMI %s: resync", self.server)
        for cb in list(self._resync_callbacks):
            self._run_callback(cb, "resync")

    def _run_callback(self, cb: Callable[[AMIClient], Any], what: str) -> None:
        fake = AMIMessage({"Event": what})
        fake.server = self.server
        call_handler(lambda _m: cb(self), fake)

    # -- originate tracking ----------------------------------------------------------------------
    def _on_originate_response(self, msg: AMIMessage) -> None:
        aid = msg.action_id
        wait = self._originates.pop(aid, None) if aid is not None else None
        if wait is None:
            return
        self._cancel_timer(wait)
        wait.deferred.callback(OriginateResult(msg))

    def _originate_timed_out(self, aid: str) -> None:
        wait = self._originates.pop(aid, None)
        if wait is not None:
            wait.deferred.errback(Failure(OriginateOutcomeUnknown(aid, "no OriginateResponse in time")))

    @staticmethod
    def _cancel_timer(wait: _OriginateWait) -> None:
        if wait.timer is not None and wait.timer.active():  # type: ignore[misc]
            wait.timer.cancel()  # type: ignore[misc]

