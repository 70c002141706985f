"""Drive the HTTP router in-process: a twisted.web DummyRequest in, status/headers/body out.

Handlers are asyncio coroutines, so every request runs on :data:`LOOP` (a private event loop) until it has
answered or has nothing left to do but wait (a hung probe waiting on ``task.Clock``: ``spin()`` after advancing it).
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.web.test.requesthelper import DummyRequest

from agents_ui import Pages
from ccserver.auth import TokenSigner
from ccserver.config import load_config
from ccserver.login_limits import MemoryLoginLimiter
from ccserver.passwords import PasswordWork, hash_password
from ccserver.web.app import build_router
from ccserver.web.context import UserRecord, WebContext
from ccserver.web.http import Router


@dataclass
class MemoryUsers:
    users: dict[str, UserRecord] = field(default_factory=dict)
    audit_log: list[tuple[str, int | None, str, str, dict[str, Any]]] = field(default_factory=list)

    def add(self, user_id: int, username: str, role: str, password: str, active: bool = True) -> None:
        self.users[username] = UserRecord(user_id, username, role, hash_password(password, n=2**10), active)

    def find(self, username: str) -> UserRecord | None:
        return self.users.get(username)

    def get(self, user_id: int) -> UserRecord | None:
        return next((u for u in self.users.values() if u.id == user_id), None)

    def update(self, username: str, **changes: Any) -> None:
        """Change a user as an admin would (deactivate, new role)."""
        from dataclasses import replace

        self.users[username] = replace(self.users[username], **changes)

    def audit(self, action: str, actor_id: int | None, actor_name: str, ip: str, detail: dict[str, Any]) -> None:
        self.audit_log.append((action, actor_id, actor_name, ip, detail))


LOOP = asyncio.new_event_loop()
# Loop turns a request may take without waking on anything but itself (inline blocking calls, the session check).
_TURNS = 200


async def _inline(fn, *args, **kwargs):
    return fn(*args, **kwargs)


def inline_blocking(fn, *a, **k):
    """run_blocking for tests: the call runs when awaited, in the loop's thread."""
    return _inline(fn, *a, **k)


def spin(request: DummyRequest | None = None, turns: int = _TURNS) -> None:
    """Run :data:`LOOP` until ``request`` has finished (or for ``turns`` loop turns when it does not)."""

    async def turn() -> None:
        for _ in range(turns):
            if request is not None and request.finished:
                return
            await asyncio.sleep(0)

    LOOP.run_until_complete(turn())


def asterisk_up() -> dict[str, Any]:
    """ctx.asterisk of a server whose one Asterisk is connected (make_context's default: none configured)."""
    return {"configured": True, "connected": True, "down_since": None,
            "servers": [{"server": "default", "state": "connected", "since": None}]}


def make_context(users: MemoryUsers, clock=None, probes=None, environ=None, limiter=None) -> WebContext:
    config = load_config(environ=environ or {"CCSERVER_SERVER_SECRET_KEY": "test-secret-key-0123456789"})
    clock = clock or task.Clock()
    signer = TokenSigner(config.secret_key(), 3600.0, clock=lambda: clock.seconds())
    return WebContext(
        config=config,
        signer=signer,
        limiter=limiter or MemoryLoginLimiter(3, 10, 300, clock=lambda: clock.seconds()),
        users=users,
        templates=Pages(),
        run_blocking=inline_blocking,
        clock=clock,
        passwords=PasswordWork(inline_blocking, max_pending=64),
        health_probes=probes or {},
    )


@dataclass
class Reply:
    status: int
    headers: dict[str, list[str]]
    body: bytes
    reason: bytes | None = None  # the reason phrase the router set (None: twisted.web's own for the code)

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def cookies(self) -> dict[str, str]:
        out = {}
        for raw in self.headers.get("set-cookie", []):
            name, _, rest = raw.partition("=")
            out[name] = rest.split(";")[0]
        return out


def call(router: Router, method: str, path: str, **kwargs: Any) -> Reply:
    """One request through the router, run to its answer on :data:`LOOP` (inline run_blocking)."""
    request = send(router, method, path, **kwargs)
    spin(request)
    assert request.finished, "handler did not finish in the test harness (is it waiting on a clock?)"
    return reply_of(request)


def reply_of(request: DummyRequest) -> Reply:
    return Reply(
        request.responseCode or 200,
        {k.decode().lower(): [v.decode() for v in vs] for k, vs in request.responseHeaders.getAllRawHeaders()},
        b"".join(request.written),
        getattr(request, "responseMessage", None),
    )


def send(router: Router, method: str, path: str, *, headers: dict[str, str] | None = None,
         json_body: Any = None, form: dict[str, str] | None = None, body: bytes | None = None,
         client_ip: str = "192.0.2.10") -> DummyRequest:
    """Start a request; the DummyRequest is ``finished`` once the handler has answered (``reply_of``)."""
    path_only, _, query = path.partition("?")
    request = DummyRequest([p.encode() for p in path_only.split("/") if p],
                           client=IPv4Address("TCP", client_ip, 40000))
    request.client = IPv4Address("TCP", client_ip, 40000)
    request.method = method.encode()
    request.path = path_only.encode()
    request.uri = path.encode()
    if query:
        from urllib.parse import parse_qs

        request.args = {k.encode(): [x.encode() for x in v] for k, v in parse_qs(query).items()}
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    elif form is not None:
        body = urlencode(form).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    request.content = io.BytesIO(body or b"")
    for name, value in headers.items():
        request.requestHeaders.addRawHeader(name, value)

    async def start() -> None:
        router.render(request)  # starts the handler as a task on the running loop

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        LOOP.run_until_complete(start())  # a plain test: the request runs on LOOP (spin() drives it)
    else:
        router.render(request)  # already inside a loop (an async test): the handler runs on that loop
    return request


def make_router(users: MemoryUsers, **kwargs: Any) -> tuple[Router, WebContext]:
    ctx = make_context(users, **kwargs)
    return build_router(ctx), ctx


def router_with_logins(*people: tuple[str, str, str]) -> tuple[Router, WebContext, dict[str, dict[str, str]]]:
    """A router over in-memory users given as (name, role, password), ids from 1, and each one's ``Authorization``
    header by name, logged in through ``POST /api/login`` as a script would."""
    users = MemoryUsers()
    for n, (name, role, password) in enumerate(people, start=1):
        users.add(n, name, role, password)
    router, ctx = make_router(users)
    headers = {}
    for name, _role, password in people:
        token = call(router, "POST", "/api/login", json_body={"username": name, "password": password}).json()["token"]
        headers[name] = {"Authorization": f"Bearer {token}"}
    return router, ctx, headers
