"""A user changes their own password: ``POST /api/password`` and the ``/password`` page.

This is also where a user whose password was set by an admin (``ccserver users add``/``passwd``, a reset) is
sent until they choose their own: every other route answers 403 ``password_change_required`` meanwhile
(ccserver/web/http.py). The current password is checked again, on the password threads; the change is audited.
"""

from __future__ import annotations

from agents_ui.i18n import translations
from ccserver.admin.users import AdminError, check_password
from ccserver.passwords import PasswordBusy
from ccserver.web.context import WebContext
from ccserver.web.http import N_, HTTPError, Req, Response, Router, html_response, json_response, redirect


class PasswordRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.add("POST", "/api/password", self.api_change, access="api")
        router.add("GET", "/password", self.page, access="page")
        router.add("POST", "/password", self.form, access="page")

    async def _change(self, req: Req, current: object, new: object, repeat: object) -> None:
        p = req.principal
        assert p is not None
        if not isinstance(current, str) or not isinstance(new, str) or not current or not new:
            raise HTTPError(400, N_("Both the current and the new password are required."))
        if repeat is not None and repeat != new:
            raise HTTPError(400, N_("The two new passwords differ."))
        if new == current:
            raise HTTPError(400, N_("The new password must differ from the current one."))
        try:
            check_password(new[:2048])
        except AdminError:
            raise HTTPError(400, N_("The new password must have at least 8 characters.")) from None
        user = await self.ctx.run_blocking(self.ctx.users.get, p.user_id)
        try:
            ok = user is not None and await self.ctx.passwords.verify(current[:1024], user.password_hash)
            if not ok:
                await self.ctx.run_blocking(self.ctx.users.audit, "user.password_change_failed", p.user_id,
                                            p.username, req.client_ip, {"reason": "bad current password"})
                raise HTTPError(403, N_("The current password is wrong."))
            hashed = await self.ctx.passwords.hash(new)
        except PasswordBusy:
            raise HTTPError(503, N_("Too busy right now; try again in a moment."),
                            headers={"Retry-After": "1"}) from None
        await self.ctx.run_blocking(self.ctx.users.change_password, p.user_id, hashed, req.client_ip)
        self.ctx.sessions.users.forget(p.user_id)  # the next request sees the change at once

    async def api_change(self, req: Req) -> Response:
        data = req.json()
        await self._change(req, data.get("current_password"), data.get("new_password"), None)
        return json_response({"ok": True})

    def _render(self, req: Req, error: str = "", status: int = 200) -> Response:
        p = req.principal
        assert p is not None
        page = self.ctx.templates.render(
            "password.html", req.lang, principal=p, csrf_token=self.ctx.signer.csrf_token(p.session_id),
            forced=p.must_change_password, error=translations(req.lang).gettext(error) if error else "")
        return html_response(page, status)

    async def page(self, req: Req) -> Response:
        return self._render(req)

    async def form(self, req: Req) -> Response:
        form = req.form()
        try:
            await self._change(req, form.get("current_password", ""), form.get("new_password", ""),
                               form.get("repeat_password", ""))
        except HTTPError as exc:
            return self._render(req, exc.message, exc.status)
        return redirect("/")
