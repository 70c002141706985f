"""What the HTTP handlers share: config, auth, the user store, health probes, templates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agents_ui import Pages
from ccserver.ami.link import asterisk_status
from ccserver.auth import TokenSigner
from ccserver.config import Config
from ccserver.login_limits import LoginLimiter
from ccserver.passwords import PasswordWork
from ccserver.web.sessions import MemoryRevocations, Sessions, UserCache

if TYPE_CHECKING:
    from ccserver.agents import AgentService
    from ccserver.customers.directory import CustomerDirectory
    from ccserver.tickets import TicketService


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    role: str
    password_hash: str
    active: bool
    must_change_password: bool = False


class UserStore(Protocol):
    """Blocking lookups; handlers call them through ``run_blocking`` (``await ctx.run_blocking(fn, …)``: the thread
    pool, ccserver/bridge.py BlockingPool)."""

    def find(self, username: str) -> UserRecord | None: ...

    def get(self, user_id: int) -> UserRecord | None: ...

    def audit(self, action: str, actor_id: int | None, actor_name: str, ip: str, detail: dict[str, Any]) -> None: ...

    def change_password(self, user_id: int, password_hash: str, ip: str) -> None:
        """The user's own new password (clears a forced change; audited)."""
        ...


@dataclass
class WebContext:
    config: Config
    signer: TokenSigner
    limiter: LoginLimiter
    users: UserStore
    templates: Pages  # agents_ui.Pages: render(name, lang, **context)
    run_blocking: Callable[..., Awaitable[Any]]
    clock: Any  # IReactorTime: the reactor, or task.Clock in tests
    # Password hashing and checks, on threads of their own (never the run_blocking pool).
    passwords: PasswordWork
    # name -> ``async def probe() -> str`` (asyncio; bounded by the health route)
    health_probes: dict[str, Callable[[], Coroutine[Any, Any, str]]] = field(default_factory=dict)
    # Caller identification for /api/customers (None: those routes answer 503): the directory (profiles, lists) and
    # the identification service (who a number is: ccserver.identification.IdentificationService, its ``find``).
    customers: CustomerDirectory | None = None
    identification: Any = None
    # Agent sign-in for /api/agents (None without an Asterisk: those routes answer 503).
    agents: AgentService | None = None
    # Live calls and decisions for /api/calls and /api/decisions (None without AMI: live calls are empty).
    tracker: Any = None
    session_factory: Any = None
    # Tickets for /api/tickets, /api/slots, /api/appointments, /api/callbacks and /inbox (None: those answer 503).
    tickets: TicketService | None = None
    # Queue and agent KPIs for /api/queues and /api/agents (ccserver.kpi.KpiService; None: no figures, only the
    # live model). Reports read SQL through session_factory.
    kpi: Any = None
    # The agent desktop's calls, notes, wrap-up, transfers and click-to-dial (ccserver.desktop.service
    # DesktopService; None: /desktop and its API answer 503).
    desktop: Any = None
    # Supervisor actions (ccserver.supervisor.SupervisorService; None without an Asterisk: those answer 503).
    supervisor: Any = None
    # Recordings for GET /api/recordings/{call_id} (ccserver.recordings.RecordingFiles; None: 404 for every call).
    recordings: Any = None
    # The wallboard's snapshot publisher (ccserver.wallboard.WallboardPublisher; None: /api/wallboard answers 503).
    wallboard: Any = None
    # Admin edits of routing data reload it on every node (ccserver.admin.reload.ConfigReloads; None: no reload).
    admin_reload: Any = None
    # Screen pop (screenpop.service.ScreenPopService): websocket tickets for /api/ws-ticket (None: 503).
    screenpop: Any = None
    # Outbound campaigns for /api/campaigns and /api/dnc (ccserver.campaigns.service.CampaignService; None: 503).
    campaigns: Any = None
    # Preview mode for agents (ccserver.campaigns.preview.PreviewService; None: /api/preview/… answer 503).
    preview: Any = None
    # The Asterisk link as the pages show it (ccserver.ami.link.asterisk_status; default: none configured).
    asterisk: Callable[[], dict[str, Any]] = field(default_factory=lambda: _no_asterisk)
    # The per-request session check and the session-ended hook. Left out: made by __post_init__ with in-process
    # revocations (default_sessions).
    sessions: Sessions = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.sessions is None:
            self.sessions = default_sessions(self.config, self.users, self.run_blocking, self.clock)


def _no_asterisk() -> dict[str, Any]:
    return asterisk_status(None)


def default_sessions(config: Config, users: UserStore, run_blocking: Callable[..., Awaitable[Any]], clock: Any,
                     revocations: Any = None) -> Sessions:
    """Sessions over ``users`` (looked up in a worker thread, cached ``auth.user_cache_seconds``); revocations
    in this process unless given (``RedisRevocations`` when Redis is configured)."""
    cache = UserCache(lambda user_id: run_blocking(users.get, user_id), config.auth.user_cache_seconds,
                      clock=clock.seconds)
    return Sessions(cache, revocations if revocations is not None else MemoryRevocations(clock.seconds), clock,
                    log_pii=config.server.log_pii)
