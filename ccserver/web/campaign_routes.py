"""Outbound campaigns over the API (roles ``campaign_manager`` and admin):

- ``POST /api/campaigns`` ``{"name", "type", "mode", "queue", "store"?, "window"?, "targets", "tiers_first"?,
  "max_attempts"?}`` → 201 ``{"id", "targets"}``;
- ``POST /api/campaigns/{id}/start|pause|resume`` → ``{"id", "status", "from"}`` (409 from the wrong status);
- ``GET /api/campaigns/{id}`` → the campaign with ``progress``; ``GET /api/campaigns`` → ``{"campaigns": [...]}``;
- ``POST /api/campaigns/{id}/dispositions`` ``{"attempt_id", "disposition", "note"?}`` (agents too): ``reached``,
  ``booked`` / ``callback`` / ``complaint`` (a ticket through the tickets service), ``refused`` (the contact ends and
  every marketing campaign stops for the customer), ``wrong_number``;
- ``POST /api/dnc`` ``{"number"}`` → ``{"number", "added"}``; ``POST /api/dnc/import`` (``text/csv``: a ``number``
  column or the first one) → ``{"rows", "added", "already", "duplicates", "errors": [{"row", "value", "error"}],
  "error_count"}``;
  ``DELETE /api/dnc/{number}`` → ``{"number", "removed"}``.

``GET /campaigns`` is the campaign manager's page. Every change is audited (``campaign.create``, ``campaign.start``
…, ``dnc.add``, ``dnc.remove``). Errors are JSON ``{"error", "field"?}``: 400 a malformed field, 422 a well-formed one
naming something that does not exist
(queue, store, no matching customer), 404, 409, 503 without a database. A CSV upload (DNC numbers, a campaign's
targets) is read as the CRM import reads one (:mod:`ccserver.csvtext`: UTF-8 with or without a BOM, else
GBK/GB18030); other bytes are a 400 naming the first byte's offset.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from ccserver import csvtext
from ccserver.campaigns.service import CampaignError, CampaignService, Manager
from ccserver.campaigns.spec import SpecError, parse_spec
from ccserver.texts import T, message_of, translated
from ccserver.wallboard.charts import chart_markup
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, html_response, json_response

ROLES = ("campaign_manager",)


class CampaignRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.add("POST", "/api/campaigns/count", self.count, access="api", roles=ROLES)
        router.add("GET", "/api/campaigns/{id}/results", self.results, access="api", roles=ROLES)
        router.add("GET", "/api/campaigns/{id}/results.svg", self.results_svg, access="api", roles=ROLES)
        router.add("GET", "/api/campaigns/{id}/results.csv", self.results_csv, access="api", roles=ROLES)
        router.add("GET", "/api/dnc", self.dnc_list, access="api", roles=ROLES)
        router.add("POST", "/api/campaigns/{id}/targets/import", self.import_targets, access="api", roles=ROLES)
        router.add("GET", "/campaigns/{id}/results", self.results_page, access="page", roles=ROLES)
        router.add("POST", "/api/campaigns", self.create, access="api", roles=ROLES)
        router.add("GET", "/api/campaigns", self.list, access="api", roles=ROLES)
        router.add("GET", "/api/campaigns/{id}", self.get, access="api", roles=ROLES)
        for action in ("start", "pause", "resume"):
            router.add("POST", f"/api/campaigns/{{id}}/{action}", self._mover(action), access="api", roles=ROLES)
        router.add("POST", "/api/campaigns/{id}/dispositions", self.dispose, access="api",
                   roles=("agent", "supervisor", *ROLES))
        router.add("POST", "/api/dnc", self.dnc_add, access="api", roles=ROLES)
        router.add("GET", "/campaigns", self.page, access="page", roles=ROLES)
        router.add("POST", "/api/dnc/import", self.dnc_import, access="api", roles=ROLES)
        router.add("DELETE", "/api/dnc/{number}", self.dnc_remove, access="api", roles=ROLES)
        # Preview mode (agents): the next contact, then dial or skip it.
        agents = ("agent", "supervisor")
        router.add("POST", "/api/preview/next", self.preview_next, access="api", roles=agents)
        router.add("POST", "/api/preview/{target}/dial", self.preview_dial, access="api", roles=agents)
        router.add("POST", "/api/preview/{target}/skip", self.preview_skip, access="api", roles=agents)

    def _service(self) -> CampaignService:
        service: CampaignService | None = self.ctx.campaigns
        if service is None:
            raise HTTPError(503, T("campaigns need the database"))
        return service

    @staticmethod
    def _who(req: Req) -> Manager:
        p = req.principal
        assert p is not None
        return Manager(p.user_id, p.username)

    async def _audit(self, req: Req, action: str, detail: dict[str, Any]) -> None:
        who = self._who(req)
        await self.ctx.run_blocking(self.ctx.users.audit, action, who.user_id, who.name, req.client_ip, detail)

    @staticmethod
    async def _call(coro: Any) -> Any:
        try:
            return await coro
        except CampaignError as exc:
            extra: dict[str, Any] = {"field": exc.field} if exc.field else {}
            raise HTTPError(exc.status, exc.message, **extra) from None

    @staticmethod
    def _id(req: Req) -> int:
        raw = req.path_params["id"]
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**53:
            raise HTTPError(404, T("no such campaign"))
        return int(raw)

    async def create(self, req: Req) -> Response:
        service = self._service()
        try:
            spec = parse_spec(req.json())
        except SpecError as exc:
            raise HTTPError(exc.status, exc.message, field=exc.field) from None
        tickets, actor = await self._worklist(req, spec)
        created = await self._call(service.create(self._who(req), spec, tickets=tickets, actor=actor))
        await self._audit(req, "campaign.create", {"campaign_id": created["id"], "name": spec.name,
                                                   "type": spec.type, "mode": spec.mode, "targets": created["targets"]})
        return json_response(created, 201)

    async def list(self, req: Req) -> Response:
        return json_response({"campaigns": await self._call(self._service().campaigns())})

    async def get(self, req: Req) -> Response:
        return json_response(await self._call(self._service().get(self._id(req))))

    def _mover(self, action: str) -> Any:
        async def move(req: Req) -> Response:
            campaign_id = self._id(req)
            moved = await self._call(self._service().move(self._who(req), campaign_id, action))
            await self._audit(req, f"campaign.{action}", {"campaign_id": campaign_id, "from": moved["from"],
                                                          "to": moved["status"]})
            return json_response(moved)

        return move

    async def dispose(self, req: Req) -> Response:
        service = self._service()
        campaign_id = self._id(req)
        body = req.json()
        unknown = sorted(set(body) - {"attempt_id", "disposition", "note"})
        if unknown:
            raise HTTPError(400, T("unknown field(s): {unknown}", unknown=', '.join(unknown)), field=unknown[0])
        attempt_id = body.get("attempt_id")
        if not isinstance(attempt_id, int) or isinstance(attempt_id, bool) or not 0 < attempt_id < 2**53:
            raise HTTPError(400, T("attempt_id must be an attempt id"), field="attempt_id")
        p = req.principal
        assert p is not None
        from ccserver.tickets.access import Actor

        actor = Actor(p.user_id, p.username, p.role, None, None, req.client_ip)
        done = await self._call(service.dispose(self._who(req), campaign_id, attempt_id, body.get("disposition"),
                                                body.get("note"), tickets=self.ctx.tickets, actor=actor))
        await self._audit(req, "campaign.disposition", {"campaign_id": campaign_id, **done})
        return json_response(done)

    async def page(self, req: Req) -> Response:
        """The campaign manager page (agents_ui/templates/campaigns.html + static/campaigns.js)."""
        p = req.principal
        assert p is not None
        service: CampaignService | None = self.ctx.campaigns
        cap = service.settings.pacing.abandon_cap if service is not None else 0.03
        page = self.ctx.templates.render("campaigns.html", req.lang, principal=p,
                                         csrf_token=self.ctx.signer.csrf_token(p.session_id), abandon_cap=cap)
        return html_response(page)

    async def dnc_add(self, req: Req) -> Response:
        service = self._service()
        body = req.json()
        unknown = sorted(set(body) - {"number"})
        if unknown:
            raise HTTPError(400, T("unknown field(s): {unknown}", unknown=', '.join(unknown)), field=unknown[0])
        added = await self._call(service.dnc_add(self._who(req), body.get("number")))
        await self._audit(req, "dnc.add", {"number": added["number"], "added": added["added"]})
        return json_response(added, 201 if added["added"] else 200)

    def _csv_body(self, req: Req) -> str:
        content_type = (req.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in ("text/csv", "text/plain"):
            raise HTTPError(415, T("expected Content-Type: text/csv"))
        try:  # the encodings the CRM import reads too: Chinese Excel saves CSV as GBK
            text, _encoding = csvtext.decode(req.body)
        except csvtext.UndecodableCSV as exc:
            raise HTTPError(400, message_of(exc), field="body") from None
        if "\0" in text:
            raise HTTPError(400, T("the CSV must be text"), field="body")
        return text

    async def import_targets(self, req: Req) -> Response:
        campaign_id = self._id(req)
        done = await self._call(self._service().import_targets(self._who(req), campaign_id, self._csv_body(req)))
        counts = ("rows", "added", "already", "duplicates", "customers", "error_count")
        await self._audit(req, "campaign.targets_import", {"campaign_id": campaign_id, **{k: done[k] for k in counts}})
        return json_response(_rows_read(done, req))

    async def dnc_import(self, req: Req) -> Response:
        service = self._service()
        done = await self._call(service.dnc_import(self._who(req), self._csv_body(req)))
        counts = ("rows", "added", "already", "duplicates", "error_count")
        await self._audit(req, "dnc.import", {k: done[k] for k in counts})
        return json_response(_rows_read(done, req))

    async def dnc_remove(self, req: Req) -> Response:
        service = self._service()
        removed = await self._call(service.dnc_remove(self._who(req), unquote(req.path_params["number"])))
        await self._audit(req, "dnc.remove", {"number": removed["number"]})
        return json_response(removed)

    # -- preview mode -------------------------------------------------------------------------------------------
    def _preview(self) -> Any:
        if self.ctx.preview is None:
            raise HTTPError(503, T("preview mode needs the database"))
        return self.ctx.preview

    @staticmethod
    def _target(req: Req) -> int:
        raw = req.path_params["target"]
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**53:
            raise HTTPError(404, T("no such target"))
        return int(raw)

    @staticmethod
    def _actor(req: Req) -> Any:
        from ccserver.web.agent_routes import actor_of

        return actor_of(req)

    async def _desk(self, coro: Any) -> Any:
        from ccserver.desktop.service import DesktopError

        try:
            return await self._call(coro)
        except DesktopError as exc:
            extra: dict[str, Any] = {"field": exc.field} if exc.field else {}
            raise HTTPError(exc.status, exc.message, **extra) from None

    async def preview_next(self, req: Req) -> Response:
        shown = await self._desk(self._preview().next(self._actor(req)))
        if shown.get("target") is not None:
            await self._audit(req, "campaign.preview_next", {"campaign_id": shown["campaign"]["id"],
                                                             "target_id": shown["target"]["id"]})
        return json_response(shown)

    async def preview_dial(self, req: Req) -> Response:
        target = self._target(req)
        dialled = await self._desk(self._preview().dial(self._actor(req), target))
        await self._audit(req, "campaign.preview_dial", {k: dialled[k] for k in (
            "campaign_id", "target_id", "attempt_id", "action_id")})
        return json_response(dialled)

    async def preview_skip(self, req: Req) -> Response:
        target = self._target(req)
        body = req.json()
        unknown = sorted(set(body) - {"reason"})
        if unknown:
            raise HTTPError(400, T("unknown field(s): {unknown}", unknown=', '.join(unknown)), field=unknown[0])
        skipped = await self._desk(self._preview().skip(self._actor(req), target, body.get("reason")))
        await self._audit(req, "campaign.preview_skip", skipped)
        return json_response(skipped)

    # -- before start: the dry-run count; after: results per day, CSV; the DNC list ------------------------------
    async def count(self, req: Req) -> Response:
        body = req.json()
        if isinstance(body, dict) and not body.get("name"):
            body = {**body, "name": "(dry run)"}  # a dry run needs no name yet
        try:
            spec = parse_spec(body)
        except SpecError as exc:
            raise HTTPError(exc.status, exc.message, field=exc.field) from None
        tickets, actor = await self._worklist(req, spec)
        return json_response(await self._call(self._service().count(spec, tickets=tickets, actor=actor)))

    async def _worklist(self, req: Req, spec: Any) -> tuple[Any, Any]:
        """For ``{"source": …}`` targets: the tickets service and the manager as its actor (their store's
        worklist, or every store's without one — the tickets service's own rule)."""
        if "source" not in spec.targets or self.ctx.tickets is None:
            return None, None
        from ccserver.tickets.access import Actor
        from ccserver.web.ticket_routes import _scope

        p = req.principal
        assert p is not None
        scope = await self.ctx.run_blocking(_scope, self.ctx.session_factory, p.user_id)
        if scope is None:
            raise HTTPError(401, T("user not found"))
        return self.ctx.tickets, Actor(p.user_id, p.username, p.role, scope[0], scope[1], req.client_ip)

    async def _days(self, req: Req) -> Any:  # (``list`` is a method name here)
        from ccserver.campaigns.results import daily

        service = self._service()
        attempts = await self._call(service.attempts(self._id(req)))
        return daily(attempts, service.default_zone)

    async def results(self, req: Req) -> Response:
        return json_response({"days": await self._days(req)})

    async def results_svg(self, req: Req) -> Response:
        from ccserver.campaigns.results import daily_chart

        svg = daily_chart(await self._days(req))
        return Response(200, svg.encode("utf-8"), "image/svg+xml; charset=utf-8", {"Cache-Control": "no-store"})

    async def results_page(self, req: Req) -> Response:
        """A campaign's results per day: the server-drawn SVG chart (ccserver/campaigns/results.py), the table."""
        from ccserver.campaigns.results import daily_chart

        p = req.principal
        assert p is not None
        campaign = await self._call(self._service().get(self._id(req)))
        days = await self._days(req)
        page = self.ctx.templates.render("campaign_results.html", req.lang, principal=p,
                                         csrf_token=self.ctx.signer.csrf_token(p.session_id), campaign=campaign,
                                         days=days, chart=chart_markup(daily_chart(days)))
        return html_response(page)

    async def results_csv(self, req: Req) -> Response:
        from ccserver.campaigns.results import EXPORT_COLUMNS, export_rows
        from ccserver.kpi.reports import to_csv

        campaign_id = self._id(req)
        rows = export_rows(await self._call(self._service().attempts(campaign_id)))
        await self._audit(req, "campaign.export", {"campaign_id": campaign_id, "rows": len(rows)})
        return Response(200, to_csv(rows, EXPORT_COLUMNS), "text/csv; charset=utf-8",
                        {"Content-Disposition": f'attachment; filename="campaign-{campaign_id}-results.csv"',
                         "Cache-Control": "no-store"})

    async def dnc_list(self, req: Req) -> Response:
        return json_response({"numbers": await self._call(self._service().dnc_list())})


def _rows_read(done: dict[str, Any], req: Req) -> dict[str, Any]:
    """An import's answer with each refused row's reason in the reader's language (ccserver.texts)."""
    return {**done, "errors": [{**e, "error": translated(e["error"], req.reader_gettext)} for e in done["errors"]]}
