"""``GET /reports`` — the reports page (supervisor, admin): by queue, by agent, or the dealer group's stores side by
side, per day or 15 minutes, with SVG charts drawn on the server (ccserver/kpi/report_page.py) and a CSV export
link (the audited ``/api/reports/…?format=csv``). A store manager sees only their store, as in the API.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select

from agents_ui.i18n import translations
from ccserver.db.models import Queue, Store
from ccserver.kpi.intervals import zone
from ccserver.kpi.report_page import agent_chart, agent_totals, queue_chart, store_chart, store_totals
from ccserver.kpi.reports import agent_report, queue_report
from ccserver.texts import T, translated
from ccserver.wallboard.charts import chart_markup
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, html_response
from ccserver.web.kpi_routes import MAX_ROWS, KpiRoutes

ROLES = ("supervisor",)


VIEWS = ("queues", "agents", "stores")


class ReportPageRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx
        self.kpi = KpiRoutes(ctx)  # the same parameter checks and store-manager rule as the API

    def register(self, router: Router) -> None:
        router.add("GET", "/reports", self.page, access="page", roles=ROLES)

    async def page(self, req: Req) -> Response:
        p = req.principal
        assert p is not None
        view = req.arg("view", "queues") or "queues"
        if view not in VIEWS:
            raise HTTPError(400, T("view must be queues, agents or stores"), field="view")
        try:
            start, end, interval, _fmt = self.kpi._range(req)  # noqa: SLF001 - one parser for the page and the API
        except HTTPError as exc:
            return self._refused(req, view, exc)
        visible = await self.kpi._visible_queues(req)  # noqa: SLF001
        factory = self.ctx.session_factory
        if factory is None:
            raise HTTPError(503, T("reports need the database"))
        store = self.kpi._store()  # noqa: SLF001
        tz = self.ctx.config.server.time_zone
        context: dict[str, Any] = {"rows": [], "chart": chart_markup(""), "totals": []}
        if view == "agents":
            rows = await self.ctx.run_blocking(store.agent_rows, start, end, None, MAX_ROWS)
            rows = [r for r in rows if visible is None or set(r["queues"]) & visible]
            report = agent_report(rows, interval, tz)
            totals = agent_totals(rows)
            context.update(rows=report, totals=totals, chart=chart_markup(agent_chart(totals)))
        else:
            rows = await self.ctx.run_blocking(store.queue_rows, start, end, visible, MAX_ROWS)
            if view == "queues":
                report = queue_report(rows, interval, tz)
                context.update(rows=report, chart=chart_markup(queue_chart(report)))
            else:
                store_of, names = await self.ctx.run_blocking(_stores, factory)
                totals = store_totals(rows, store_of, names)
                no_store = translations(req.lang).gettext("(no store)")
                context.update(totals=totals, chart=chart_markup(store_chart(totals, no_store)))
        local = zone(tz)
        first, last = start.astimezone(local), end.astimezone(local)
        query = {"from": req.arg("from") or first.date().isoformat(),
                 "to": req.arg("to") or first.date().isoformat(), "interval": interval}
        api = "agents" if view == "agents" else "queues"
        page = self.ctx.templates.render(
            "reports.html", req.lang, principal=p, csrf_token=self.ctx.signer.csrf_token(p.session_id),
            view=view, interval=interval, start=first, end=last, query=query,
            csv_url=f"/api/reports/{api}?{urlencode({**query, 'format': 'csv'})}", store_manager=visible is not None,
            error="", error_field=None, **context)
        return html_response(page)


    def _refused(self, req: Req, view: str, exc: HTTPError) -> Response:
        """A range the reports refuse (to before from, too long, not a date): the page again, the person's choices
        kept and the reason above them in the page's language, naming the fields by their labels (a 400, not the
        error page the form's GET would otherwise lead to)."""
        p = req.principal
        assert p is not None
        gettext = translations(req.lang).gettext
        labels = {field: f"“{gettext(label)}”" for field, label in (("from", "From"), ("to", "To"),
                                                                    ("interval", "Interval"))}
        interval = req.arg("interval") or "day"
        query = {"from": req.arg("from") or "", "to": req.arg("to") or "", "interval": interval}
        page = self.ctx.templates.render(
            "reports.html", req.lang, principal=p, csrf_token=self.ctx.signer.csrf_token(p.session_id),
            view=view, interval=interval, query=query, csv_url="", store_manager=False, rows=[], totals=[],
            chart=chart_markup(""), error=translated(exc.message, gettext, labels), error_field=exc.extra.get("field"))
        return html_response(page, 400)


def _stores(factory: Any) -> tuple[dict[str, int | None], dict[int, str]]:
    with factory() as session:
        store_of = dict(session.execute(select(Queue.name, Queue.store_id)).all())
        names = dict(session.execute(select(Store.id, Store.name)).all())
    return store_of, names
