"""Customer lookup and tier lists over the API (bearer token or session cookie).

- ``GET /api/customers/lookup?phone=…`` — who is this number? Roles: ``agent``, ``supervisor``, ``department``
  (store consultants / advisors take calls too) and ``admin``. Asks the identification service (``find``: the
  number cache, then SQL, within its deadline; 503 when it gave up), then reads the profile. Never creates a
  prospect and counts no call.
- ``GET /api/customers?tier=gold&limit=50`` — customers by score, highest first. Roles: ``supervisor``,
  ``campaign_manager`` (builds call lists by tier) and ``admin``; agents look customers up one number at a
  time and do not get bulk lists.

Names and caller text are data: they only ever leave as JSON strings; the phone is normalised by
``routing.numbers`` before it reaches SQL, and SQL is built from bound parameters only.
"""

from __future__ import annotations

from typing import Any, Final

from ccserver.customers.directory import CustomerDirectory, CustomerProfile
from ccserver.db.models import TIERS
from ccserver.texts import T
from ccserver.web.context import WebContext
from ccserver.web.http import HTTPError, Req, Response, Router, json_response
from routing.numbers import STATUS_OK, STATUS_WITHHELD

LOOKUP_ROLES: Final = ("agent", "supervisor", "department")
LIST_ROLES: Final = ("supervisor", "campaign_manager")
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 500


def profile_json(p: CustomerProfile, *, detail: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": p.id,
        "name": p.name,
        "numbers": list(p.numbers),
        "tier": p.tier,
        "score": p.score,
        "vehicle_count": p.vehicle_count,
    }
    if detail:
        out["vip"] = p.vip
        out["score_components"] = p.score_components
        out["reasons"] = p.reasons()
    return out


class CustomerRoutes:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def register(self, router: Router) -> None:
        router.add("GET", "/api/customers/lookup", self.lookup, access="api", roles=LOOKUP_ROLES)
        router.add("GET", "/api/customers", self.list_customers, access="api", roles=LIST_ROLES)

    def _directory(self) -> CustomerDirectory:
        directory = self.ctx.customers
        if directory is None:
            raise HTTPError(503, T("customer directory not configured"))
        return directory

    async def lookup(self, req: Req) -> Response:
        raw = req.arg("phone")
        if raw is None or not raw.strip():
            raise HTTPError(400, T("query parameter 'phone' is required"))
        directory = self._directory()
        lookups = self.ctx.identification
        if lookups is None:
            raise HTTPError(503, T("customer directory not configured"))
        # Who the number is: the identification service (it normalises; then the cache, then SQL, within its
        # deadline; no call counted). A number it cannot use is looked up nowhere.
        found = await lookups.find(raw, context="api-lookup")
        number = found.caller
        result: dict[str, Any] = {"query": number.raw, "e164": number.e164 or None, "status": number.status}
        if number.status == STATUS_WITHHELD:
            return json_response({**result, "customer": None, "ambiguous": False, "others": []})
        e164 = number.e164
        if number.status != STATUS_OK or not e164:
            raise HTTPError(400, T("not a usable phone number: {reason}", reason=number.reason), query=number.raw,
                            number_status=number.status)  # fmt: skip
        if found.fallback is not None:
            raise HTTPError(503, T("the customer lookup did not answer in time; try again"))
        customer = found.customer
        profile: CustomerProfile | None = None
        if customer is not None and str(customer.id).isdigit():
            cid = int(customer.id)
            profile = (await self.ctx.run_blocking(directory.profiles, [cid])).get(cid)
        return json_response({
            **result,
            "customer": profile_json(profile, detail=True) if profile is not None else None,
            "ambiguous": bool(customer and customer.ambiguous),
            "others": list(found.others),
        })  # fmt: skip

    async def list_customers(self, req: Req) -> Response:
        tier = req.arg("tier")
        if tier is not None and tier not in TIERS:
            raise HTTPError(400, T("tier must be one of {tiers}", tiers=', '.join(TIERS)))
        raw_limit = req.arg("limit")
        limit = DEFAULT_LIMIT
        if raw_limit is not None:
            if not raw_limit.isascii() or not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
                raise HTTPError(400, T("limit must be an integer from 1 to {max_limit}", max_limit=MAX_LIMIT))
            limit = int(raw_limit)
        directory = self._directory()
        found = await self.ctx.run_blocking(directory.top_customers, tier, limit)
        return json_response({"customers": [profile_json(p, detail=False) for p in found]})
