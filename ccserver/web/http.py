"""Request/response types and a small router on twisted.web.

Handlers are ``async def handler(req) -> Response``. Every route declares who may call it: ``public``,
``api`` (bearer token or session cookie; 401/403 answered as JSON) or ``page`` (session cookie; a
browser without one is sent to the login page). Unsafe methods authenticated by cookie need a CSRF token and,
when the browser names one, our own Origin (``ccserver.web.origin``); so do logins.
Credentials are checked by the ``Authenticator``: the signature (``TokenSigner``), then the session as it stands
now (``ccserver.web.sessions``). A check that cannot be made answers 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

from twisted.python.failure import Failure
from twisted.web import resource, server

from ccserver.auth import AuthError, AuthUnavailable, Forbidden, PasswordChangeRequired, Principal, TokenSigner
from ccserver.logs import exception_summary
from ccserver.metrics import REGISTRY
from ccserver.texts import T, message_of, translated
from ccserver.web.client_address import Network, client_address, parse_address, parse_networks
from ccserver.web.field_labels import field_labels
from ccserver.web.origin import OriginPolicy, RequestView, describe, header_values
from ccserver.web.refusals import RefusalThrottle

if TYPE_CHECKING:
    from ccserver.web.sessions import Sessions

# audit(action, actor_id, actor_name, ip, detail): the user store's audit, run off the loop.
AuditFn = Callable[[str, "int | None", str, str, dict[str, Any]], Awaitable[Any]]

log = logging.getLogger(__name__)
ORIGIN_REFUSED = REGISTRY.counter("ccserver_http_origin_refused_total",
                                  "Browser requests refused because their Origin (or Referer) is not ours")

MAX_BODY_BYTES = 1 << 20
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SESSION_COOKIE = "ccserver_session"
# Pages: scripts, styles and images only from our own origin (static ES modules; no inline script or handler);
# forms post only to us; no <base> rewriting. Every other answer (JSON, CSV, audio, static files) renders nothing.
PAGE_CSP = ("default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"


class HTTPError(Exception):
    """An answer other than success: ``extra`` goes into the JSON body, ``headers`` onto the response."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


MAX_ERROR_CHARS = 300


def N_(message: str) -> str:  # noqa: N802 - gettext's marker: extracted by `make i18n`, translated when shown
    return message


def _said(exc: Exception, req: Req) -> str:
    """An exception's message for this reader (translated when it is a ccserver.texts.Text and they asked for a
    language; ``str(exc)`` would drop the template)."""
    return translated(message_of(exc), req.reader_gettext, field_labels(req.reader_gettext))


def _page_before(req: Req) -> str | None:
    """The path (and query) of the page of ours the browser came from, for the error page's "back" link (its
    address may carry the choices the person made); None when the Referer is missing or another site's."""
    referer = urlsplit(req.header("Referer") or "")
    if not referer.path.startswith("/") or referer.path.startswith("//") or referer.netloc != req.header("Host"):
        return None
    return referer.path + ("?" + referer.query if referer.query else "")


def clip(message: str) -> str:
    """An error message cut to MAX_ERROR_CHARS: many quote the value refused, which may be 100,000 characters."""
    return message if len(message) <= MAX_ERROR_CHARS else message[:MAX_ERROR_CHARS] + "…"


def reason_phrase(status: int) -> bytes:
    """The standard phrase ("Too Many Requests"): twisted.web knows no phrase for some codes (429 went out
    as "Unknown Status")."""
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b"Unknown Status"


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)


def json_response(data: Any, status: int = 200, **headers: str) -> Response:
    body = json.dumps(data, ensure_ascii=False, default=str).encode("utf-8")
    return Response(status, body, headers=dict(headers))


def html_response(text: str, status: int = 200) -> Response:
    return Response(status, text.encode("utf-8"), "text/html; charset=utf-8")


def redirect(location: str, status: int = 303) -> Response:
    return Response(status, b"", "text/plain", {"Location": location})


def cookie_header(name: str, value: str, max_age: int | None, secure: bool) -> str:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


class Req:
    """What a handler sees of a request."""

    def __init__(self, request: server.Request, body: bytes, trusted_proxies: Sequence[Network] = ()):
        self.raw = request
        self._trusted_proxies = trusted_proxies
        self._client_ip: str | None = None
        self.method = request.method.decode("ascii", "replace").upper()
        self.path = request.path.decode("utf-8", "replace")
        args: dict[bytes, list[bytes]] = request.args or {}
        self.query: dict[str, list[str]] = {
            k.decode("utf-8", "replace"): [v.decode("utf-8", "replace") for v in vs] for k, vs in args.items()
        } if self.method == "GET" else {}
        self.body = body
        self.principal: Principal | None = None
        self.auth_via_cookie = False
        self.path_params: dict[str, str] = {}
        self.route: Route | None = None  # the route chosen, once it is

    def header(self, name: str) -> str | None:
        """The header's last value as latin-1 text (any bytes decode so; twisted's ``getHeader`` raises on bytes
        that are not UTF-8, and a hostile client sends them: a token or cookie with them is then simply invalid)."""
        values = self.raw.requestHeaders.getRawHeaders(name.encode("latin-1"))
        return values[-1].decode("latin-1") if values else None

    @property
    def client_ip(self) -> str:
        """The client's address: the peer, or what trusted proxies forwarded (``client_address``)."""
        if self._client_ip is None:
            peer = getattr(self.raw.getClientAddress(), "host", "unknown")
            forwarded: Sequence[bytes] = ()
            if self._trusted_proxies:
                forwarded = self.raw.requestHeaders.getRawHeaders(b"X-Forwarded-For") or []
            self._client_ip = client_address(peer, [v.decode("latin-1") for v in forwarded], self._trusted_proxies)
        return self._client_ip

    def origin_view(self) -> RequestView:
        """What the Origin check (ccserver.web.origin) needs: the browser's claim and how we were reached."""
        peer = parse_address(getattr(self.raw.getClientAddress(), "host", ""))
        via_proxy = peer is not None and any(peer.version == n.version and peer in n for n in self._trusted_proxies)
        headers = self.raw.requestHeaders
        is_secure = getattr(self.raw, "isSecure", None)  # twisted's Request has it; test doubles may not
        return RequestView(
            origin=self.header("Origin"), referer=self.header("Referer"), host=self.header("Host"),
            secure=bool(is_secure()) if is_secure else False, via_trusted_proxy=via_proxy,
            forwarded_proto=header_values(headers.getRawHeaders(b"X-Forwarded-Proto")) if via_proxy else None,
            forwarded_host=header_values(headers.getRawHeaders(b"X-Forwarded-Host")) if via_proxy else None,
        )

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def lang(self) -> str:
        """The page language for this request (agents_ui.i18n: the language cookie, Accept-Language, zh-CN)."""
        from agents_ui.i18n import COOKIE, negotiate

        return negotiate(self.cookie(COOKIE), self.header("Accept-Language"))

    @property
    def reader_gettext(self) -> Callable[[str], str] | None:
        """For error messages (ccserver/texts.py): the catalogue of the language the reader asked for — a page's
        language cookie or a browser's Accept-Language — else None: English, as scripts and API clients get."""
        from agents_ui.i18n import COOKIE, translations

        if self.cookie(COOKIE) is None and self.header("Accept-Language") is None:
            return None
        return translations(self.lang).gettext

    def cookie(self, name: str) -> str | None:
        raw = self.header("Cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return None
        morsel = jar.get(name)
        return morsel.value if morsel else None

    def json(self) -> dict[str, Any]:
        """The JSON object body, or a 400 that says what is wrong."""
        content_type = (self.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise HTTPError(415, T("expected Content-Type: application/json"))
        try:
            data = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:  # ValueError: JSONDecodeError, an int of 4,300+ digits
            raise HTTPError(400, T("body is not valid JSON: {reason}", reason=str(exc))) from None
        except RecursionError:
            raise HTTPError(400, T("body is nested too deeply")) from None
        if not isinstance(data, dict):
            raise HTTPError(400, T("body must be a JSON object"))
        refuse_unstorable_text(data)
        return data

    def form(self) -> dict[str, str]:
        content_type = (self.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise HTTPError(415, T("expected a form post"))
        try:
            parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
        except (UnicodeDecodeError, ValueError) as exc:
            raise HTTPError(400, T("bad form body: {reason}", reason=str(exc))) from None
        form = {k: v[0] for k, v in parsed.items()}
        refuse_unstorable_text(form)
        return form


Handler = Callable[[Req], Awaitable[Response]]


def refuse_unstorable_text(data: Any) -> None:
    """HTTPError 400 for text no database stores: a NUL character (PostgreSQL refuses it) or a lone UTF-16
    surrogate (``"\\ud800"`` is valid JSON, but no UTF-8 encodes it) anywhere in a request's strings, keys included;
    ``field`` names the top-level key it was under. Checked once at the door, so no handler meets them halfway
    through a write."""
    stack: list[tuple[Any, str | None]] = [(data, None)]
    while stack:
        item, field = stack.pop()
        if isinstance(item, str):
            bad = None
            if "\x00" in item:
                bad = T("text may not contain the NUL character")
            elif not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    bad = T("text may not contain a lone UTF-16 surrogate")
            if bad is not None:
                if field is None:
                    raise HTTPError(400, bad)
                raise HTTPError(400, bad, field=field)
        elif isinstance(item, dict):
            for key, value in item.items():
                top = field if field is not None else (key if isinstance(key, str) else None)
                stack.append((key, top))
                stack.append((value, top))
        elif isinstance(item, list):
            stack.extend((value, field) for value in item)


def split_path(path: str) -> tuple[str, ...] | None:
    """``/api/me`` -> ``("api", "me")``; ``/`` -> ``()``. None for a path no route can have: one that does not start
    with ``/``, has an empty segment (``//``, a trailing ``/``) or a control character (NUL included)."""
    if path == "/":
        return ()
    parts = tuple(path.split("/"))
    if parts[0] != "" or any(not p or not p.isprintable() for p in parts[1:]):
        return None
    return parts[1:]


# What a user who must choose a new password may still reach (ccserver/web/password_routes.py).
PASSWORD_CHANGE_ROUTES = frozenset({("api", "password"), ("password",), ("api", "me"), ("api", "logout"),
                                    ("logout",)})


@dataclass
class Route:
    method: str
    pattern: tuple[str, ...]
    handler: Handler
    access: str  # public | api | page
    roles: tuple[str, ...]

    def match(self, parts: tuple[str, ...]) -> dict[str, str] | None:
        if len(parts) != len(self.pattern):
            return None
        params = {}
        for want, got in zip(self.pattern, parts, strict=True):
            if want.startswith("{") and want.endswith("}"):
                params[want[1:-1]] = got
            elif want != got:
                return None
        return params


class Authenticator:
    """Turns a request's bearer token or session cookie into a Principal: a valid signature, then the session
    as it stands now (not ended, the user still active; the current role)."""

    def __init__(self, signer: TokenSigner, sessions: Sessions):
        self.signer = signer
        self.sessions = sessions

    async def authenticate(self, req: Req) -> Principal:
        """The principal, or AuthError (401) / AuthUnavailable (503)."""
        authorization = req.header("Authorization")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError(T("expected Authorization: Bearer <token>"))
            principal = self.signer.verify(token.strip())
        else:
            cookie = req.cookie(SESSION_COOKIE)
            if not cookie:
                raise AuthError(T("authentication required"))
            principal = self.signer.verify(cookie)
            req.auth_via_cookie = True
        return await self.sessions.check(principal)


class Router(resource.Resource):
    isLeaf = True

    def __init__(self, authenticator: Authenticator, trusted_proxies: Sequence[str] = (), log_pii: bool = False,
                 allowed_origins: Sequence[str] = (), audit: AuditFn | None = None,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.authenticator = authenticator
        self.trusted_proxies = parse_networks(trusted_proxies)
        self.origins = OriginPolicy(allowed_origins)
        self.origin_refusals = RefusalThrottle(clock)
        self.audit = audit
        self.log_pii = log_pii
        self.routes: list[Route] = []
        # The origin pages may open websockets to (CSP connect-src), asked per page: known once ws listens.
        self.connect_src: Callable[[], str] | None = None

    def add(self, method: str, path: str, handler: Handler, access: str = "api", roles: tuple[str, ...] = ()) -> None:
        if access not in {"public", "api", "page"}:
            raise ValueError(access)
        pattern = tuple(p for p in path.split("/") if p)
        self.routes.append(Route(method.upper(), pattern, handler, access, roles))

    def render(self, request: server.Request) -> int:
        body = request.content.read(MAX_BODY_BYTES + 1) if request.content else b""
        req = Req(request, body, self.trusted_proxies)
        finished: list[bool] = []
        request.notifyFinish().addBoth(lambda _: finished.append(True))
        # Handlers are asyncio coroutines (ccserver/bridge.py): each request runs as a task on the loop.
        task = asyncio.ensure_future(self._dispatch(req, len(body) > MAX_BODY_BYTES))
        task.add_done_callback(lambda t: self._done(t, request, finished))
        return server.NOT_DONE_YET

    def _done(self, task: asyncio.Future[Response], request: server.Request, finished: list[bool]) -> None:
        try:
            self._write(task.result(), request, finished)
        except BaseException as exc:  # noqa: BLE001 - the handler task was cancelled, or writing failed
            self._crash(Failure(exc), request, finished)

    async def _dispatch(self, req: Req, too_large: bool) -> Response:
        response = await self._answer(req, too_large)
        if response.status >= 400 and req.method in ("GET", "HEAD") and response.content_type.startswith(
                "application/json") and self._for_a_person(req):
            return self._error_page(req, response)  # a person at a browser, not a script: a page, not JSON
        return response

    @staticmethod
    def _for_a_person(req: Req) -> bool:
        """A page route's answer, or — no route matched — a browser's request for a page (it asks for HTML); the
        API and the machine routes (/healthz, /metrics) keep their JSON."""
        if req.route is not None:
            return req.route.access == "page"
        return not req.path.startswith("/api/") and "text/html" in (req.header("Accept") or "")

    def _error_page(self, req: Req, response: Response) -> Response:
        """The refusal of a page request (a role that may not see it, a page that does not exist, a bad date in
        its address) as a page in the reader's language, with the same status; the API keeps its JSON."""
        from agents_ui import Pages
        from agents_ui.i18n import translations

        try:
            message = str(json.loads(response.body).get("error") or "")
        except (ValueError, AttributeError):
            message = ""
        headings = {403: N_("Not allowed"), 404: N_("Page not found"), 405: N_("Page not found"),
                    503: N_("Not available right now")}
        # Marked outside gettext(...): pybabel does not extract an N_ nested in another keyword's call.
        fallback = N_("Something went wrong") if response.status >= 500 else N_("The request was refused")
        lang = req.lang
        heading = translations(lang).gettext(headings.get(response.status) or fallback)
        # Signed in (a page refused for its role, or for a bad address): the reader keeps the navigation and the
        # log-out button of every other page, and is not left with the way back alone.
        principal = req.principal
        csrf = self.authenticator.signer.csrf_token(principal.session_id) if principal is not None else ""
        page = html_response(Pages().render("error.html", lang, heading=heading, message=message,
                                            back=_page_before(req), principal=principal, csrf_token=csrf),
                             response.status)
        page.headers.update({k: v for k, v in response.headers.items() if k.lower() == "retry-after"})
        return page

    async def _answer(self, req: Req, too_large: bool) -> Response:
        parts = split_path(req.path)
        is_api = parts is not None and bool(parts) and parts[0] == "api"
        route: Route | None = None
        try:
            if too_large:
                raise HTTPError(413, T("request body too large"))
            if parts is None:
                raise HTTPError(404, T("not found"))
            refuse_unstorable_text(req.query)
            candidates = [(r, p) for r in self.routes if (p := r.match(parts)) is not None]
            if not candidates:
                raise HTTPError(404, T("not found"))
            chosen = next(((r, p) for r, p in candidates if r.method == req.method), None)
            if chosen is None and req.method == "HEAD":
                chosen = next(((r, p) for r, p in candidates if r.method == "GET"), None)
            if chosen is None:
                raise HTTPError(405, T("method not allowed"))
            route, req.path_params = chosen
            req.route = route
            if route.access != "public":
                await self._authorize(req, route)
            elif req.method in UNSAFE_METHODS and not req.header("Authorization"):
                await self._check_origin(req, route)  # a browser form post (the login form)
            return await route.handler(req)
        except AuthError as exc:
            if not is_api and req.method == "GET":
                return redirect("/login?next=" + quote(req.path, safe="/"))
            return json_response({"error": _said(exc, req)}, 401, **{"WWW-Authenticate": "Bearer"})
        except PasswordChangeRequired as exc:
            if not is_api and req.method == "GET":
                return redirect("/password")
            return json_response({"error": _said(exc, req), "reason": "password_change_required"}, 403)
        except Forbidden as exc:
            return json_response({"error": _said(exc, req)}, 403)
        except AuthUnavailable as exc:
            return json_response({"error": _said(exc, req)}, 503, **{"Retry-After": "5"})
        except HTTPError as exc:
            gettext = req.reader_gettext
            response = json_response({"error": clip(translated(exc.message, gettext, field_labels(gettext))),
                                      **exc.extra}, exc.status)
            response.headers.update(exc.headers)
            return response
        except Exception as exc:
            # The route's pattern, not the request's path or query (numbers, names); no exception text unless
            # server.log_pii (SQL errors carry their parameters).
            where = "/" + "/".join(route.pattern) if route is not None else "(no route)"
            log.error("unhandled error serving %r %s: %s", req.method, where, exception_summary(exc, self.log_pii))
            return json_response({"error": translated(T("internal error"), req.reader_gettext)}, 500)

    async def _authorize(self, req: Req, route: Route) -> None:
        principal = await self.authenticator.authenticate(req)
        req.principal = principal
        if req.auth_via_cookie and req.method in UNSAFE_METHODS:
            await self._check_origin(req, route)
            presented = req.header("X-CSRF-Token")
            if presented is None and req.body:
                try:
                    presented = req.form().get("csrf_token")
                except HTTPError:
                    presented = None
            if not self.authenticator.signer.check_csrf(principal.session_id, presented):
                raise Forbidden(T("missing or invalid CSRF token"))
        if principal.must_change_password and route.pattern not in PASSWORD_CHANGE_ROUTES:
            raise PasswordChangeRequired(T("choose a new password first (POST /api/password)"))
        if route.roles:
            principal.require(*route.roles)

    async def _check_origin(self, req: Req, route: Route) -> None:
        """Forbidden unless the browser's Origin (else Referer), when it sends one, is ours; refusals audited.
        Only for requests a browser may send with ambient credentials (bearer calls carry their own)."""
        view = req.origin_view()
        if self.origins.allows(view):
            return
        where = "/" + "/".join(route.pattern)
        ORIGIN_REFUSED.inc()
        origin = describe(view)
        repeats = self.origin_refusals.admit(req.client_ip, origin, where)
        if repeats is None:
            raise Forbidden(T("origin not allowed"))  # this key was written less than a minute ago: counted only
        log.warning("refused %s %s: origin not allowed (%d more since the last such line)", req.method, where,
                    repeats)
        if self.audit is not None:
            p = req.principal
            detail: dict[str, Any] = {"origin": origin, "method": req.method, "route": where}
            if repeats:
                detail["repeats"] = repeats
            try:
                await self.audit("http.origin_refused", p.user_id if p else None, p.username if p else "",
                                 req.client_ip, detail)
            except Exception as exc:  # the refusal stands even when the audit log cannot be written
                log.error("could not audit a refused origin: %s", exception_summary(exc, self.log_pii))
        raise Forbidden(T("origin not allowed"))

    def _write(self, response: Response, request: server.Request, finished: list[bool]) -> None:
        if finished:
            return  # the client went away; nothing to write to
        request.setResponseCode(response.status, reason_phrase(response.status))
        request.setHeader("Content-Type", response.content_type)
        request.setHeader("X-Content-Type-Options", "nosniff")
        request.setHeader("X-Frame-Options", "DENY")
        request.setHeader("Referrer-Policy", "same-origin")
        request.setHeader("Cache-Control", "no-store")
        if response.content_type.startswith("text/html"):
            connect = self.connect_src() if self.connect_src is not None else ""
            request.setHeader("Content-Security-Policy",
                              PAGE_CSP + (f"; connect-src 'self' {connect}" if connect else ""))
        else:
            request.setHeader("Content-Security-Policy", OTHER_CSP)
        for name, value in response.headers.items():
            request.setHeader(name, value)
        for cookie in response.cookies:
            request.responseHeaders.addRawHeader("Set-Cookie", cookie)
        request.setHeader("Content-Length", str(len(response.body)))
        if request.method != b"HEAD":
            request.write(response.body)
        request.finish()

    def _crash(self, failure, request: server.Request, finished: list[bool]) -> None:
        # Only a failure to write the response gets here (_dispatch answers every error of a handler).
        log.error("error writing a response: %s", exception_summary(failure.value, self.log_pii))
        if not finished and not getattr(request, "startedWriting", False):
            self._write(json_response({"error": "internal error"}, 500), request, finished)
