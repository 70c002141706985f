"""Deterministic demo rows: a dealer group, its staff and a large customer base.

Pure: no database, no clock, no global random state. Everything derives from ``random.Random(seed)`` and
``as_of``, so the same (seed, as_of) always gives the same rows (password hashes aside, they are salted by
the caller). Reference tables come out as lists of dicts; the customer base streams out in batches of
tuples (column order in COLUMNS) so a loader can COPY millions of rows without holding them.

Value scores, reasons and tiers come from the routing value model (routing.value) applied to the generated
orders, vehicles and visits — the facts exactly as ``ccserver.customers.scores`` reads them from SQL — so a later
re-score gives the same answer. Tiers are percentiles of the whole base, but rows stream out: each row gets a
provisional tier against cut-offs from a pilot run, and ``scored`` keeps every customer's (id, score,
provisional tier) so the loader can settle the tiers against the base's own cut-offs at the end (few change).

The four callers of the recorded transcripts (ids 1-4) are written last, with histories that put them where
the tests and the demo expect them *by their data*: Zhang Wei the best customer (diamond), Liu Yang a regular
(silver: his spend is set against the scores of the base just generated), Chen Jing a small one (bronze), Wang
Lei a prospect.
"""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from ccserver.customers.valuation import PURCHASE_ORDER_KINDS, SPEND_CATEGORY, valuate
from ccserver.demo import calendar_cn
from ccserver.demo.reference import (
    COMPANY_TRADES,
    COMPANY_WORDS,
    CONTACT_TITLES,
    CUSTOMER_SOURCES,
    GIVEN_NAMES,
    MOBILE_PREFIXES,
    MODELS,
    SERVICE_DESCRIPTIONS,
    STORE_WEIGHTS,
    STORES,
    SURNAMES,
    WMI,
    StoreSpec,
)
from routing.value import TIERS, CustomerFacts, TierCutoffs, TierShares, ValueWeights, compute_cutoffs

# Tuple layouts of the streamed tables, in a foreign-key-safe insertion order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "id", "kind", "name", "lifecycle", "source", "language", "membership_level", "membership_points",
        "manual_vip", "sales_consultant_id", "service_advisor_id", "consent", "do_not_call", "value_score", "tier",
        "score_components", "score_updated_at", "home_store_id", "created_at", "updated_at", "last_activity_at",
    ),
    "phone_numbers": ("id", "e164", "kind", "shared"),
    "customer_phones": ("customer_id", "phone_id", "label", "is_primary"),
    "company_contacts": ("id", "company_id", "name", "title", "phone_id"),
    "vehicles": (
        "id", "customer_id", "brand", "model", "plate", "vin", "purchase_date", "mileage_km",
        "next_maintenance_due", "insurance_expiry",
    ),
    "orders": ("id", "customer_id", "vehicle_id", "store_id", "kind", "amount", "ordered_on"),
    "service_visits": (
        "id", "customer_id", "vehicle_id", "store_id", "advisor_id", "opened_at", "promised_at", "status",
        "description",
    ),
    "tickets": (
        "id", "kind", "status", "store_id", "department", "customer_id", "call_id", "subject", "body", "sla_due_at",
        "created_at", "updated_at", "resolved_at", "created_by",
    ),
}  # fmt: skip


# Callers in the recorded Asterisk transcripts (tests/data/asterisk): these must exist ...
TRANSCRIPT_CUSTOMERS = {
    "+8613800138000": "张伟",  # Zhang Wei, top-value VIP
    "+8613912345678": "刘洋",  # Liu Yang, regular service customer
    "+8613700000001": "陈静",  # Chen Jing, has an open complaint
    "+8613600000002": "王磊",  # Wang Lei, prospect
}
# ... and these must not: the unknown Shanghai landline, plus numbers the recordings dial or load-test with.
UNKNOWN_NUMBERS = frozenset(
    {"+862158881234", "+8613500000003", "+8613811112222"} | {f"+86188000000{i:02d}" for i in range(40)}
)

GROUP_DIDS = (  # number as dialled, line, default queue
    ("4008001000", "sales", "sales"),
    ("4008002000", "service", "service"),
    ("4008003000", "complaints", "complaints"),
    ("4008004000", "insurance", "insurance"),
    ("4008009000", "hotline", "hotline"),
)
GROUP_QUEUES = (  # name, line, strategy, description
    ("sales", "sales", "leastrecent", "新车销售 New-car sales"),
    ("service", "service", "linear", "售后服务 After-sales service"),
    ("complaints", "complaints", "leastrecent", "投诉 Complaints"),
    ("insurance", "insurance", "leastrecent", "保险续保 Insurance renewals"),
    ("vip", None, "leastrecent", "VIP 客户专席 VIP desk"),
    ("hotline", "hotline", "rrmemory", "400 热线 Group hotline"),
    ("english", None, "leastrecent", "English-speaking customers"),
    ("callback", None, "leastrecent", "回访 Outbound return visits"),
)
AGENT_SKILLS = ("sales", "service", "complaints", "insurance", "en")
LAB_AGENTS = {8001: ("王芳", "Wang Fang"), 8002: ("李伟", "Li Wei"), 8003: ("赵敏", "Zhao Min")}

_SPEND_CATEGORY = SPEND_CATEGORY
PILOT_CUSTOMERS = 2000  # sample that fixes the tier cut-offs before the streamed run

_SHANGHAI_OFFSET = timedelta(hours=8)  # Asia/Shanghai has had no DST since 1991
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORD = date(1970, 1, 1).toordinal()
_PLATE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
_VIN_VALUES = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
               **dict(zip("JKLMN", range(1, 6), strict=True)), "P": 7, "R": 9,
               **dict(zip("STUVWXYZ", range(2, 10), strict=True))}  # fmt: skip
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_YEARS = "ABCDEFGHJKLMNPRSTVWXY123456789"  # model-year codes from 2010, repeating every 30 years


def local_datetime(ordinal: int, minutes: int) -> datetime:
    """UTC datetime of ``minutes`` after local midnight (Asia/Shanghai) of the day ``ordinal``."""
    return _EPOCH + timedelta(days=ordinal - _EPOCH_ORD, minutes=minutes) - _SHANGHAI_OFFSET


def vin_check_digit(vin16: str) -> str:
    """ISO 3779 / North-American check digit for a VIN whose 9th position is a placeholder."""
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin16, _VIN_WEIGHTS, strict=True))
    r = total % 11
    return "X" if r == 10 else str(r)


@dataclass
class _Spend:
    """What the value model needs (routing.value.CustomerFacts), gathered while rows are generated."""

    by_kind: dict[str, int] = field(default_factory=dict)  # CNY cents per order kind, inside the score window
    activities: int = 0  # orders + visits inside the score window
    first_purchase: int = 0  # ordinal, 0 = none
    vehicles: int = 0
    total: int = 0  # cents over the whole history (membership level)
    last: int = 0  # ordinal of the latest activity


@dataclass
class Scored:
    """Every customer generated so far: id, score and provisional tier code (``TIERS`` index), ~17 bytes each."""

    ids: array[int] = field(default_factory=lambda: array("q"))
    totals: array[float] = field(default_factory=lambda: array("d"))
    codes: bytearray = field(default_factory=bytearray)


_TIER_CODE = {t: i for i, t in enumerate(TIERS)}


@dataclass
class Batch:
    """Rows of the streamed tables for a run of whole households (``customers`` = how many)."""

    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {t: [] for t in COLUMNS})
    customers: int = 0


class DemoGenerator:
    def __init__(
        self,
        customers: int,
        seed: int,
        as_of: date,
        agent_interface: str = "PJSIP/{ext}",
        cutoffs: TierCutoffs | None = None,
        weights: ValueWeights | None = None,
        shares: TierShares | None = None,
    ):
        if customers < len(TRANSCRIPT_CUSTOMERS):
            raise ValueError(f"need at least {len(TRANSCRIPT_CUSTOMERS)} customers (the transcript callers)")
        if "{ext}" not in agent_interface:
            raise ValueError("agent_interface must contain {ext}, e.g. 'PJSIP/{ext}'")
        self.total = customers
        self.seed = seed
        self.as_of = as_of
        self.agent_interface = agent_interface
        self.rng = random.Random(seed)
        self.today = as_of.toordinal()
        self.window_start = self.today - 3 * 365  # three years of order history
        self.weights = weights or ValueWeights()
        self.shares = shares or TierShares()
        self.score_window_start = self.today - self.weights.window_days
        self.scored = Scored()
        self.now = local_datetime(self.today, 10 * 60)  # the data's "now": as_of, 10:00 local time
        self.n_agents = max(30, min(500, customers // 2000))
        self.n_staff = max(3, min(60, customers // 5000))  # sales consultants and service advisors per store
        self._ids: dict[str, int] = {}
        self._reserved = set(TRANSCRIPT_CUSTOMERS) | set(UNKNOWN_NUMBERS)
        rng = self.rng
        # Bijective number plans: counter -> number, so numbers are unique without remembering them.
        self._mobile_mul = _coprime_multiplier(rng, len(MOBILE_PREFIXES) * 10**8)
        self._mobile_add = rng.randrange(len(MOBILE_PREFIXES) * 10**8)
        self._landline_mul = _coprime_multiplier(rng, 3 * 10**7)  # coprime to every landline span (1-3 x 10^7)
        self._landline_add = [rng.randrange(10**7) for _ in STORES]
        self._mobile_count = 0
        self._landline_count = [0] * len(STORES)
        self._vin_count = {brand: 0 for brand in WMI}
        self._vds = {(b, m): "".join(rng.choices("ABCDEFGHJKLMNPRSTUVWXYZ0123456789", k=5))
                     for b, models in MODELS.items() for m, _ in models}  # fmt: skip
        self.users: list[dict[str, Any]] = []
        self.consultants: list[list[int]] = [[] for _ in STORES]
        self.advisors: list[list[int]] = [[] for _ in STORES]
        # Tiers are percentiles of the whole base, but rows stream out: take the cut-offs from a pilot run
        # (same seed and day, so still deterministic) before the first row.
        self.cutoffs = cutoffs if cutoffs is not None else self._pilot_cutoffs()

    def _pilot_cutoffs(self) -> TierCutoffs:
        pilot = DemoGenerator(PILOT_CUSTOMERS, self.seed, self.as_of, cutoffs=TierCutoffs(0.0, 0.0, 0.0),
                              weights=self.weights, shares=self.shares)
        pilot.reference_tables("", "")
        for _ in pilot.batches():
            pass
        scored = pilot.scored
        return compute_cutoffs([scored.totals[i] for i in range(len(scored.ids))
                                if scored.codes[i] != _TIER_CODE["prospect"]], self.shares)

    # --- ids and numbers --------------------------------------------------------------------------------

    def _next_id(self, table: str) -> int:
        self._ids[table] = value = self._ids.get(table, 0) + 1
        return value

    def last_ids(self) -> dict[str, int]:
        """Highest id handed out per table (for fixing sequences after an explicit-id load)."""
        return dict(self._ids)

    def _mobile(self) -> str:
        span = len(MOBILE_PREFIXES) * 10**8
        while True:
            # x = (a*k + b) mod span is one-to-one (a coprime to span), so numbers never repeat.
            x = (self._mobile_mul * self._mobile_count + self._mobile_add) % span
            self._mobile_count += 1
            e164 = f"+86{MOBILE_PREFIXES[x // 10**8]}{x % 10**8:08d}"
            if e164 not in self._reserved:
                return e164

    def _landline(self, store: int) -> str:
        spec = STORES[store]
        firsts = spec.landline_first_digits
        span = len(firsts) * 10**7
        while True:
            x = (self._landline_mul * self._landline_count[store] + self._landline_add[store]) % span
            self._landline_count[store] += 1
            e164 = f"+86{spec.area_code}{firsts[x // 10**7]}{x % 10**7:07d}"
            if e164 not in self._reserved:
                return e164

    def _name(self) -> tuple[str, str]:
        rng = self.rng
        sur, sur_py = SURNAMES[int(rng.random() * len(SURNAMES))]
        given, given_py = GIVEN_NAMES[int(rng.random() * len(GIVEN_NAMES))]
        return sur + given, f"{sur_py} {given_py}"

    # --- reference tables -------------------------------------------------------------------------------

    def reference_tables(self, admin_hash: str, demo_hash: str) -> list[tuple[str, list[dict[str, Any]]]]:
        """Group, stores, calendar, queues, DIDs and users, in insertion order (as dicts)."""
        created = local_datetime(self.today - 3 * 365, 9 * 60)
        group = {"id": 1, "name": "华瑞汽车集团 Huarui Auto Group"}
        tables: list[tuple[str, list[dict[str, Any]]]] = [("dealer_groups", [group])]
        tables.append(("stores", [
            {"id": i + 1, "group_id": 1, "code": s.code, "name": s.name, "brand": s.brand, "city": s.city,
             "time_zone": "Asia/Shanghai", "address": s.address}
            for i, s in enumerate(STORES)
        ]))  # fmt: skip
        tables.append(("business_hours", self._business_hours()))
        years = (self.as_of.year, self.as_of.year + 1)  # next year too: January is always close
        tables.append(("holidays", [
            {"id": i + 1, "day": d, "name": n, "store_id": None}
            for i, (d, n) in enumerate(x for y in years for x in calendar_cn.holidays(y))
        ]))  # fmt: skip
        tables.append(("makeup_workdays", [
            {"id": i + 1, "day": d, "name": n, "store_id": None}
            for i, (d, n) in enumerate(x for y in years for x in calendar_cn.makeup_workdays(y))
        ]))  # fmt: skip
        queues, queue_ids = self._queues()
        tables.append(("queues", queues))
        tables.append(("dids", self._dids(queue_ids)))
        tables.append(("users", self._users(admin_hash, demo_hash, created)))
        return tables

    def _business_hours(self) -> list[dict[str, Any]]:
        rows: list[tuple[int, str | None, int, time, time]] = []
        for store in range(1, len(STORES) + 1):
            for wd in range(7):
                rows.append((store, None, wd, time(8, 30), time(18, 0)))
                rows.append((store, "sales", wd, time(9, 0), time(20, 0) if wd >= 5 else time(18, 30)))
                if wd < 6:  # workshops close on Sundays
                    rows.append((store, "service", wd, time(8, 0), time(17, 30)))
                rows.append((store, "hotline", wd, time(0, 0), time(0, 0)))  # opens == closes: 24 hours
        keys = ("store_id", "line", "weekday", "opens_at", "closes_at")
        return [{"id": i + 1, **dict(zip(keys, r, strict=True))} for i, r in enumerate(rows)]

    def _queues(self) -> tuple[list[dict[str, Any]], dict[str, int]]:
        rows: list[dict[str, Any]] = []
        for name, line, strategy, description in GROUP_QUEUES:
            rows.append({"name": name, "store_id": None, "line": line, "strategy": strategy,
                         "description": description})  # fmt: skip
        for i, s in enumerate(STORES):
            for line in ("sales", "service"):
                rows.append({"name": f"{s.code}-{line}", "store_id": i + 1, "line": line, "strategy": "leastrecent",
                             "description": f"{s.name} {line}"})  # fmt: skip
        for i, row in enumerate(rows):
            row["id"] = i + 1
        return rows, {r["name"]: r["id"] for r in rows}

    def _dids(self, queue_ids: dict[str, int]) -> list[dict[str, Any]]:
        rows = [
            {"number": number, "store_id": None, "line": line, "default_queue_id": queue_ids[queue],
             "description": f"集团400 {line}"}
            for number, line, queue in GROUP_DIDS
        ]  # fmt: skip
        for i, s in enumerate(STORES):
            for n, line in ((1, "sales"), (2, "service")):
                local = f"{s.did_block}{n}000"
                rows.append({"number": f"0{s.area_code}{local}", "store_id": i + 1, "line": line,
                             "default_queue_id": queue_ids[f"{s.code}-{line}"], "description": f"{s.name} {line}"})
                self._reserved.add(f"+86{s.area_code}{local}")  # no customer shares a store's own number
        for i, row in enumerate(rows):
            row["id"] = i + 1
        return rows

    def _users(self, admin_hash: str, demo_hash: str, created: datetime) -> list[dict[str, Any]]:
        rng = self.rng
        users: list[dict[str, Any]] = []

        def add(username: str, display: str, role: str, **extra: Any) -> int:
            row: dict[str, Any] = {"id": len(users) + 1, "username": username, "display_name": display, "role": role,
                   "password_hash": demo_hash, "active": True, "extension": None, "interface": None,
                   "skills": [], "languages": ["zh"], "store_id": None, "department": None,
                   "created_at": created}  # fmt: skip
            row.update(extra)
            users.append(row)
            return row["id"]

        add("admin", "Administrator", "admin", password_hash=admin_hash, languages=["zh", "en"])
        for i in range(max(2, self.n_agents // 15)):
            zh, py = self._name()
            add(f"supervisor{i + 1}", f"{py} {zh}", "supervisor", department="call_center", languages=["zh", "en"])
        add("service-dept", "售后服务部 Service department", "department", department="service", store_id=1)
        add("campaigns", "市场活动 Campaign manager", "campaign_manager", department="marketing")
        for n in range(self.n_agents):
            ext = 8001 + n
            zh, py = LAB_AGENTS.get(ext) or self._name()
            skills = ["sales"] if n % 2 == 0 else ["service"]
            for skill, p in (("complaints", 0.25), ("insurance", 0.2), ("en", 0.1)):
                if rng.random() < p:
                    skills.append(skill)
            if ext == 8001:
                skills = ["sales", "service", "insurance", "en"]
            add(f"agent{ext}", f"{py} {zh}", "agent", extension=str(ext), skills=skills,
                interface=self.agent_interface.format(ext=ext), department="call_center",
                languages=["zh", "en"] if "en" in skills else ["zh"])  # fmt: skip
        # Store staff the calls should reach first: consultants (sales) and advisors (service).
        for role_list, dept, base in ((self.consultants, "sales", 6001), (self.advisors, "service", 7001)):
            for store in range(len(STORES)):
                for k in range(self.n_staff):
                    ext = base + store * self.n_staff + k
                    zh, py = self._name()
                    uid = add(f"{STORES[store].code}-{dept}{k + 1:02d}", f"{py} {zh}", "department",
                              extension=str(ext), interface=self.agent_interface.format(ext=ext), skills=[dept],
                              store_id=store + 1, department=dept)  # fmt: skip
                    role_list[store].append(uid)
        self._ids["users"] = len(users)
        self.users = users
        return users

    # --- the customer base ------------------------------------------------------------------------------

    def batches(self, batch_size: int = 5000) -> Iterator[Batch]:
        """The customer base in batches of about ``batch_size`` customers (whole households)."""
        if not self.users:
            raise RuntimeError("call reference_tables() first: customers refer to its users")
        batch = Batch()
        self._ids["customers"] = made = len(TRANSCRIPT_CUSTOMERS)  # ids 1-4: the transcript callers, written last
        rng = self.rng
        while made < self.total:
            left = self.total - made
            if rng.random() < 0.05:
                size = 2 if rng.random() < 0.15 and left >= 2 else 1
                self._companies(batch, size)
            else:
                size = 2 if rng.random() < 0.07 and left >= 2 else 1
                self._household(batch, size)
            made += size
            batch.customers += size
            if batch.customers >= batch_size:
                yield batch
                batch = Batch()
        self._transcript_customers(batch)
        yield batch

    def _store(self) -> int:
        r = self.rng.random()
        acc = 0.0
        for i, w in enumerate(STORE_WEIGHTS):
            acc += w
            if r < acc:
                return i
        return len(STORES) - 1

    def _phone(self, batch: Batch, e164: str, kind: str, shared: bool = False) -> int:
        pid = self._next_id("phone_numbers")
        batch.rows["phone_numbers"].append((pid, e164, kind, shared))
        return pid

    def _household(self, batch: Batch, size: int) -> None:
        """One person, or a couple sharing a home landline."""
        rng = self.rng
        store = self._store()
        shared_home = self._phone(batch, self._landline(store), "landline", shared=True) if size == 2 else None
        for member in range(size):
            cid = self._next_id("customers")
            links = batch.rows["customer_phones"]
            links.append((cid, self._phone(batch, self._mobile(), "mobile"), "mobile", True))
            if shared_home is not None:
                links.append((cid, shared_home, "home", False))
            r = rng.random()
            if r < 0.22:  # a second number, sometimes a third
                if r < 0.11 or shared_home is not None:
                    links.append((cid, self._phone(batch, self._mobile(), "mobile"), "mobile 2", False))
                else:
                    links.append((cid, self._phone(batch, self._landline(store), "landline"), "home", False))
                if r < 0.05:
                    links.append((cid, self._phone(batch, self._landline(store), "landline"), "office", False))
            lifecycle = rng.choices(("customer", "dormant", "prospect", "target"), cum_weights=(55, 67, 89, 100))[0]
            if member == 1 and lifecycle in ("prospect", "target"):
                lifecycle = "customer"  # a spouse on file is almost always a household that bought
            name, _ = self._name()
            self._customer(batch, cid, "person", name, lifecycle, store, vehicles=self._vehicle_count())

    def _vehicle_count(self) -> int:
        r = self.rng.random()
        return 1 if r < 0.85 else 2 if r < 0.98 else 3

    def _companies(self, batch: Batch, size: int) -> None:
        """A company customer, or two sister companies sharing one switchboard."""
        rng = self.rng
        store = self._store()
        switchboard = self._phone(batch, self._landline(store), "landline", shared=size > 1)
        city = STORES[store].city
        word = COMPANY_WORDS[int(rng.random() * len(COMPANY_WORDS))]
        for _ in range(size):
            cid = self._next_id("customers")
            trade = COMPANY_TRADES[int(rng.random() * len(COMPANY_TRADES))]
            name = f"{_CITY_ZH[city]}{word}{trade}有限公司"
            batch.rows["customer_phones"].append((cid, switchboard, "switchboard", True))
            for _ in range(1 + int(rng.random() * 3)):
                pid = self._phone(batch, self._mobile(), "mobile")
                contact, _ = self._name()
                title = CONTACT_TITLES[int(rng.random() * len(CONTACT_TITLES))]
                batch.rows["company_contacts"].append((self._next_id("company_contacts"), cid, contact, title, pid))
                batch.rows["customer_phones"].append((cid, pid, "contact", False))
            lifecycle = rng.choices(("customer", "dormant", "prospect"), cum_weights=(85, 95, 100))[0]
            self._customer(batch, cid, "company", name, lifecycle, store, vehicles=2 + int(rng.random() * 5))

    def _customer(
        self,
        batch: Batch,
        cid: int,
        kind: str,
        name: str,
        lifecycle: str,
        store: int,
        *,
        vehicles: int,
        manual_vip: bool | None = None,
        language: str | None = None,
        plan: list[tuple[int, int, int]] | None = None,
        open_complaints: int = 0,
        active_end: int | None = None,
        history: Callable[[Batch, int, _Spend], None] | None = None,
    ) -> _Spend:
        """The customer row plus vehicles, orders and visits; ``plan`` pins (store, model, purchase day),
        ``active_end`` the last day the cars were serviced with us, ``history(batch, cid, spend)`` adds orders and
        visits of its own before the customer is scored."""
        rng = self.rng
        rand = rng.random
        today = self.today
        owner = lifecycle in ("customer", "dormant")
        if lifecycle == "target":
            created = today - 1 - int(rand() * 365)
        elif lifecycle == "prospect":
            created = today - 1 - int(rand() * 730)
        elif lifecycle == "dormant":
            created = today - 1000 - int(rand() * 1900)
        else:
            created = today - 30 - int(rand() * 2900)
        consultants = self.consultants[store]
        consultant = consultants[int(rand() * len(consultants))] if rand() > 0.04 else None  # 4 %: left the firm
        advisor = None
        spend = _Spend()
        if owner:
            advisors = self.advisors[store]
            advisor = advisors[int(rand() * len(advisors))] if rand() > 0.04 else None
            # Dormant: nothing in the last two years or more.
            if active_end is None:
                active_end = today - 730 - int(rand() * 200) if lifecycle == "dormant" else today
            for k in range(len(plan) if plan else vehicles):
                if plan:
                    v_store, model_idx, purchase = plan[k]
                else:
                    v_store = store if k == 0 or rand() < 0.8 else self._store()
                    model_idx = -1
                    purchase = created + int(rand() * max(1, active_end - 20 - created))
                self._vehicle(batch, cid, v_store, model_idx, purchase, active_end, advisor, spend)
            if history is not None:
                history(batch, cid, spend)
        elif rand() < 0.3:  # a prospect's test-drive deposit or accessories
            day = created + int(rand() * (today - created))
            self._order(batch, cid, None, store + 1, "accessories", 50_000 + int(rand() * 1_950_000), day, spend)
        if owner and rand() < 0.02:
            day = max(created, self.window_start) + int(rand() * 300)
            if day < today:
                self._order(batch, cid, None, store + 1, "used_car", 6_000_000 + int(rand() * 19_000_000), day, spend)
        level = min(5, spend.total // 25_000_000 + (1 if rand() < 0.3 else 0)) if owner else 0
        points = level * 2000 + int(rand() * 2000) if level else 0
        score, tier, components = self._score(self._facts(spend, level, owner and spend.vehicles > 0,
                                                          open_complaints))  # fmt: skip
        vip = manual_vip if manual_vip is not None else (owner and rand() < 0.003)
        lang = language or ("en" if rand() < 0.03 else "zh")
        consent = rand() < (0.88 if owner else 0.6)
        dnc = rand() < 0.03
        source = CUSTOMER_SOURCES[int(rand() * len(CUSTOMER_SOURCES))]
        created_at = local_datetime(created, 540 + int(rand() * 540))
        last = local_datetime(spend.last, 540 + int(rand() * 540)) if spend.last > created else created_at
        batch.rows["customers"].append((
            cid, kind, name, lifecycle, source, lang, level, points, vip, consultant, advisor, consent, dnc, score,
            tier, components, self.now, store + 1, created_at, last, last,
        ))  # fmt: skip
        scored = self.scored
        scored.ids.append(cid)
        scored.totals.append(score)
        scored.codes.append(_TIER_CODE[tier])
        return spend

    def _vehicle(
        self,
        batch: Batch,
        cid: int,
        store: int,
        model_idx: int,
        purchase: int,
        active_end: int,
        advisor: int | None,
        spend: _Spend,
    ) -> int:
        rng = self.rng
        rand = rng.random
        today = self.today
        window = self.window_start
        spec = STORES[store]
        models = MODELS[spec.brand]
        model, price = models[model_idx if model_idx >= 0 else int(rand() * len(models))]
        vid = self._next_id("vehicles")
        sid = store + 1
        spend.vehicles += 1
        if not spend.first_purchase or purchase < spend.first_purchase:
            spend.first_purchase = purchase
        if purchase >= window:
            self._order(batch, cid, vid, sid, "vehicle_sale", int(price * (85 + rand() * 15) / 100) // 100 * 100 * 100,
                        purchase, spend)  # fmt: skip
            if rand() < 0.25:
                self._order(batch, cid, vid, sid, "accessories", 80_000 + int(rand() * 2_420_000),
                            min(today, purchase + int(rand() * 60)), spend)  # fmt: skip
        # Insurance renews on each purchase anniversary; the dealer sells it about 3 times in 4.
        expiry = purchase + 365
        while expiry <= active_end:
            if expiry >= window and rand() < 0.75:
                premium = min(1_500_000, 300_000 + int(price * (1.2 + rand()) / 100 * 100))
                self._order(batch, cid, vid, sid, "insurance", premium, expiry, spend)
            expiry += 365
        # Services every 5-14 months until active_end; recent ones are also visits.
        last_service = 0
        day = purchase + 150 + int(rand() * 150)
        visits = batch.rows["service_visits"]
        while day <= active_end:
            if day >= window:
                cents = (30_000 + int(220_000 * rand() ** 2)) if rand() < 0.88 else 200_000 + int(rand() * 600_000)
                self._order(batch, cid, vid, sid, "service", cents, day, spend)
                if day >= today - 180:
                    spend.activities += 1
                    opened = local_datetime(day, 480 + int(rand() * 420))
                    status = "collected" if rand() < 0.97 else "cancelled"
                    visits.append((self._next_id("service_visits"), cid, vid, sid, advisor, opened,
                                   opened + timedelta(hours=4 + int(rand() * 5)), status,
                                   SERVICE_DESCRIPTIONS[int(rand() * len(SERVICE_DESCRIPTIONS))]))  # fmt: skip
            last_service = day
            day += 150 + int(rand() * 270)
        if active_end == today and rand() < 0.025:
            self._open_visit(batch, cid, vid, sid, advisor, rand() < 0.3, spend)
        due = (last_service or purchase) + 180 + int(rand() * 185)
        years = (min(today, active_end) - purchase) / 365
        mileage = int(years * (8000 + rand() * 14000)) + int(rand() * 800)
        plate = spec.plate_prefix + "".join(rng.choices(_PLATE_CHARS, k=5))
        batch.rows["vehicles"].append((
            vid, cid, spec.brand, model, plate, self._vin(spec.brand, model, purchase), date.fromordinal(purchase),
            mileage, date.fromordinal(due), date.fromordinal(expiry),
        ))  # fmt: skip
        return vid

    def _open_visit(self, batch: Batch, cid: int, vid: int, sid: int, advisor: int | None, booked: bool,
                    spend: _Spend, status: str | None = None) -> None:  # fmt: skip
        rand = self.rng.random
        if booked:  # a booking for the coming days: no activity yet
            opened = local_datetime(self.today + 1 + int(rand() * 7), 540 + 30 * int(rand() * 14))
            status = "booked"
        else:  # the car is in the workshop now: a visit opened in the last days, activity as SQL counts it
            day = self.today - int(rand() * 3)
            opened = local_datetime(day, 480 + int(rand() * 120))
            status = status or ("in_progress", "waiting_parts", "ready")[int(rand() * 3)]
            spend.activities += 1
            spend.last = max(spend.last, day)
        batch.rows["service_visits"].append((
            self._next_id("service_visits"), cid, vid, sid, advisor, opened, opened + timedelta(hours=8), status,
            SERVICE_DESCRIPTIONS[int(rand() * len(SERVICE_DESCRIPTIONS))],
        ))  # fmt: skip

    def _order(self, batch: Batch, cid: int, vid: int | None, sid: int, kind: str, cents: int, day: int,
               spend: _Spend) -> None:  # fmt: skip
        batch.rows["orders"].append(
            (self._next_id("orders"), cid, vid, sid, kind, Decimal(cents).scaleb(-2), date.fromordinal(day))
        )
        spend.total += cents
        if kind in PURCHASE_ORDER_KINDS and (not spend.first_purchase or day < spend.first_purchase):
            spend.first_purchase = day  # tenure counts from the first time they paid us, as SQL reads it
        if day >= self.score_window_start:
            spend.by_kind[kind] = spend.by_kind.get(kind, 0) + cents
            spend.activities += 1
        if day > spend.last:
            spend.last = day

    def _vin(self, brand: str, model: str, purchase: int) -> str:
        n = self._vin_count[brand]
        self._vin_count[brand] = n + 1
        serial = (n % 10**6 * 7919 + 4513) % 10**6  # scrambled, still one-to-one
        plant = "ABCDEFGHJKLMNPRSTUVWXYZ"[n // 10**6]
        year = _VIN_YEARS[(date.fromordinal(purchase).year - 2010) % 30]
        vin16 = f"{WMI[brand]}{self._vds[(brand, model)]}0{year}{plant}{serial:06d}"
        return vin16[:8] + vin_check_digit(vin16) + vin16[9:]

    def _facts(self, spend: _Spend, level: int, owner: bool, open_complaints: int = 0) -> CustomerFacts:
        money = {_SPEND_CATEGORY[k]: cents / 100 for k, cents in spend.by_kind.items()}
        return CustomerFacts(
            spend=money,
            last_activity=date.fromordinal(spend.last) if spend.last else None,
            activity_count=spend.activities,
            first_purchase=date.fromordinal(spend.first_purchase) if spend.first_purchase else None,
            vehicles=spend.vehicles,
            membership_level=level,
            open_complaints=open_complaints,
            has_purchases=owner,
        )

    def _score(self, facts: CustomerFacts) -> tuple[float, str, dict[str, Any]]:
        """The routing value model's score, tier and reasons (components in points, basis in words)."""
        v = valuate(facts, self.as_of, self.cutoffs, self.weights)
        return v.score, v.tier, v.components

    # --- the callers in the recorded transcripts -------------------------------------------------------

    def _transcript_customers(self, batch: Batch) -> None:
        """The four recorded callers, ids 1-4, after the rest of the base (see the module docstring)."""
        today = self.today
        zhang, liu, chen, wang = range(1, 5)
        numbers = dict(zip((zhang, liu, chen, wang), TRANSCRIPT_CUSTOMERS, strict=True))
        links = batch.rows["customer_phones"]
        for cid, number in numbers.items():
            links.append((cid, self._phone(batch, number, "mobile"), "mobile", True))
        links.append((zhang, self._phone(batch, self._landline(1), "landline"), "office", False))

        # Zhang Wei: two recent premium cars (Shanghai BMW X5, Beijing Volvo XC90) — his old car traded in for
        # the X5 — and service, insurance and accessories at the value model's reference amounts; a customer
        # since a used car six years ago. Manual VIP. The top score of any base: diamond.
        def zhang_history(b: Batch, cid: int, spend: _Spend) -> None:
            for kind, yuan, day in (("used_car", 80_000, today - 6 * 365), ("used_car", 150_000, today - 400),
                                    ("accessories", 10_000, today - 380), ("service", 7_000, today - 210),
                                    ("service", 7_000, today - 120), ("insurance", 15_000, today - 35),
                                    ("service", 7_000, today - 30)):
                self._order(b, cid, None, 2, kind, yuan * 100, day, spend)

        self._customer(batch, zhang, "person", TRANSCRIPT_CUSTOMERS[numbers[zhang]], "customer", 1, vehicles=2,
                       manual_vip=True, language="zh", plan=[(1, 4, today - 400), (0, 2, today - 900)],
                       history=zhang_history)  # fmt: skip

        # Chen Jing: a Chongqing Ford Mondeo bought six years ago, not serviced with us for two years until a
        # small service twelve days ago — and the noise after it is her open complaint. A small customer: bronze.
        def chen_history(b: Batch, cid: int, spend: _Spend) -> None:
            self._order(b, cid, self._ids["vehicles"], 4, "service", 480_00, today - 12, spend)

        self._customer(batch, chen, "person", TRANSCRIPT_CUSTOMERS[numbers[chen]], "customer", 3, vehicles=1,
                       manual_vip=False, plan=[(3, 1, today - 6 * 365)], active_end=today - 800, open_complaints=1,
                       history=chen_history)  # fmt: skip
        opened = local_datetime(today - 2, 600)
        batch.rows["tickets"].append((
            self._next_id("tickets"), "complaint", "new", 4, "service", chen, None,
            "维修后异响 Noise after repair", "客户反映保养后底盘异响，要求回电。", opened + timedelta(hours=48),
            opened, opened, None, None,
        ))  # fmt: skip

        # Wang Lei: a prospect.
        self._customer(batch, wang, "person", TRANSCRIPT_CUSTOMERS[numbers[wang]], "prospect", 0, vehicles=0,
                       manual_vip=False)  # fmt: skip

        # Liu Yang: a four-year-old Accord serviced at the Guangzhou store, car ready for pick-up now. How much
        # he spent in the last two years is set so that he ranks inside the silver band of this base.
        def make_liu(b: Batch, spent: float) -> None:
            def history(bb: Batch, cid: int, spend: _Spend) -> None:
                vid = self._ids["vehicles"]
                for k, day in enumerate((today - 650, today - 470, today - 290, today - 110)):
                    self._order(bb, cid, vid, 3, "service", int(30_000 + spent * 470_000) + k * 100, day, spend)
                for day in (today - 4 * 365 + 325, today - 3 * 365 + 325):  # renewals before the window
                    self._order(bb, cid, vid, 3, "insurance", 350_000, day, spend)
                for day in (today - 405, today - 40):
                    self._order(bb, cid, vid, 3, "insurance", int(300_000 + spent * 450_000), day, spend)
                self._order(bb, cid, vid, 3, "accessories", int(10_000 + spent * 990_000), today - 200, spend)
                self._open_visit(bb, cid, vid, 3, self.advisors[2][0], False, spend, status="ready")

            purchase = today - 4 * 365 - 40
            self._customer(b, liu, "person", TRANSCRIPT_CUSTOMERS[numbers[liu]], "customer", 2, vehicles=1,
                           manual_vip=False, plan=[(2, 0, purchase)], active_end=purchase, history=history)

        make_liu(batch, self._silver_spend(lambda spent: self._trial_score(lambda b: make_liu(b, spent))))
        batch.customers += len(numbers)

    def _trial_score(self, make: Callable[[Batch], None]) -> float:
        """The score ``make`` gives its customer, with nothing kept: rows, ids, dice and scores are put back."""
        state, ids, vins = self.rng.getstate(), dict(self._ids), dict(self._vin_count)
        kept = len(self.scored.ids)
        try:
            make(Batch())
            return self.scored.totals[-1]
        finally:
            self.rng.setstate(state)
            self._ids, self._vin_count = ids, vins
            for column in (self.scored.ids, self.scored.totals, self.scored.codes):
                del column[kept:]

    def _silver_spend(self, score_of: Callable[[float], float]) -> float:
        """A spend level in [0, 1] whose score (``score_of``, rising with it) ranks inside the silver band of the
        customers generated so far plus this one — strictly between two scores of the base, so ties cannot move
        it — or the nearest level when the band is out of reach (or empty: a tiny base)."""
        scored = self.scored
        purchasers = sorted((scored.totals[i] for i in range(len(scored.ids))
                             if scored.codes[i] != _TIER_CODE["prospect"]), reverse=True)  # fmt: skip
        n = len(purchasers) + 1
        shares = self.shares
        gold_rank = int(math.floor(n * (shares.diamond + shares.gold) + 0.5))
        silver_rank = int(math.floor(n * (shares.diamond + shares.gold + shares.silver) + 0.5))
        low, high = score_of(0.0), score_of(1.0)
        openings = []  # (width, lower, upper): with `rank - 1` scores above him he is rank `rank`
        for rank in range(max(gold_rank + 1, 2), min(silver_rank, n - 1) + 1):
            lo, hi = max(purchasers[rank - 1], low), min(purchasers[rank - 2], high)
            if hi > lo:
                openings.append((hi - lo, lo, hi))
        if not openings:
            band_top = purchasers[gold_rank] if 0 <= gold_rank < len(purchasers) else math.inf
            return 1.0 if high < band_top else 0.0
        spent = 0.0
        for _, lo, hi in sorted(openings, reverse=True)[:5]:
            target, a, b = (lo + hi) / 2, 0.0, 1.0
            for _ in range(40):
                mid = (a + b) / 2
                a, b = (mid, b) if score_of(mid) < target else (a, mid)
            spent = b
            if lo < score_of(b) < hi:  # a membership level can jump at a spend threshold: then the next opening
                break
        return spent


_CITY_ZH = {"Beijing": "北京", "Shanghai": "上海", "Guangzhou": "广州", "Chongqing": "重庆", "Haikou": "海口"}


def _coprime_multiplier(rng: random.Random, span: int) -> int:
    """A large multiplier sharing no factor with ``span`` (whose prime factors are 2, 3 and 5)."""
    while True:
        a = rng.randrange(span // 7, span)
        if a % 2 and a % 3 and a % 5 and math.gcd(a, span) == 1:
            return a


def store_spec(store_id: int) -> StoreSpec:
    return STORES[store_id - 1]
