"""Login for API clients (bearer tokens) and browsers (session cookie + CSRF), logout, and /api/me.

A login attempt is admitted by the budgets (``ctx.limiter``: per username and per client address, counted
before the password check), then the password is checked on the password threads (``ctx.passwords``). Every
attempt — succeeded, failed, refused — and every logout is written to the audit log; a password is never
logged or audited.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlparse

from agents_ui.i18n import translations
from ccserver.auth import Principal
from ccserver.passwords import PasswordBusy, hash_password
from ccserver.texts import T
from ccserver.web.context import UserRecord, WebContext
from ccserver.web.http import (
    N_,
    SESSION_COOKIE,
    HTTPError,
    Req,
    Response,
    Router,
    cookie_header,
    html_response,
    json_response,
    redirect,
)
from ccserver.web.refusals import RefusalThrottle
from ccserver.web.sessions import LOGOUT

log = logging.getLogger(__name__)

LOGIN_NONCE_COOKIE = "ccserver_login"
# Verified against when the username is unknown, so both paths cost one KDF run (no user enumeration by timing).
_DUMMY_HASH = hash_password(secrets.token_hex(8))


_FORM_MESSAGES = {
    401: N_("Invalid username or password."),
    429: N_("Too many attempts; try again later."),
    503: N_("Login is not possible right now; try again in a moment."),
}


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if not target.isprintable() or len(target) > 2000:
        return "/"  # no control characters into Location (browsers drop tab/CR/LF: "/\t/x" reads "//x")
    parsed = urlparse(target)
    return "/" if parsed.scheme or parsed.netloc else target


class AuthRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx
        # A locked-out address may keep trying as fast as it likes: each attempt is refused (429), but audited
        # once a minute per address (ccserver/web/refusals.py), else the audit table grows with the hammering.
        self.rate_limited = RefusalThrottle(ctx.clock.seconds)

    def register(self, router: Router) -> None:
        router.add("POST", "/api/login", self.api_login, access="public")
        router.add("GET", "/api/me", self.api_me, access="api")
        router.add("POST", "/api/logout", self.api_logout, access="api")
        router.add("GET", "/login", self.login_page, access="public")
        router.add("POST", "/login", self.login_form, access="public")
        router.add("POST", "/logout", self.logout_form, access="page")

    async def _check_credentials(self, username: str, password: str, ip: str) -> UserRecord:
        """The active user for these credentials, or HTTPError 401/429/503. Every attempt is audited (those refused for
        the lock-out once a minute per address)."""
        try:
            admission = await self.ctx.limiter.admit(username, ip)
        except Exception as exc:  # Redis down: no budget to check against, so no login (never an unlimited one)
            log.warning("login refused: login budgets unavailable (%s)", type(exc).__name__)
            raise HTTPError(503, T("login is unavailable right now; try again shortly"),
                            headers={"Retry-After": "5"}) from None
        if not admission.admitted:
            repeats = self.rate_limited.admit(ip)
            if repeats is not None:
                detail = {"repeats": repeats} if repeats else {}
                await self.ctx.run_blocking(self.ctx.users.audit, "login.rate_limited", None, username, ip, detail)
            wait = admission.retry_after_seconds
            raise HTTPError(429, T("too many failed login attempts; try again later"), retry_after=wait,
                            headers={"Retry-After": str(wait)})
        try:
            user, ok = await self._verify(username, password)
        except BaseException:
            await self._settle(self.ctx.limiter.cancel(admission))  # no verdict: held against nobody
            raise
        if not ok or user is None or not user.active:
            reason = "bad password" if user else "unknown user"
            if user and ok and not user.active:
                reason = "inactive user"
            await self.ctx.run_blocking(
                self.ctx.users.audit, "login.failed", user.id if user else None, username, ip, {"reason": reason}
            )
            raise HTTPError(401, T("invalid username or password"))
        await self._settle(self.ctx.limiter.succeeded(admission))
        await self.ctx.run_blocking(self.ctx.users.audit, "login.succeeded", user.id, user.username, ip, {})
        return user

    @staticmethod
    async def _settle(refund: Coroutine[Any, Any, None]) -> None:
        """A refund to the budgets; if it cannot be made, the attempt simply stays counted until the window ends."""
        try:
            await refund
        except Exception as exc:  # noqa: BLE001 - logged; the login's own outcome stands
            log.warning("login budget not refunded (%s)", type(exc).__name__)

    async def _verify(self, username: str, password: str) -> tuple[UserRecord | None, bool]:
        user = await self.ctx.run_blocking(self.ctx.users.find, username)
        stored = user.password_hash if user else _DUMMY_HASH
        try:
            return user, await self.ctx.passwords.verify(password, stored)
        except PasswordBusy:
            raise HTTPError(503, T("too many logins at once; try again shortly"),
                            headers={"Retry-After": "1"}) from None

    def _issue(self, user: UserRecord) -> tuple[str, Principal]:
        token, principal = self.ctx.signer.issue(user.id, user.username, user.role)
        self.ctx.sessions.started(principal)
        return token, principal

    async def _logout(self, req: Req, via: str) -> None:
        p = req.principal
        assert p is not None
        try:
            await self.ctx.sessions.end(p, LOGOUT)
        except Exception as exc:  # the revocation could not be stored: say so rather than pretend it is over
            log.warning("logout not recorded: revocations unavailable (%s)", type(exc).__name__)
            raise HTTPError(503, T("logout could not be recorded; try again shortly"),
                            headers={"Retry-After": "5"}) from None
        await self.ctx.run_blocking(self.ctx.users.audit, "logout", p.user_id, p.username, req.client_ip, {"via": via})

    async def api_login(self, req: Req) -> Response:
        data = req.json()
        username, password = data.get("username"), data.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
            raise HTTPError(400, T("username and password are required strings"))
        if len(username) > 150 or len(password) > 1024:
            raise HTTPError(400, T("username or password too long"))
        user = await self._check_credentials(username, password, req.client_ip)
        token, principal = self._issue(user)
        return json_response(
            {"token": token, "expires_at": _iso(principal.expires_at), "username": user.username, "role": user.role,
             "must_change_password": user.must_change_password}
        )

    async def api_me(self, req: Req) -> Response:
        p = req.principal
        assert p is not None
        return json_response({"user_id": p.user_id, "username": p.username, "role": p.role,
                              "expires_at": _iso(p.expires_at), "csrf_token": self.ctx.signer.csrf_token(p.session_id),
                              "must_change_password": p.must_change_password})

    async def api_logout(self, req: Req) -> Response:
        await self._logout(req, "api")
        response = json_response({"ok": True})
        response.cookies.append(self._session_cookie("", 0))
        return response

    def _session_cookie(self, value: str, max_age: int) -> str:
        return cookie_header(SESSION_COOKIE, value, max_age, self.ctx.config.http.cookie_secure)

    def _render_login(self, req: Req, error: str = "", username: str = "", status: int = 200,
                      headers: dict[str, str] | None = None) -> Response:
        nonce = secrets.token_hex(16)
        page = self.ctx.templates.render(
            "login.html", req.lang,
            principal=None, csrf_token=self.ctx.signer.csrf_token("login:" + nonce),
            next=_safe_next(req.arg("next") or (req.form().get("next") if req.method == "POST" else None)),
            error=translations(req.lang).gettext(error) if error else "", username=username,
        )
        response = html_response(page, status)
        response.headers.update(headers or {})
        response.cookies.append(cookie_header(LOGIN_NONCE_COOKIE, nonce, 3600, self.ctx.config.http.cookie_secure))
        return response

    async def login_page(self, req: Req) -> Response:
        return self._render_login(req)

    async def login_form(self, req: Req) -> Response:
        form = req.form()
        nonce = req.cookie(LOGIN_NONCE_COOKIE) or ""
        if not nonce or not self.ctx.signer.check_csrf("login:" + nonce, form.get("csrf_token")):
            return self._render_login(req, N_("Your login form expired; please try again."), status=403)
        username, password = form.get("username", ""), form.get("password", "")
        try:
            user = await self._check_credentials(username[:150], password[:1024], req.client_ip)
        except HTTPError as exc:
            message = _FORM_MESSAGES.get(exc.status, "Login is not possible right now; try again later.")
            return self._render_login(req, message, username=username[:150], status=exc.status, headers=exc.headers)
        token, _principal = self._issue(user)
        response = redirect("/password" if user.must_change_password else _safe_next(form.get("next")))
        response.cookies.append(self._session_cookie(token, int(self.ctx.signer.lifetime)))
        response.cookies.append(cookie_header(LOGIN_NONCE_COOKIE, "", 0, self.ctx.config.http.cookie_secure))
        return response

    async def logout_form(self, req: Req) -> Response:
        await self._logout(req, "form")
        response = redirect("/login")
        response.cookies.append(self._session_cookie("", 0))
        return response
