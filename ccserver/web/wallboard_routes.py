"""The wallboard over HTTP (roles supervisor and admin):

- ``GET /wallboard`` — the page (a wall TV, 1920×1080, read from three metres);
- ``GET /api/wallboard`` — the current snapshot (ccserver/wallboard): the same encoded bytes for every client,
  with an ``ETag`` (``If-None-Match`` → 304, so polling costs nothing between updates). A store manager gets their
  store's queues only (filtered from the shared snapshot, encoded once per update and store).

The websocket path ``/ws/wallboard`` (same ticket scheme as the agent socket) attaches to the same publisher.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

from ccserver.kpi.views import visible_queues
from ccserver.texts import T
from ccserver.wallboard.publisher import encode
from ccserver.wallboard.snapshot import for_queues
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, html_response

ROLES = ("supervisor",)


class WallboardRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx
        self.now = time.time
        self._filtered: dict[tuple[int, frozenset[str]], bytes] = {}

    def register(self, router: Router) -> None:
        router.add("GET", "/wallboard", self.page, access="page", roles=ROLES)
        router.add("GET", "/api/wallboard", self.snapshot, access="api", roles=ROLES)

    def _publisher(self) -> Any:
        if self.ctx.wallboard is None:
            raise HTTPError(503, T("the wallboard is not running on this server"))
        return self.ctx.wallboard

    async def snapshot(self, req: Req) -> Response:
        frame = await self._publisher().frame()
        visible = await visible_queues(self.ctx, req.principal)
        data = frame.data
        tag = f'"wb-{frame.version}"'
        if visible is not None:
            key = (frame.version, frozenset(visible))
            cached = self._filtered.get(key)
            if cached is None:
                self._filtered = {k: v for k, v in self._filtered.items() if k[0] == frame.version}
                cached = self._filtered[key] = encode(for_queues(frame.snapshot, visible))
            data = cached
            tag = f'"wb-{frame.version}-s{zlib.crc32(",".join(sorted(visible)).encode()):08x}"'
        # The server's clock now (the frame may be seconds old): the page counts waits from it.
        headers = {"ETag": tag, "Cache-Control": "no-cache", "X-Server-Time": f"{self.now():.3f}"}
        if req.header("If-None-Match") == tag:
            return Response(304, b"", "application/json; charset=utf-8", headers)
        return Response(200, data, "application/json; charset=utf-8", headers)

    async def page(self, req: Req) -> Response:
        p = req.principal
        assert p is not None
        settings = self.ctx.config.wallboard
        page = self.ctx.templates.render(
            "wallboard.html", req.lang, principal=p, csrf_token=self.ctx.signer.csrf_token(p.session_id),
            target=settings.service_level_target)
        return html_response(page)
