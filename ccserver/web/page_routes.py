"""Browser pages that are not part of a feature area yet: the home page and static assets."""

from __future__ import annotations

import datetime as dt
import mimetypes
from pathlib import Path

from agents_ui import static_dir
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, html_response


class PageRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx
        self.static_root = static_dir().resolve()

    def register(self, router: Router) -> None:
        router.add("GET", "/", self.home, access="page")
        router.add("GET", "/static/{name}", self.static, access="public")

    async def home(self, req: Req) -> Response:
        p = req.principal
        assert p is not None
        expires = dt.datetime.fromtimestamp(p.expires_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        page = self.ctx.templates.get_template("home.html").render(
            principal=p, csrf_token=self.ctx.signer.csrf_token(p.session_id), expires=expires
        )
        return html_response(page)

    async def static(self, req: Req) -> Response:
        name = req.path_params["name"]
        path = (self.static_root / name).resolve()
        if path.parent != self.static_root or not path.is_file():
            raise HTTPError(404, "not found")
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        response = Response(200, Path(path).read_bytes(), content_type)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response
