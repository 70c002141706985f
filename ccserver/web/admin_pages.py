"""The admin pages: stores, DIDs and queues, users, the audit log (agents_ui/templates/admin.html + admin.js).

The pages are a shell: the lists and every change go through ``/api/admin/…`` (ccserver/web/admin_routes.py),
which checks the role, the store of a store manager, CSRF and validity, and audits.
"""

from __future__ import annotations

import datetime as dt

from agents_ui.i18n import translations
from ccserver.db.models import LINES, ROLES, Store, User
from ccserver.texts import RoleName, T
from ccserver.web.admin_routes import MANAGER_ROLES, ticket_departments
from ccserver.web.context import WebContext
from ccserver.web.http import N_, HTTPError, Req, Response, Router, html_response, redirect

SECTIONS = ("stores", "dids", "calendar", "routing", "codes", "users", "data", "audit")
# A store manager's pages: the others are made of forms the API refuses them (routing rules, codes, import, audit).
MANAGER_SECTIONS = ("stores", "dids", "calendar", "users")


TITLES = {"stores": N_("Stores"), "dids": N_("DIDs and queues"), "calendar": N_("Hours and holidays"),
          "users": N_("Users"),
          "routing": N_("Routing rules and IVR"), "codes": N_("Pause and disposition codes"),
          "data": N_("Import and export"), "audit": N_("Audit log")}
# The menu's words, shorter where the title is long, so the English menu stays on one line at 1366 px (each link
# carries its page's full title as a tooltip; the page's heading says it in full).
NAV_TITLES = {**TITLES, "dids": N_("DIDs & queues"), "calendar": N_("Hours"), "routing": N_("Routing & IVR"),
              "codes": N_("Codes"), "data": N_("Import/export")}
LINE_NAMES = {"sales": N_("Sales"), "service": N_("Service"), "complaints": N_("Complaints"),
              "insurance": N_("Insurance"), "hotline": N_("Hotline")}
WEEKDAYS = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"),
            N_("Sunday"))


class AdminPages:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.add("GET", "/admin", self.index, access="page", roles=("supervisor",))
        router.add("GET", "/admin/{section}", self.page, access="page", roles=("supervisor",))

    async def index(self, req: Req) -> Response:
        return redirect("/admin/stores")

    async def page(self, req: Req) -> Response:
        section = req.path_params["section"]
        if section not in SECTIONS:
            raise HTTPError(404, T("not found"))
        p = req.principal
        assert p is not None
        is_admin = p.role == "admin"
        # A page offers only what the API lets this user do: a store manager's forms are fixed to their store
        # (own_store), and a page made only of admin actions is not theirs to open.
        own_store = None if is_admin else await self._store_of(p.user_id)
        if not is_admin and section not in MANAGER_SECTIONS:
            raise HTTPError(403, T("only an admin may open this page"))
        gettext = translations(req.lang).gettext
        page = self.ctx.templates.render(
            "admin.html", req.lang, principal=p, csrf_token=self.ctx.signer.csrf_token(p.session_id),
            section=section, sections=SECTIONS if is_admin else MANAGER_SECTIONS,
            titles={k: gettext(v) for k, v in TITLES.items()},
            nav_titles={k: gettext(v) for k, v in NAV_TITLES.items()}, lines=LINES,
            line_names={k: gettext(v) for k, v in LINE_NAMES.items()},
            roles=ROLES if is_admin else MANAGER_ROLES,
            role_names={k: gettext(v) for k, v in RoleName.NAMES.items()}, this_year=dt.date.today().year,
            weekday_names=[gettext(d) for d in WEEKDAYS],
            is_admin=is_admin, own_store=own_store, departments=sorted(ticket_departments(self.ctx)))
        return html_response(page)

    async def _store_of(self, user_id: int) -> str:
        """The code of a store manager's store; 403 for a supervisor without one (every form would be refused),
        as the API answers them."""
        sessions = self.ctx.session_factory
        if sessions is None:
            raise HTTPError(503, T("administration needs the database"))

        def code_of() -> str | None:
            with sessions() as session:
                user = session.get(User, user_id)
                store = session.get(Store, user.store_id) if user is not None and user.store_id else None
                return store.code if store is not None else None

        code = await self.ctx.run_blocking(code_of)
        if code is None:
            raise HTTPError(403, T("only an admin, or a supervisor with a store (a store manager), may do this"))
        return str(code)
