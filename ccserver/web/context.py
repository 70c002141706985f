"""What the HTTP handlers share: config, auth, the user store, health probes, templates."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import jinja2

from ccserver.auth import LoginRateLimiter, TokenSigner
from ccserver.config import Config

if TYPE_CHECKING:
    from ccserver.agents import AgentService
    from ccserver.customers.directory import CustomerDirectory


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    role: str
    password_hash: str
    active: bool


class UserStore(Protocol):
    """Blocking lookups; handlers call them through ``run_blocking`` (a worker thread)."""

    def find(self, username: str) -> UserRecord | None: ...

    def audit(self, action: str, actor_id: int | None, actor_name: str, ip: str, detail: dict[str, Any]) -> None: ...


class Revocations:
    """Session ids ended by logout before their token expired (single node; tokens are short-lived)."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._until: dict[str, float] = {}
        self._clock = clock

    def revoke(self, session_id: str, expires_at: float) -> None:
        now = self._clock()
        self._until = {k: v for k, v in self._until.items() if v > now}
        self._until[session_id] = expires_at

    def __call__(self, session_id: str) -> bool:
        return session_id in self._until


@dataclass
class WebContext:
    config: Config
    signer: TokenSigner
    limiter: LoginRateLimiter
    users: UserStore
    templates: jinja2.Environment
    run_blocking: Callable[..., Awaitable[Any]]
    clock: Any  # IReactorTime: the reactor, or task.Clock in tests
    # name -> ``async def probe() -> str`` awaiting only Deferreds (bridge asyncio with Deferred.fromFuture)
    health_probes: dict[str, Callable[[], Coroutine[Any, Any, str]]] = field(default_factory=dict)
    revocations: Revocations = field(default_factory=Revocations)
    # Caller identification for /api/customers (None: those routes answer 503).
    customers: CustomerDirectory | None = None
    # Agent sign-in for /api/agents (None without an Asterisk: those routes answer 503).
    agents: AgentService | None = None
    # Live calls and decisions for /api/calls and /api/decisions (None without AMI: live calls are empty).
    tracker: Any = None
    session_factory: Any = None
