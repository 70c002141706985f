"""The agent desktop over HTTP: the page and the API it calls (scripts may call it too, with a bearer token).

- ``GET /desktop`` — the page (agents and department staff with an extension; supervisors may view);
- ``GET /api/desktop/config`` — pause codes, dispositions, wrap-up seconds, queues, the viewer's phone;
- ``GET /api/desktop/state`` — sign-in, live agent state and time in it, wrap-up, the current call;
- ``POST /api/desktop/wrapup/end`` — end one's own wrap-up before its timer;
- ``POST /api/calls/{uniqueid}/disposition`` ``{"code", "note"?}`` — stores it, ends wrap-up early;
- ``POST /api/calls/{uniqueid}/notes`` ``{"text", "ticket_id"?}``; ``GET /api/calls/{uniqueid}/notes``;
- ``POST /api/calls/{uniqueid}/transfer`` ``{"kind": "blind"|"attended", "to", "target"?: queue|agent|number}``;
- ``POST /api/dial`` ``{"number", "ticket_id"?}`` — click-to-dial (agent's phone first);
- ``GET /api/desktop/customers?q=`` — search by name, number, plate, VIN; ``GET /api/desktop/customers/{id}`` —
  the customer with history; ``POST /api/desktop/customers/{id}`` — edit a prospect; ``POST
  /api/desktop/customers/{id}/merge`` ``{"into"}`` — merge a prospect into an existing customer.

Every route is role-checked (router), CSRF-checked for cookie sessions (router) and every change audited (the
service). Errors are JSON ``{"error", "field"?}``.
"""

from __future__ import annotations

from typing import Any, Final

from ccserver.desktop.service import DesktopError, DesktopService
from ccserver.texts import T
from ccserver.web.agent_routes import actor_of
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, html_response, json_response

DESKTOP_ROLES: Final = ("agent", "department", "supervisor")


def _fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise HTTPError(400, T("unknown field(s): {unknown}", unknown=', '.join(unknown)), field=unknown[0])


def _path_id(req: Req, name: str = "id") -> int:
    raw = req.path_params[name]
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**53:
        raise HTTPError(404, T("not found"))
    return int(raw)


class DesktopRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def register(self, router: Router) -> None:
        r = DESKTOP_ROLES
        router.add("GET", "/desktop", self.page, access="page", roles=r)
        router.add("GET", "/api/desktop/config", self.config, access="api", roles=r)
        router.add("GET", "/api/desktop/state", self.state, access="api", roles=r)
        router.add("POST", "/api/desktop/wrapup/end", self.end_wrapup, access="api", roles=r)
        router.add("POST", "/api/calls/{uniqueid}/disposition", self.disposition, access="api", roles=r)
        router.add("POST", "/api/calls/{uniqueid}/notes", self.add_note, access="api", roles=r)
        router.add("GET", "/api/calls/{uniqueid}/notes", self.notes, access="api", roles=r)
        router.add("POST", "/api/calls/{uniqueid}/transfer", self.transfer, access="api", roles=r)
        router.add("POST", "/api/dial", self.dial, access="api", roles=r)
        router.add("GET", "/api/desktop/customers", self.search, access="api", roles=r)
        router.add("GET", "/api/desktop/customers/{id}", self.customer, access="api", roles=r)
        router.add("POST", "/api/desktop/customers/{id}", self.update_customer, access="api", roles=r)
        router.add("POST", "/api/desktop/customers/{id}/merge", self.merge, access="api", roles=r)

    def _service(self) -> DesktopService:
        service = self.ctx.desktop
        if service is None:
            raise HTTPError(503, T("the desktop is not configured (needs the database)"))
        return service  # type: ignore[no-any-return]

    @staticmethod
    async def _answer(coro: Any, status: int = 200) -> Response:
        try:
            result = await coro
        except DesktopError as exc:
            extra = dict(exc.extra)
            if exc.field is not None:
                extra["field"] = exc.field
            raise HTTPError(exc.status, exc.message, **extra) from None
        return json_response(result, status)

    async def page(self, req: Req) -> Response:
        service = self._service()
        p = req.principal
        assert p is not None
        try:
            me = await service.user(actor_of(req))
        except DesktopError as exc:
            raise HTTPError(exc.status, exc.message) from None
        lang = req.lang
        settings = service.settings
        page = self.ctx.templates.render(
            "desktop.html", lang, principal=p, csrf_token=self.ctx.signer.csrf_token(p.session_id), me=me,
            pause_codes=[(c.code, c.label(lang)) for c in settings.pause_codes],
            dispositions=[(c.code, c.label(lang)) for c in settings.dispositions],
            wrapup_seconds=settings.wrapup_seconds,
            screenpop=self.ctx.screenpop is not None)  # the screen-pop socket and card (screenpop_page.js)
        return html_response(page)

    async def config(self, req: Req) -> Response:
        service = self._service()

        async def build() -> dict[str, Any]:
            me = await service.user(actor_of(req))
            phone = None
            if me.extension and service.agents is not None:
                user = await self.ctx.run_blocking(service.agents.store.user_by_extension, me.extension)
                phone = user.interface if user is not None else None
            queues = await self.ctx.run_blocking(service.store.queue_names)
            s = service.settings
            return {"extension": me.extension, "interface": phone, "role": me.role, "store_id": me.store_id,
                    "queues": [q for q in queues if not q.startswith("agent-")],
                    "pause_codes": [c.json() for c in s.pause_codes],
                    "dispositions": [c.json() for c in s.dispositions], "wrapup_seconds": s.wrapup_seconds}

        return await self._answer(build())

    async def state(self, req: Req) -> Response:
        return await self._answer(self._with_link(self._service().state(actor_of(req))))

    async def _with_link(self, coro: Any) -> dict[str, Any]:
        return {**await coro, "asterisk_link": self.ctx.asterisk()}

    async def end_wrapup(self, req: Req) -> Response:
        return await self._answer(self._service().end_wrapup(actor_of(req)))

    async def disposition(self, req: Req) -> Response:
        body = req.json()
        _fields(body, {"code", "note"})
        return await self._answer(self._service().disposition(actor_of(req), req.path_params["uniqueid"],
                                                              body.get("code"), body.get("note")), 201)

    async def add_note(self, req: Req) -> Response:
        body = req.json()
        _fields(body, {"text", "ticket_id"})
        return await self._answer(self._service().note(actor_of(req), req.path_params["uniqueid"],
                                                       body.get("text"), body.get("ticket_id")), 201)

    async def notes(self, req: Req) -> Response:
        service = self._service()

        async def build() -> dict[str, Any]:
            return {"notes": await service.notes(actor_of(req), req.path_params["uniqueid"])}

        return await self._answer(build())

    async def transfer(self, req: Req) -> Response:
        body = req.json()
        _fields(body, {"kind", "to", "target"})
        return await self._answer(self._service().transfer(actor_of(req), req.path_params["uniqueid"],
                                                           body.get("kind"), body.get("to"), body.get("target")),
                                  202)

    async def dial(self, req: Req) -> Response:
        body = req.json()
        _fields(body, {"number", "ticket_id"})
        return await self._answer(self._service().dial(actor_of(req), body.get("number"), body.get("ticket_id")),
                                  202)

    async def search(self, req: Req) -> Response:
        service = self._service()

        async def build() -> dict[str, Any]:
            return {"customers": await service.search(actor_of(req), req.arg("q"))}

        return await self._answer(build())

    async def customer(self, req: Req) -> Response:
        return await self._answer(self._service().customer(actor_of(req), _path_id(req)))

    async def update_customer(self, req: Req) -> Response:
        body = req.json()
        return await self._answer(self._service().update_customer(actor_of(req), _path_id(req), body))

    async def merge(self, req: Req) -> Response:
        body = req.json()
        _fields(body, {"into"})
        return await self._answer(self._service().merge(actor_of(req), _path_id(req), body.get("into")))
