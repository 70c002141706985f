"""The websocket listener (``ws.listen``) on the shared event loop: ``/ws/agent`` and any socket kind another
module registers (``/ws/wallboard``).

A socket opens with a one-time ticket (``?ticket=…``, :mod:`screenpop.ws_tickets`); when the browser sends an
``Origin`` it must be one of ``ws.allowed_origins`` (default: the HTTP origin). A refused socket is accepted, then
closed at once with a code and a reason a browser can read (``CloseEvent.code`` / ``.reason``), and audited
(``ws.refused``). Close codes: 4400 bad request (``last_seq``), 4401 ticket missing / invalid, used or expired /
session ended, 4403 origin not allowed / ticket for another socket / role not allowed, 4404 no such socket, 1001
server stopping.

A socket stays bound to its user: a deactivated user's open sockets close with 4401 ``user deactivated``, and a
user an admin forced to choose a new password with 4401 ``password change required`` — at once on the node that
did it (:meth:`WsServer.end_user`), on the others at their next check of the users holding sockets
(``users_refused``, every ``USER_CHECK_SECONDS``: one SQL read for all the sockets held).

Another module adds a socket kind with :meth:`WsServer.add_kind` (a path, the roles allowed, and an ``async
handler(ws, grant, params)`` that owns the socket until it returns); ``/api/ws-ticket`` issues tickets for every
kind registered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from ccserver.components import ListenError
from ccserver.metrics import REGISTRY
from ccserver.web.refusals import RefusalThrottle
from screenpop.ws_tickets import Grant, TicketRefused

log = logging.getLogger("ccserver.screenpop")

OPEN = REGISTRY.counter("ccserver_ws_opened_total", "Websockets opened, by kind")
REFUSED = REGISTRY.counter("ccserver_ws_refused_total", "Websockets refused at the handshake, by reason")

BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND = 4400, 4401, 4403, 4404
REFUSALS: dict[str, tuple[int, str]] = {
    "missing": (UNAUTHORIZED, "ticket missing"),
    "invalid": (UNAUTHORIZED, "ticket invalid, used or expired"),
    "wrong_socket": (FORBIDDEN, "ticket is for another socket"),
    "origin": (FORBIDDEN, "origin not allowed"),
    "role": (FORBIDDEN, "role not allowed on this socket"),
    "path": (NOT_FOUND, "no such socket"),
    "last_seq": (BAD_REQUEST, "last_seq must be a non-negative integer"),
    "session_ended": (UNAUTHORIZED, "session ended"),
    "deactivated": (UNAUTHORIZED, "user deactivated"),
    "password_change": (UNAUTHORIZED, "password change required"),
}
USER_CHECK_SECONDS = 10.0
MAX_INCOMING = 4096  # clients send nothing we need; a large frame is an error
BACKLOG = 2048

Handler = Callable[[ServerConnection, Grant, dict[str, str]], Awaitable[None]]
Audit = Callable[[str, Grant | None, str, dict[str, Any]], Awaitable[None]]


@dataclass
class SocketKind:
    name: str
    path: str
    handler: Handler | None = None
    roles: tuple[str, ...] | None = None  # None: any signed-in user


class WsServer:
    def __init__(self, tickets: Any, *, host: str, port: int, public_url: str = "",
                 allowed_origins: Iterable[str] = (), audit: Audit | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.tickets = tickets
        self.host, self.port = host, port
        # The base the socket paths (/ws/agent …) are appended to; a base naming the /ws prefix itself means the same.
        self._public_url = public_url.rstrip("/").removesuffix("/ws")
        self.allowed_origins = {o.lower().rstrip("/") for o in allowed_origins}
        self.http_origin = ""  # set once HTTP listens: the default allowed origin
        self.audit = audit
        # Refusals before a ticket is redeemed (no ticket, a made-up one, a foreign origin, a wrong path) can be
        # sent by anyone: audited once a minute per address, reason and path (see ccserver/web/refusals.py).
        self.anonymous_refusals = RefusalThrottle(clock)
        self.kinds: dict[str, SocketKind] = {}
        self._by_session: dict[str, set[ServerConnection]] = {}
        self._grants: dict[ServerConnection, Grant] = {}  # the open sockets and whose they are
        self._server: Server | None = None
        # ``ids -> {id: reason}`` for those whose sockets must close (a REFUSALS key: ``deactivated``,
        # ``password_change``); None: not checked. See the module docstring.
        self.users_refused: Callable[[set[int]], Awaitable[dict[int, str]]] | None = None
        self.user_check_seconds = USER_CHECK_SECONDS
        self._checker: asyncio.Task[None] | None = None

    # -- the registry ----------------------------------------------------------------------------------------
    def add_kind(self, name: str, path: str, handler: Handler | None = None,
                 roles: Iterable[str] | None = None) -> SocketKind:
        kind = SocketKind(name, path, handler, tuple(roles) if roles is not None else None)
        self.kinds[name] = kind
        return kind

    def kind(self, name: str) -> SocketKind | None:
        return self.kinds.get(name)

    @property
    def public_url(self) -> str:
        return self._public_url or f"ws://{self.host}:{self.bound_port}"

    @property
    def public_origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def bound_port(self) -> int:
        if self._server is not None:
            for sock in self._server.sockets:
                return int(sock.getsockname()[1])
        return self.port

    def url_for(self, kind: SocketKind, ticket: str) -> str:
        return f"{self.public_url}{kind.path}?ticket={ticket}"

    def origins(self) -> set[str]:
        return self.allowed_origins or ({self.http_origin.lower()} if self.http_origin else set())

    # -- the listener ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        # No compression: permessage-deflate keeps ~64 KiB of zlib state per socket; frames are small anyway.
        # A listen backlog for a whole floor reconnecting at once (the kernel caps it at net.core.somaxconn).
        try:
            self._server = await serve(self._handle, self.host, self.port, compression=None, max_size=MAX_INCOMING,
                                       max_queue=4, ping_interval=20, ping_timeout=20, server_header=None,
                                       backlog=BACKLOG)
        except OSError as exc:  # the port taken (a second ccserver run), or not ours to bind
            raise ListenError(f"cannot listen on {self.host}:{self.port} (ws.listen): {exc.strerror or exc}") from None
        if self.users_refused is not None:
            self._checker = asyncio.ensure_future(self._check_users_forever())

    async def stop(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            self._checker = None
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None

    def end_session(self, session_id: str) -> None:
        """A login ended (logout, deactivation, expiry): its sockets close (4401 session ended)."""
        for ws in list(self._by_session.pop(session_id, ())):
            asyncio.ensure_future(ws.close(*REFUSALS["session_ended"]))

    def end_user(self, user_id: int, reason: str = "deactivated") -> int:
        """The user was deactivated (``reason`` ``deactivated``) or must choose a new password
        (``password_change``): their sockets here close with 4401 and that reason. How many."""
        code, text = REFUSALS[reason]
        closing = [ws for ws, grant in self._grants.items() if grant.user_id == user_id]
        for ws in closing:
            asyncio.ensure_future(ws.close(code, text))
        return len(closing)

    async def check_users(self) -> int:
        """Close the sockets of users no longer allowed one (deactivated, or forced to change their password, on
        another node or from a shell). How many closed."""
        if self.users_refused is None or not self._grants:
            return 0
        ids = {grant.user_id for grant in self._grants.values()}
        refused = await self.users_refused(ids)
        return sum(self.end_user(user_id, reason) for user_id, reason in refused.items() if user_id in ids)

    async def _check_users_forever(self) -> None:
        while True:
            await asyncio.sleep(self.user_check_seconds)
            try:
                await self.check_users()
            except Exception as exc:  # noqa: BLE001 - checked again next time (SQL down: sockets stay)
                log.warning("websocket user check failed (%s)", type(exc).__name__)

    @property
    def connections(self) -> int:
        return len(self._server.connections) if self._server is not None else 0

    async def _refuse(self, ws: ServerConnection, reason: str, grant: Grant | None, path: str) -> None:
        code, text = REFUSALS[reason]
        REFUSED.inc(reason=reason)
        ip = str(ws.remote_address[0]) if ws.remote_address else ""
        repeats = self.anonymous_refusals.admit(ip, reason, path[:64]) if grant is None else 0
        if self.audit is not None and repeats is not None:
            detail: dict[str, Any] = {"reason": reason, "path": path[:64], "code": code}
            if repeats:
                detail["repeats"] = repeats
            try:
                await self.audit("ws.refused", grant, ip, detail)
            except Exception as exc:  # noqa: BLE001 - the refusal stands; the audit failure is logged
                log.error("could not audit a refused websocket: %s", exc)
        await ws.close(code, text)

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        parts = urlsplit(request.path)
        kind = next((k for k in self.kinds.values() if k.path == parts.path), None)
        if kind is None or kind.handler is None:
            return await self._refuse(ws, "path", None, parts.path)
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower().rstrip("/") not in self.origins():
            return await self._refuse(ws, "origin", None, parts.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, max_num_fields=8).items()}
        try:
            grant = await self.tickets.redeem(params.get("ticket"), kind.name)
        except TicketRefused as refused:
            return await self._refuse(ws, refused.reason, None, parts.path)
        if kind.roles is not None and grant.role != "admin" and grant.role not in kind.roles:
            return await self._refuse(ws, "role", grant, parts.path)
        last = params.get("last_seq")
        if last is not None and not (last.isascii() and last.isdigit() and len(last) < 16):
            return await self._refuse(ws, "last_seq", grant, parts.path)
        OPEN.inc(kind=kind.name)
        sockets = self._by_session.setdefault(grant.session_id, set())
        sockets.add(ws)
        self._grants[ws] = grant
        try:
            await kind.handler(ws, grant, params)
        except ConnectionClosed:
            pass  # the client went, or broke the rules (a message over 4 KiB: closed 1009): not a server error
        finally:
            self._grants.pop(ws, None)
            sockets.discard(ws)
            if not sockets:
                self._by_session.pop(grant.session_id, None)


def sender(ws: ServerConnection) -> Callable[[str], None]:
    """Write text frames without waiting: a slow client never holds up the producer (its frames wait in its own
    transport buffer). The frames one turn of the event loop queues for a socket go out in ONE write at the end
    of that turn — a ring's ``agent_state`` and ``pop`` (or an answer's ``update`` and ``agent_state``) cost
    one send system call, not two, and the second frame does not wait behind the first one's."""
    return _Outbox(ws)


class _Outbox:
    """One socket's frames waiting for the end of the loop's turn (small: one per connected agent)."""

    __slots__ = ("ws", "queued")

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.queued: list[str] | None = None

    def __call__(self, text: str) -> None:
        if self.queued is None:
            self.queued = [text]
            asyncio.get_running_loop().call_soon(self.flush)
        else:
            self.queued.append(text)

    def flush(self) -> None:
        texts, self.queued = self.queued, None
        if texts:
            write_frames(self.ws, texts)


def write_frames(ws: ServerConnection, texts: list[str]) -> None:
    """Write ``texts`` to ``ws`` as text frames in one transport write (a server's frames are not masked: the
    bytes are the frame as is, as :mod:`ccserver.wallboard.fanout` writes them). A socket no longer open gets
    nothing; one with an extension or a fragmented send in progress goes through websockets' ``broadcast``."""
    protocol = ws.protocol
    if protocol.state is not State.OPEN:
        return
    if protocol.extensions or ws.send_in_progress is not None:
        for text in texts:
            broadcast((ws,), text)
        return
    serialize = Frame.serialize
    data = b"".join([serialize(Frame(Opcode.TEXT, text.encode()), mask=False, extensions=()) for text in texts])
    try:
        ws.transport.write(data)
    except Exception as exc:  # noqa: BLE001 - as broadcast does: the socket is going; its reader sees it close
        log.warning("a websocket write failed: %s", type(exc).__name__)
