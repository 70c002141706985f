"""Browser pages that are not part of a feature area yet: the home page and static assets."""

from __future__ import annotations

import datetime as dt
import mimetypes
from pathlib import Path
from typing import Any

from agents_ui import static_dir
from ccserver.texts import T
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, html_response


def static_files(root: Path) -> dict[str, Path]:
    """The servable files: regular files directly in ``root``, by name (no dot-files)."""
    return {p.name: p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")}


class PageRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx
        # Requests are answered from this index, made once: a request's name never reaches the file system
        # (a 5,000-character name raised "File name too long", a NUL "embedded null byte": both were 500s).
        self.static = static_files(static_dir().resolve())

    def register(self, router: Router) -> None:
        router.add("GET", "/", self.home, access="page")
        router.add("GET", "/static/{name}", self.static_file, access="public")

    async def home(self, req: Req) -> Response:
        p = req.principal
        assert p is not None
        expires = dt.datetime.fromtimestamp(p.expires_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        extension, store_id = await self._user_facts(p.user_id)
        page = self.ctx.templates.render(
            "home.html", req.lang,
            principal=p, csrf_token=self.ctx.signer.csrf_token(p.session_id), expires=expires,
            screenpop=self.ctx.screenpop is not None and bool(extension),
            # administration is for admins and store managers (a supervisor with a store); a supervisor without
            # one would land on forms that refuse everything
            administers=p.role == "admin" or (p.role == "supervisor" and store_id is not None),
        )
        return html_response(page)

    async def _user_facts(self, user_id: int) -> tuple[str | None, int | None]:
        """(extension, store id) of the user: the screen-pop card needs an extension; administration a store."""
        if self.ctx.session_factory is None:
            return None, None
        return await self.ctx.run_blocking(_facts_of, self.ctx.session_factory, user_id)  # type: ignore[no-any-return]

    async def static_file(self, req: Req) -> Response:
        name = req.path_params["name"]
        path = self.static.get(name)
        if path is None:
            raise HTTPError(404, T("not found"))
        try:
            body = path.read_bytes()
        except OSError:  # removed since start-up
            raise HTTPError(404, T("not found")) from None
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        response = Response(200, body, content_type)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response


def _facts_of(session_factory: Any, user_id: int) -> tuple[str | None, int | None]:
    from ccserver.db.models import User

    with session_factory() as session:
        user = session.get(User, user_id)
        return (user.extension, user.store_id) if user is not None else (None, None)
