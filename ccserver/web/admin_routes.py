"""``/api/admin/…``: stores, DIDs, queues, hours and holidays, users, the audit log, CRM export and erasure.

Role admin may do everything; a *store manager* — a supervisor with a store — sees and changes only what belongs
to their store (DIDs, queues, hours, users) and may not create stores, admins or supervisors, nor read the audit
log. The checks and the audit rows are in ccserver/admin (the CLI uses the same functions). A change to what
routing reads (stores, DIDs, queues, hours, days) is followed by a reload on every node (ccserver/admin/reload.py)
before the answer, so the next call is routed by it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ccserver.admin import codes as admin_codes
from ccserver.admin import crm_export, org
from ccserver.admin import rules as admin_rules
from ccserver.admin import users as admin_users
from ccserver.admin.users import Actor, AdminError
from ccserver.db.models import User
from ccserver.passwords import PasswordBusy
from ccserver.texts import T, message_of, translated
from ccserver.tickets.settings import TicketSettings
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, json_response
from ccserver.web.moments import bounded

MANAGER_ROLES = ("agent", "department")  # the roles a store manager may give


def _whole(text: str) -> bool:
    """ASCII digits only: str.isdigit() is true of "²" and "١٢" too, which int() refuses (a 500)."""
    return text.isascii() and text.isdigit()


def ticket_departments(ctx: WebContext) -> set[str]:
    """The departments the tickets settings route to: a user's department must be one tickets can be in (the user
    form suggests them; the API refuses others that no active user works in)."""
    settings = ctx.tickets.settings if ctx.tickets is not None else TicketSettings.from_config(ctx.config)
    return settings.configured_departments()


def _store_id(sessions: Any, ref: Any) -> int | None:
    with sessions() as session:
        return admin_users.resolve_store(session, ref)


class AdminRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def register(self, router: Router) -> None:
        def add(method: str, path: str, handler: Callable[..., Any], *roles: str) -> None:
            router.add(method, path, handler, access="api", roles=roles or ("supervisor",))

        add("GET", "/api/admin/stores", self.list_stores)
        add("POST", "/api/admin/stores", self.create_store, "admin")
        add("PATCH", "/api/admin/stores/{id}", self.update_store, "admin")
        add("DELETE", "/api/admin/stores/{id}", self.delete_store, "admin")
        add("GET", "/api/admin/stores/{id}/hours", self.get_hours)
        add("PUT", "/api/admin/stores/{id}/hours", self.put_hours)
        add("GET", "/api/admin/queues", self.list_queues)
        add("POST", "/api/admin/queues", self.create_queue)
        add("PATCH", "/api/admin/queues/{id}", self.update_queue)
        add("DELETE", "/api/admin/queues/{id}", self.delete_queue)
        add("GET", "/api/admin/dids", self.list_dids)
        add("POST", "/api/admin/dids", self.create_did)
        add("PATCH", "/api/admin/dids/{id}", self.update_did)
        add("DELETE", "/api/admin/dids/{id}", self.delete_did)
        add("GET", "/api/admin/calendar", self.get_calendar)
        add("POST", "/api/admin/calendar/import", self.import_calendar, "admin")
        add("POST", "/api/admin/calendar/{kind}", self.add_day)
        add("PATCH", "/api/admin/calendar/{kind}/{id}", self.update_day)
        add("DELETE", "/api/admin/calendar/{kind}/{id}", self.delete_day)
        add("GET", "/api/admin/users", self.list_users)
        add("POST", "/api/admin/users", self.create_user)
        add("PATCH", "/api/admin/users/{name}", self.update_user)
        add("POST", "/api/admin/users/{name}/password", self.reset_password)
        add("POST", "/api/admin/users/{name}/deactivate", self.deactivate_user)
        add("GET", "/api/admin/routing-rules", self.get_rules, "admin")
        add("PUT", "/api/admin/routing-rules", self.put_rules, "admin")
        add("DELETE", "/api/admin/routing-rules", self.reset_rules, "admin")
        add("GET", "/api/admin/ivr", self.get_ivr, "admin")
        add("PUT", "/api/admin/ivr", self.put_ivr, "admin")
        add("DELETE", "/api/admin/ivr", self.reset_ivr, "admin")
        add("GET", "/api/admin/desktop-codes", self.get_codes, "admin")
        add("PUT", "/api/admin/desktop-codes", self.put_codes, "admin")
        add("DELETE", "/api/admin/desktop-codes", self.reset_codes, "admin")
        add("GET", "/api/admin/audit", self.audit_log, "admin")
        add("GET", "/api/admin/export/{kind}", self.export)
        add("POST", "/api/admin/import/{kind}", self.import_csv, "admin")
        add("POST", "/api/admin/customers/{id}/erase", self.erase_customer, "admin")

    # --- helpers -------------------------------------------------------------------------------------------

    def _sessions(self) -> Any:
        if self.ctx.session_factory is None:
            raise HTTPError(503, T("administration needs the database"))
        return self.ctx.session_factory

    async def scope(self, req: Req) -> int | None:
        """None for an admin; the store of a store manager; 403 for a supervisor without a store."""
        p = req.principal
        assert p is not None
        if p.role == "admin":
            return None

        def store_of(user_id: int) -> int | None:
            with self._sessions()() as session:
                user = session.get(User, user_id)
                return user.store_id if user is not None else None

        store = await self.ctx.run_blocking(store_of, p.user_id)
        if store is None:
            raise HTTPError(403, T("only an admin, or a supervisor with a store (a store manager), may do this"))
        return int(store)

    def actor(self, req: Req) -> Actor:
        p = req.principal
        assert p is not None
        return Actor(p.user_id, p.username, req.client_ip)

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await self.ctx.run_blocking(fn, self._sessions(), *args, **kwargs)
        except AdminError as exc:
            if exc.field:  # the field to blame, beside the reason (a page marks it)
                raise HTTPError(exc.status, exc.message, field=exc.field) from None
            raise HTTPError(exc.status, exc.message) from None

    async def changed(self, what: str, result: Any, status: int = 200) -> Response:
        """Routing data changed: reload on every node, then answer."""
        reloads = getattr(self.ctx, "admin_reload", None)
        told = await reloads.publish(what) if reloads is not None else True
        return json_response({"result": result, "reloaded": True, "all_nodes": told}, status)

    @staticmethod
    def _id(req: Req, name: str = "id") -> int:
        text = req.path_params[name]
        if not _whole(text) or len(text) > 12:
            raise HTTPError(404, T("not found"))
        return int(text)

    # --- stores, hours -------------------------------------------------------------------------------------

    async def list_stores(self, req: Req) -> Response:
        return json_response({"stores": await self.call(org.list_stores, await self.scope(req))})

    async def create_store(self, req: Req) -> Response:
        result = await self.call(org.save_store, self.actor(req), req.json())
        return await self.changed("store", result, 201)

    async def update_store(self, req: Req) -> Response:
        result = await self.call(org.save_store, self.actor(req), req.json(), self._id(req))
        return await self.changed("store", result)

    async def delete_store(self, req: Req) -> Response:
        await self.call(org.delete_store, self.actor(req), self._id(req))
        return await self.changed("store", None)

    async def get_hours(self, req: Req) -> Response:
        return json_response(await self.call(org.hours_of, req.path_params["id"], await self.scope(req)))

    async def put_hours(self, req: Req) -> Response:
        limit = await self.scope(req)
        result = await self.call(org.set_hours, self.actor(req), req.path_params["id"], req.json().get("hours"),
                                 limit)
        return await self.changed("hours", result)

    # --- queues, DIDs ---------------------------------------------------------------------------------------

    async def list_queues(self, req: Req) -> Response:
        return json_response({"queues": await self.call(org.list_queues, await self.scope(req))})

    async def create_queue(self, req: Req) -> Response:
        limit = await self.scope(req)
        result = await self.call(org.save_queue, self.actor(req), req.json(), None, limit)
        return await self.changed("queue", result, 201)

    async def update_queue(self, req: Req) -> Response:
        limit = await self.scope(req)
        result = await self.call(org.save_queue, self.actor(req), req.json(), self._id(req), limit)
        return await self.changed("queue", result)

    async def delete_queue(self, req: Req) -> Response:
        limit = await self.scope(req)
        file_rules = self.ctx.config.section("routing")

        def delete(sessions: Any, actor: Actor, queue_id: int) -> None:
            # the rules routing uses (the admin's, else the file's): a queue they name is not removed
            rules = admin_rules.effective(sessions, file_rules).to_dict()
            org.delete_queue(sessions, actor, queue_id, limit, rules)

        await self.call(delete, self.actor(req), self._id(req))
        return await self.changed("queue", None)

    async def list_dids(self, req: Req) -> Response:
        return json_response({"dids": await self.call(org.list_dids, await self.scope(req))})

    async def create_did(self, req: Req) -> Response:
        limit = await self.scope(req)
        result = await self.call(org.save_did, self.actor(req), req.json(), None, limit)
        return await self.changed("did", result, 201)

    async def update_did(self, req: Req) -> Response:
        limit = await self.scope(req)
        result = await self.call(org.save_did, self.actor(req), req.json(), self._id(req), limit)
        return await self.changed("did", result)

    async def delete_did(self, req: Req) -> Response:
        limit = await self.scope(req)
        await self.call(org.delete_did, self.actor(req), self._id(req), limit)
        return await self.changed("did", None)

    # --- calendar -------------------------------------------------------------------------------------------

    async def get_calendar(self, req: Req) -> Response:
        year_text = req.arg("year") or str(dt.date.today().year)
        if not _whole(year_text) or not 2000 <= int(year_text) <= 2100:
            raise HTTPError(400, T("year must be like 2027"))
        return json_response(await self.call(org.list_days, int(year_text), await self.scope(req)))

    async def import_calendar(self, req: Req) -> Response:
        year = req.json().get("year")
        if not isinstance(year, int):
            raise HTTPError(400, T("year must be a number like 2027"))
        return await self.changed("calendar", await self.call(org.import_cn_year, self.actor(req), year))

    async def add_day(self, req: Req) -> Response:
        limit = await self.scope(req)
        result = await self.call(org.add_day, self.actor(req), req.path_params["kind"], req.json(), limit)
        return await self.changed("calendar", result, 201)

    async def update_day(self, req: Req) -> Response:
        limit = await self.scope(req)
        result = await self.call(org.update_day, self.actor(req), req.path_params["kind"], self._id(req), req.json(),
                                 limit)
        return await self.changed("calendar", result)

    async def delete_day(self, req: Req) -> Response:
        limit = await self.scope(req)
        await self.call(org.delete_day, self.actor(req), req.path_params["kind"], self._id(req), limit)
        return await self.changed("calendar", None)

    # --- users ----------------------------------------------------------------------------------------------

    async def _user_in_scope(self, name: str, limit: int | None, field: str = "username") -> dict[str, Any]:
        """The user ``name`` (a store manager: of their store); 404 naming ``field``, the form's input for it."""
        found = [u for u in await self.call(admin_users.list_users) if u["username"] == name]
        if not found or (limit is not None and found[0]["store_id"] != limit):
            if limit is not None:
                raise HTTPError(404, T("no user named {name} in your store", name=repr(name)), field=field)
            raise HTTPError(404, T("no user named {name}", name=repr(name)), field=field)
        return found[0]

    async def _manager_may(self, limit: int | None, data: dict[str, Any]) -> None:
        if limit is None:
            return
        if data.get("role") is not None and data["role"] not in MANAGER_ROLES:
            raise HTTPError(403, T("a store manager may only give the roles {manager_roles}",
                                   manager_roles=', '.join(MANAGER_ROLES)), field="role")
        if "store" in data and data["store"] not in (limit, str(limit)):
            # their store by its code (what the page shows and sends) is theirs too
            if await self.call(_store_id, data["store"]) != limit:
                raise HTTPError(403, T("a store manager may only manage users of their own store"), field="store")

    async def _hash(self, password: Any) -> str:
        if not isinstance(password, str):
            raise HTTPError(400, T("password must be text"), field="password")
        try:
            admin_users.check_password(password)
        except AdminError as exc:
            raise HTTPError(400, exc.message, field="password") from None
        try:
            return await self.ctx.passwords.hash(password)
        except PasswordBusy:
            raise HTTPError(503, T("too busy; try again shortly"), headers={"Retry-After": "1"}) from None

    async def list_users(self, req: Req) -> Response:
        limit = await self.scope(req)
        return json_response({"users": await self.call(admin_users.list_users, store_id=limit)})

    async def create_user(self, req: Req) -> Response:
        limit = await self.scope(req)
        data = req.json()
        if limit is not None:
            data.setdefault("store", limit)
        await self._manager_may(limit, data)
        allowed = {"username", "role", "password", "display_name", "store", "extension", "interface", "department",
                   "skills", "languages"}
        unknown = set(data) - allowed
        if unknown:
            raise HTTPError(400, T("unknown field(s): {unknown}", unknown=', '.join(sorted(unknown))))
        for key in ("username", "role"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise HTTPError(400, T("{key} is required", key=key), field=key)
        hashed = await self._hash(data.get("password"))
        result = await self.call(
            admin_users.add_user, self.actor(req), data["username"], data["role"], hashed,
            display_name=data.get("display_name"), store=data.get("store"), extension=data.get("extension"),
            interface=data.get("interface"), department=data.get("department"), skills=data.get("skills") or [],
            languages=data.get("languages") or ["zh"], must_change_password=True,
            departments=ticket_departments(self.ctx))
        return json_response({"result": result}, 201)

    async def update_user(self, req: Req) -> Response:
        limit = await self.scope(req)
        name = req.path_params["name"]
        target = await self._user_in_scope(name, limit)
        data = req.json()
        await self._manager_may(limit, data)
        if limit is not None and target["role"] not in MANAGER_ROLES:
            raise HTTPError(403, T("a store manager may only change agents and department users"), field="username")
        result = await self.call(admin_users.update_user, self.actor(req), name, data,
                                 departments=ticket_departments(self.ctx))
        self.ctx.sessions.users.forget(target["id"])  # a new role applies at the user's next request
        return json_response({"result": result})

    async def reset_password(self, req: Req) -> Response:
        limit = await self.scope(req)
        name = req.path_params["name"]
        target = await self._user_in_scope(name, limit)
        if limit is not None and target["role"] not in MANAGER_ROLES:
            raise HTTPError(403, T("a store manager may only reset agents' and department users' passwords"),
                            field="username")
        hashed = await self._hash(req.json().get("password"))
        result = await self.call(admin_users.set_password, self.actor(req), name, hashed, must_change=True)
        self.ctx.sessions.users.forget(target["id"])
        if self.ctx.screenpop is not None:  # their open websockets close now (other nodes': at their next check)
            self.ctx.screenpop.ws.end_user(target["id"], "password_change")
        return json_response({"result": result})

    async def deactivate_user(self, req: Req) -> Response:
        limit = await self.scope(req)
        name = req.path_params["name"]
        target = await self._user_in_scope(name, limit)
        if limit is not None and target["role"] not in MANAGER_ROLES:
            raise HTTPError(403, T("a store manager may only deactivate agents and department users"),
                            field="username")
        if req.principal is not None and target["id"] == req.principal.user_id:
            raise HTTPError(400, T("you cannot deactivate yourself"), field="username")
        heir = req.json().get("reassign_to") if req.body else None
        if heir is not None:
            if not isinstance(heir, str):
                raise HTTPError(400, T("reassign_to must be a user name"), field="reassign_to")
            await self._user_in_scope(heir, limit, "reassign_to")
        result = await self.call(admin_users.deactivate, self.actor(req), name, heir)
        self.ctx.sessions.users.forget(target["id"])  # their sessions end at their next request
        if self.ctx.screenpop is not None:  # their open websockets close now (other nodes': at their next check)
            self.ctx.screenpop.ws.end_user(target["id"])
        return json_response({"result": result})

    # --- routing rules -------------------------------------------------------------------------------------

    async def get_rules(self, req: Req) -> Response:
        file_rules = self.ctx.config.section("routing")
        override = await self.call(admin_rules.stored)
        rules = await self.call(admin_rules.effective, file_rules)
        return json_response({"rules": rules.to_dict(), "source": "admin" if override is not None else "file"})

    async def put_rules(self, req: Req) -> Response:
        result = await self.call(admin_rules.save, self.actor(req), req.json().get("rules"),
                                 self.ctx.config.section("routing"), self.ctx.config.prompts.sound_dir)
        return await self.changed("routing_rules", result)

    async def reset_rules(self, req: Req) -> Response:
        result = await self.call(admin_rules.reset, self.actor(req), self.ctx.config.section("routing"))
        return await self.changed("routing_rules", result)

    async def get_ivr(self, req: Req) -> Response:
        override = await self.call(admin_rules.stored, admin_rules.IVR_KEY)
        # The file's [ivr] table, or — when it has none — the built-in menus it would be laid over.
        from ivr.settings import default_table

        table = override if override is not None else (self.ctx.config.section("ivr") or default_table())
        return json_response({"ivr": table, "source": "admin" if override is not None else "file"})

    async def put_ivr(self, req: Req) -> Response:
        result = await self.call(admin_rules.save_ivr, self.actor(req), req.json().get("ivr"),
                                 self.ctx.config.prompts.sound_dir)
        return await self.changed("ivr", result)

    async def reset_ivr(self, req: Req) -> Response:
        await self.call(admin_rules.reset_ivr, self.actor(req))
        return await self.changed("ivr", None)

    # --- the desktop's pause and disposition codes ----------------------------------------------------------

    async def get_codes(self, req: Req) -> Response:
        override = await self.call(admin_rules.stored, admin_codes.KEY)
        settings = await self.call(admin_codes.effective, self.ctx.config.section("desktop"))
        return json_response({"codes": admin_codes.as_json(settings),
                              "source": "admin" if override is not None else "file"})

    async def put_codes(self, req: Req) -> Response:
        result = await self.call(admin_codes.save, self.actor(req), req.json().get("codes"),
                                 self.ctx.config.section("desktop"))
        return await self.changed("desktop_codes", result)

    async def reset_codes(self, req: Req) -> Response:
        result = await self.call(admin_codes.reset, self.actor(req), self.ctx.config.section("desktop"))
        return await self.changed("desktop_codes", result)

    # --- audit, export, erasure -------------------------------------------------------------------------

    async def audit_log(self, req: Req) -> Response:
        def when(name: str) -> dt.datetime | None:
            text = req.arg(name)
            if not text:
                return None
            try:
                value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise HTTPError(400, T("{name} must be an ISO date or time", name=name)) from None
            bounded(value, name)
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

        limit_text = req.arg("limit") or "200"
        before_text = req.arg("before") or ""
        if not _whole(limit_text) or (before_text and not _whole(before_text)):
            raise HTTPError(400, T("limit and before must be whole numbers"))
        entries = await self.call(org.audit_entries, action=req.arg("action"), actor=req.arg("actor"),
                                  target=req.arg("target"), since=when("since"), until=when("until"),
                                  limit=int(limit_text), before_id=int(before_text) if before_text else None)
        return json_response({"entries": entries})

    async def export(self, req: Req) -> Response:
        kind = req.path_params["kind"]
        if kind not in crm_export.EXPORT_KINDS:
            raise HTTPError(404, T("cannot export {kind}; one of {export_kinds}", kind=repr(kind),
                                   export_kinds=', '.join(crm_export.EXPORT_KINDS)))
        limit = await self.scope(req)

        def build(sessions: Any) -> str:
            return "".join(crm_export.export_csv(sessions, kind, store_id=limit))

        text = await self.call(build)
        p = req.principal
        assert p is not None
        await self.ctx.run_blocking(self.ctx.users.audit, "crm.exported", p.user_id, p.username, req.client_ip,
                                    {"kind": kind, "rows": max(text.count("\n") - 1, 0), "store_id": limit})
        stamp = dt.date.today().isoformat()
        return Response(200, ("\ufeff" + text).encode("utf-8"), "text/csv; charset=utf-8",
                        {"Content-Disposition": f'attachment; filename="ccserver-{kind}-{stamp}.csv"'})

    async def import_csv(self, req: Req) -> Response:
        """The CSV file as the request body (at most 1 MiB: larger files through ``ccserver import``);
        ``?dry_run=1`` checks only. The answer is the row-by-row report."""
        from ccserver.admin import crm_import as ci

        kind = req.path_params["kind"]
        # Req.query holds GET queries only; this POST's flag is read from the request's own URI.
        query = parse_qs(urlsplit(req.raw.uri.decode("utf-8", "replace")).query)
        dry_run = (query.get("dry_run") or [""])[0] in ("1", "true", "yes")
        region = self.ctx.config.phone.default_region

        def run(sessions: Any) -> dict[str, Any]:
            engine = sessions.kw["bind"]
            try:
                table = ci.read_table(kind, req.body)
            except ci.MissingColumns as exc:  # the CLI's message names its options; the page has the "What" field
                raise AdminError(T('required column(s) missing: {missing} (columns found: {found}); choose the '
                                   'matching kind under "What", or rename the columns to the field names',
                                   missing=", ".join(exc.missing), found=", ".join(exc.found))) from None
            except ci.ImportError_ as exc:
                raise AdminError(message_of(exc)) from None
            plan = ci.plan(engine, kind, table, region=region)
            counts = None if dry_run else ci.write(engine, plan)
            return {"kind": kind, "encoding": table.encoding, "rows": len(table.rows), "ignored": table.ignored,
                    "dry_run": dry_run, "new": plan.count("new"), "merged": plan.count("merged"),
                    "unchanged": plan.count("unchanged"), "errors": len(plan.errors), "imported": counts,
                    "report": [{"line": r.line, "status": r.status,
                                "message": translated(r.message, req.reader_gettext)}
                               for r in plan.results if r.status != "new"][:1000]}

        result = await self.call(run)
        p = req.principal
        assert p is not None
        if not dry_run:
            await self.ctx.run_blocking(self.ctx.users.audit, "crm.imported", p.user_id, p.username, req.client_ip,
                                        {"kind": kind, "rows": result["rows"], "errors": result["errors"],
                                         **(result["imported"] or {})})
            if any((result["imported"] or {}).values()):
                await self.ctx.run_blocking(self._rescore)
        return json_response({"result": result})

    def _rescore(self) -> None:
        """Scores and tiers after an import, then the customers cached for calls are dropped: swept from Redis
        here (as ``ccserver import`` does); without Redis the node notices the new value_cutoffs row itself.
        Blocking (a worker thread)."""
        import asyncio

        from ccserver.customers.scores import recompute_all
        from routing.value import TierShares, ValueWeights

        config = self.ctx.config
        recompute_all(self._sessions(), as_of=dt.date.today(), weights=ValueWeights(**config.get("scores", "weights")),
                      shares=TierShares(**config.get("scores", "tier_shares")), tz=config.server.time_zone)
        if not config.redis.url:
            return
        import redis.asyncio as aioredis

        from ccserver.cli import CACHE_SETTLE_SECONDS
        from ccserver.customers.cache import RedisSummaryCache
        from ccserver.customers.changes import Invalidator

        async def sweep() -> None:
            client = aioredis.Redis.from_url(config.redis.url, socket_timeout=5.0, socket_connect_timeout=5.0)
            try:
                await Invalidator(RedisSummaryCache(client), settle=CACHE_SETTLE_SECONDS).everything()
            finally:
                await client.aclose()

        asyncio.run(sweep())  # this worker thread's own loop

    async def erase_customer(self, req: Req) -> Response:
        result = await self.call(crm_export.erase_customer, self.actor(req), self._id(req))
        return json_response({"result": result})
