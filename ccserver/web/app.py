"""Builds the HTTP site: one Router with every feature's routes registered."""

from __future__ import annotations

from ccserver.web.admin_pages import AdminPages
from ccserver.web.admin_routes import AdminRoutes
from ccserver.web.agent_routes import AgentRoutes
from ccserver.web.auth_routes import AuthRoutes
from ccserver.web.call_routes import CallRoutes
from ccserver.web.campaign_routes import CampaignRoutes
from ccserver.web.channel import GuardedSite
from ccserver.web.context import WebContext
from ccserver.web.customer_routes import CustomerRoutes
from ccserver.web.desktop_routes import DesktopRoutes
from ccserver.web.health_routes import HealthRoutes
from ccserver.web.http import Authenticator, Router
from ccserver.web.kpi_routes import KpiRoutes
from ccserver.web.page_routes import PageRoutes
from ccserver.web.password_routes import PasswordRoutes
from ccserver.web.recording_routes import RecordingRoutes
from ccserver.web.report_page_routes import ReportPageRoutes
from ccserver.web.screenpop_routes import ScreenPopRoutes
from ccserver.web.state_routes import StateRoutes
from ccserver.web.supervisor_routes import SupervisorRoutes
from ccserver.web.ticket_routes import TicketRoutes
from ccserver.web.wallboard_routes import WallboardRoutes


def build_router(ctx: WebContext) -> Router:
    router = Router(Authenticator(ctx.signer, ctx.sessions), trusted_proxies=ctx.config.http.trusted_proxies,
                    log_pii=ctx.config.server.log_pii, allowed_origins=ctx.config.http.allowed_origins,
                    audit=lambda *entry: ctx.run_blocking(ctx.users.audit, *entry), clock=ctx.clock.seconds)
    AuthRoutes(ctx).register(router)
    HealthRoutes(ctx, router).register(router)
    PageRoutes(ctx).register(router)
    CustomerRoutes(ctx).register(router)
    AgentRoutes(ctx).register(router)
    CallRoutes(ctx).register(router)
    StateRoutes(ctx).register(router)
    TicketRoutes(ctx).register(router)
    KpiRoutes(ctx).register(router)
    DesktopRoutes(ctx).register(router)
    SupervisorRoutes(ctx).register(router)
    RecordingRoutes(ctx).register(router)
    WallboardRoutes(ctx).register(router)
    ReportPageRoutes(ctx).register(router)
    PasswordRoutes(ctx).register(router)
    AdminRoutes(ctx).register(router)
    AdminPages(ctx).register(router)
    ScreenPopRoutes(ctx).register(router)
    # The pages may open the websocket (ws.public_url): CSP connect-src names its origin.
    router.connect_src = lambda: ctx.screenpop.ws.public_origin if ctx.screenpop is not None else ""
    CampaignRoutes(ctx).register(router)
    return router


def build_site(ctx: WebContext) -> GuardedSite:
    """The HTTP site: header deadline and idle timeout from ``http.*``, timers on ``ctx.clock``."""
    http = ctx.config.http
    site = GuardedSite(build_router(ctx), header_timeout=http.header_timeout, idle_timeout=http.idle_timeout,
                       reactor=ctx.clock)
    site.displayTracebacks = False
    return site
