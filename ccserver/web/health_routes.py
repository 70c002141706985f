"""/healthz for load balancers and /metrics for Prometheus.

/metrics needs the static scrape token (``http.metrics_token``, sent as ``Authorization: Bearer``) or a
supervisor/admin login, unless ``http.metrics_public = true``. No address is exempt: behind a reverse proxy on the
same host every client would come from loopback. No credentials or bad ones: 401; a valid login of another
role: 403. ``?name[]=…`` (repeatable; ``name=`` too) renders only the metric families named.
"""

from __future__ import annotations

import asyncio
import hmac

from ccserver.auth import AuthError
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
        # Checked in the handler: the scrape token, or a supervisor/admin login (a Prometheus scrape is answered
        # 401, never redirected to the login page).
        router.add("GET", "/metrics", self.metrics, access="public")

    async def _probe(self, name: str) -> str:
        probe = self.ctx.health_probes.get(name)
        if probe is None:
            return "not configured"
        # Probes are asyncio coroutines, bounded on the HTTP side's clock (the reactor, task.Clock in tests) so a
        # hung database or Redis cannot hang the health check.
        loop = asyncio.get_running_loop()
        task: asyncio.Future[str] = asyncio.ensure_future(probe())
        expired: asyncio.Future[str] = loop.create_future()

        def expire() -> None:
            if not expired.done():
                expired.set_result("")

        timer = self.ctx.clock.callLater(PROBE_TIMEOUT, expire)
        try:
            await asyncio.wait([task, expired], return_when=asyncio.FIRST_COMPLETED)
        finally:
            if timer.active():
                timer.cancel()
        if not task.done():
            task.cancel()
            return "error: timed out"
        error = task.exception()
        if error is not None:  # any failure is reported, never raised
            return f"error: {type(error).__name__}"
        return str(task.result())

    async def healthz(self, req: Req) -> Response:
        states = {name: await self._probe(name) for name in ("database", "redis", "ami")}
        serving = states["database"] == "ok"
        degraded = any(s.startswith("error") or s == "disconnected" for s in states.values())
        status = "ok" if serving and not degraded else ("degraded" if serving else "unavailable")
        return json_response({"status": status, **states}, 200 if serving else 503)

    async def metrics(self, req: Req) -> Response:
        if not self.ctx.config.http.metrics_public and not self._has_scrape_token(req):
            try:
                principal = await self.router.authenticator.authenticate(req)
            except AuthError as exc:
                return json_response({"error": f"metrics need the scrape token or a supervisor login ({exc})"}, 401,
                                     **{"WWW-Authenticate": "Bearer"})
            principal.require("supervisor")  # Forbidden: 403
        # ?name[]=a&name[]=b (or name=): only those families — a script polling one counter, not a full scrape.
        names = req.query.get("name[]", []) + req.query.get("name", [])
        return Response(200, REGISTRY.render(names or None).encode(), "text/plain; version=0.0.4; charset=utf-8")

    def _has_scrape_token(self, req: Req) -> bool:
        token = self.ctx.config.http.metrics_token
        authorization = req.header("Authorization") or ""
        return bool(token) and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())
