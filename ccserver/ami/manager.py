"""Several Asterisk servers: one AMIClient per configured server, events tagged with the server name."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamClientEndpoint

from ccserver.ami.client import AMIClient, AMIServerConfig, OriginateResult
from ccserver.ami.dispatch import Handler, When
from ccserver.ami.message import AMIMessage
from ccserver.ami.protocol import ActionResult
from ccserver.events.backlog import ReadBacklog


class AMIManager:
    """A pool of AMI clients keyed by server name.

    Handlers registered here apply to every server (present and future); each message they receive
    has ``msg.server`` set. ``deliver(msg)`` injects a message received some other way (a follower node
    reading the leader's events from Redis) so that handlers see exactly what a direct client would.
    """

    def __init__(
        self,
        servers: Mapping[str, AMIServerConfig],
        *,
        reactor: Any,
        endpoints: Mapping[str, IStreamClientEndpoint] | None = None,
        backlog: ReadBacklog | None = None,
    ) -> None:
        self.reactor = reactor
        self.backlog = backlog
        self.clients: dict[str, AMIClient] = {}
        self._subs: list[tuple[str | None, Handler, When | None]] = []
        self._resync: list[Callable[[str, AMIClient], Any]] = []
        for name, cfg in servers.items():
            self.add_server(name, cfg, endpoint=(endpoints or {}).get(name))

    def add_server(self, name: str, config: AMIServerConfig, *, endpoint: IStreamClientEndpoint | None = None
                   ) -> AMIClient:
        if name in self.clients:
            raise ValueError(f"AMI server {name!r} is already configured")
        client = AMIClient(config, reactor=self.reactor, server=name, endpoint=endpoint, backlog=self.backlog)
        self.clients[name] = client
        for event, handler, when in self._subs:
            if event is None:
                client.on_any(handler)
            else:
                client.on(event, handler, when=when)
        client.on_resync(lambda c: self._run_resync(c))
        return client

    # subscriptions
    def on(self, event: str, handler: Handler, *, when: When | None = None) -> None:
        """``handler`` for events named ``event`` of every server (``when``: see ``EventDispatcher.on``)."""
        self._subs.append((event, handler, when))
        for client in self.clients.values():
            client.on(event, handler, when=when)

    def on_any(self, handler: Handler) -> None:
        self._subs.append((None, handler, None))
        for client in self.clients.values():
            client.on_any(handler)

    def on_resync(self, callback: Callable[[str, AMIClient], Any]) -> None:
        """``callback(server_name, client)`` after each (re)connect of any server, once it is FullyBooted."""
        self._resync.append(callback)

    def _run_resync(self, client: AMIClient) -> Any:
        results = [cb(client.server, client) for cb in list(self._resync)]
        deferreds = [r for r in results if isinstance(r, Deferred)]
        return deferreds[0] if len(deferreds) == 1 else None

    # lifecycle
    def start(self, names: Iterable[str] | None = None) -> None:
        for name in names if names is not None else self.clients:
            self.clients[name].start()

    def start_server(self, name: str) -> None:
        self.clients[name].start()

    def stop_server(self, name: str) -> None:
        self.clients[name].stop()

    def stop(self) -> None:
        for client in self.clients.values():
            client.stop()

    # actions
    def client(self, name: str) -> AMIClient:
        return self.clients[name]

    def send_action(self, server: str, action: str, /, **headers: Any) -> Deferred[ActionResult]:
        return self.clients[server].send_action(action, **headers)

    def originate(self, server: str, channel: str, **kwargs: Any) -> Deferred[OriginateResult]:
        return self.clients[server].originate(channel, **kwargs)

    def deliver(self, msg: AMIMessage) -> None:
        """Dispatch a message (with ``msg.server`` set) as if it had been read from that server."""
        client = self.clients.get(msg.server or "")
        if client is None:
            raise KeyError(f"unknown AMI server {msg.server!r}")
        client.dispatcher.dispatch(msg)
