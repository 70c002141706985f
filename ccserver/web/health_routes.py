"""/healthz for load balancers and /metrics for Prometheus."""

from __future__ import annotations

import hmac
import ipaddress

from twisted.internet import defer

from ccserver.auth import AuthError, Forbidden
from ccserver.metrics import REGISTRY
from ccserver.web.context import WebContext
from ccserver.web.http import Req, Response, Router, json_response

PROBE_TIMEOUT = 1.0


class HealthRoutes:
    def __init__(self, ctx: WebContext, router: Router):
        self.ctx = ctx
        self.router = router

    def register(self, router: Router) -> None:
        # Public on purpose: it reveals component states only, and load balancers probe without credentials.
        router.add("GET", "/healthz", self.healthz, access="public")
        # Checked in the handler: a static scrape token, a supervisor/admin login, or a loopback client.
        router.add("GET", "/metrics", self.metrics, access="public")

    async def _probe(self, name: str) -> str:
        probe = self.ctx.health_probes.get(name)
        if probe is None:
            return "not configured"
        # Probes await Deferreds (asyncio work is bridged with Deferred.fromFuture); bounded so a hung
        # database or Redis cannot hang the health check.
        d: defer.Deferred[str] = defer.ensureDeferred(probe())
        d.addTimeout(PROBE_TIMEOUT, self.ctx.clock)
        try:
            return await d
        except defer.TimeoutError:
            return "error: timed out"
        except Exception as exc:  # noqa: BLE001 - any failure is reported, never raised
            return f"error: {type(exc).__name__}"

    async def healthz(self, req: Req) -> Response:
        states = {name: await self._probe(name) for name in ("database", "redis", "ami")}
        serving = states["database"] == "ok"
        degraded = any(s.startswith("error") or s == "disconnected" for s in states.values())
        status = "ok" if serving and not degraded else ("degraded" if serving else "unavailable")
        return json_response({"status": status, **states}, 200 if serving else 503)

    async def metrics(self, req: Req) -> Response:
        if not self._may_scrape(req):
            return json_response({"error": "metrics need a scrape token or a supervisor login"}, 401)
        return Response(200, REGISTRY.render().encode(), "text/plain; version=0.0.4; charset=utf-8")

    def _may_scrape(self, req: Req) -> bool:
        token = self.ctx.config.http.metrics_token
        authorization = req.header("Authorization") or ""
        if token and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
            return True
        try:
            principal = self.router.authenticator.authenticate(req)
            principal.require("supervisor")
            return True
        except (AuthError, Forbidden):
            pass
        try:
            return ipaddress.ip_address(req.client_ip).is_loopback and not authorization
        except ValueError:
            return False
