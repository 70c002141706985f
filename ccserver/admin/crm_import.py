"""Import a dealer CRM export (customers, vehicles, orders, service visits) from CSV.

The seeds' systems export GBK-encoded CSV with Chinese headers, so a file is read as UTF-8 with a BOM, UTF-8, or
else GB18030 (a superset of GBK), and Chinese headers map to fields (``ALIASES``; ``--mapping`` adds a saved JSON
mapping ``{"source column": "field"}``). Every row is checked first (:func:`plan`): bad phone numbers, unknown
stores and users, bad or duplicate VINs are reported with their line and reason and skipped; a number or VIN the
database (or an earlier line) already has is *merged* into that customer, never duplicated — so a re-run imports
nothing new. :func:`write` then applies the plan in ONE transaction: a failure part-way leaves nothing behind.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from ccserver import csvtext
from ccserver.db.models import (
    CUSTOMER_KINDS,
    LANGUAGES,
    LIFECYCLES,
    ORDER_KINDS,
    VISIT_STATUSES,
    Customer,
    Order,
    PhoneNumber,
    ServiceVisit,
    Store,
    User,
    Vehicle,
    customer_phones,
)
from ccserver.phonetext import number_reason
from ccserver.textcheck import CONTROLS
from ccserver.texts import T, message_of
from routing.numbers import normalize

KINDS = ("customers", "vehicles", "orders", "visits")
BATCH = 2000
VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_LONE_CR = re.compile(r"\r(?!\n)")
_CR_MARK = "\ue000"  # a private-use character standing for a lone CR while the csv module reads the text
PHONE_KINDS = {"mobile", "landline", "toll_free"}


@dataclass(frozen=True)
class Field:
    name: str
    required: bool
    example: str
    help: str


# The templates' example numbers come from blocks the demo generator never hands out (a 170 mobile block, not in
# demo.reference.MOBILE_PREFIXES; a Haikou landline starting with 3, not in its landline_first_digits), so
# importing an unedited template into the demo creates a new customer instead of merging into a demo one. The
# consultant is a demo user name (every demo store has <store>-sales01).
EXAMPLE_PHONE = "17000001234"
EXAMPLE_PHONE2 = "0898-3000 1234"

FIELDS: dict[str, tuple[Field, ...]] = {
    "customers": (
        Field("name", True, "王小明", "person or company name"),
        Field("phone", True, EXAMPLE_PHONE, "main number (mobile or landline with area code)"),
        Field("phone2", False, EXAMPLE_PHONE2, "a second number (optional)"),
        Field("kind", False, "person", "person or company (个人/公司); default person"),
        Field("store", False, "bj-volvo", "home store: its code or name"),
        Field("language", False, "zh", "zh or en; default zh"),
        Field("source", False, "walk_in", "where the customer came from"),
        Field("consent", False, "yes", "agreed to be contacted (yes/no, 是/否)"),
        Field("do_not_call", False, "no", "never call (yes/no)"),
        Field("vip", False, "no", "manual VIP (yes/no)"),
        Field("membership_level", False, "2", "0-9"),
        Field("lifecycle", False, "customer", "target, prospect, customer or dormant; default customer"),
        Field("sales_consultant", False, "bj-volvo-sales01", "user name (or display name) of the sales consultant"),
        Field("service_advisor", False, "", "user name (or display name) of the service advisor"),
        Field("vin", False, "", "a VIN of the customer's car: merges into its owner when the number is new"),
        Field("birthday", False, "1985-03-12", "a person's date of birth (also 1985/3/12, 1985年3月12日); fills "
              "in a birthday an existing customer lacks"),
    ),
    "vehicles": (
        Field("vin", True, "LVSHCAMB1CE012345", "17-character VIN"),
        Field("customer_phone", True, EXAMPLE_PHONE, "the owner's number (the customer is created if new)"),
        Field("customer_name", False, "王小明", "the owner's name (needed when the number is new)"),
        Field("brand", True, "Volvo", "brand"),
        Field("model", True, "XC60", "model"),
        Field("plate", False, "京A12345", "plate"),
        Field("purchase_date", False, "2023-05-20", "YYYY-MM-DD (also 2023/5/20, 2023年5月20日)"),
        Field("mileage_km", False, "15000", "whole kilometres"),
        Field("next_maintenance_due", False, "2026-12-01", "date"),
        Field("insurance_expiry", False, "2027-05-19", "date"),
    ),
    "orders": (
        Field("customer_phone", False, EXAMPLE_PHONE, "the customer's number (or give vin)"),
        Field("vin", False, "LVSHCAMB1CE012345", "the car (its owner is the customer)"),
        Field("store", False, "bj-volvo", "store code or name"),
        Field("kind", True, "service",
              "vehicle_sale, service, insurance, accessories, used_car (新车销售/维修保养/保险/精品/二手车)"),
        Field("amount", True, "1280.00", "yuan"),
        Field("ordered_on", True, "2025-10-08", "date"),
    ),
    "visits": (
        Field("customer_phone", False, EXAMPLE_PHONE, "the customer's number (or give vin)"),
        Field("vin", False, "LVSHCAMB1CE012345", "the car"),
        Field("store", True, "bj-volvo", "store code or name"),
        Field("opened_at", True, "2025-10-08 09:30", "date and time, the store's local time"),
        Field("status", False, "collected", "booked, in_progress, waiting_parts, ready, collected, cancelled"),
        Field("advisor", False, "", "service advisor's user name"),
        Field("description", False, "10,000 km service", "what was done"),
    ),
}

# Chinese (and common English) headers → field. For vehicles/orders/visits a "phone"/"name" column is the owner's.
ALIASES: dict[str, str] = {
    "姓名": "name", "客户姓名": "name", "客户名称": "name", "名称": "name", "客户": "name", "车主": "name",
    "车主姓名": "name", "customer": "name", "customer name": "name",
    "手机": "phone", "手机号": "phone", "手机号码": "phone", "电话": "phone", "联系电话": "phone",
    "客户电话": "phone", "车主电话": "phone", "mobile": "phone", "phone number": "phone",
    "备用电话": "phone2", "其他电话": "phone2", "电话2": "phone2", "座机": "phone2",
    "客户类型": "kind", "类型": "kind", "门店": "store", "所属门店": "store", "门店代码": "store", "经销店": "store",
    "语言": "language", "来源": "source", "客户来源": "source", "同意联系": "consent", "营销同意": "consent",
    "勿扰": "do_not_call", "拒绝来电": "do_not_call", "会员等级": "membership_level", "客户阶段": "lifecycle",
    "销售顾问": "sales_consultant", "服务顾问": "service_advisor",
    "车架号": "vin", "vin码": "vin", "车辆识别代号": "vin", "车辆识别号": "vin",
    "品牌": "brand", "车型": "model", "车牌": "plate", "车牌号": "plate", "车牌号码": "plate",
    "购车日期": "purchase_date", "购买日期": "purchase_date", "里程": "mileage_km", "行驶里程": "mileage_km",
    "公里数": "mileage_km", "下次保养日期": "next_maintenance_due", "保险到期": "insurance_expiry",
    "保险到期日": "insurance_expiry", "订单类型": "kind", "业务类型": "kind", "金额": "amount",
    "订单金额": "amount", "订单日期": "ordered_on", "日期": "ordered_on", "进厂时间": "opened_at",
    "开单时间": "opened_at", "状态": "status", "维修内容": "description", "描述": "description",
    "生日": "birthday", "出生日期": "birthday", "出生年月日": "birthday", "客户生日": "birthday",
    "date of birth": "birthday", "birth date": "birthday", "birthdate": "birthday", "dob": "birthday",
}
_OWNER = {"phone": "customer_phone", "name": "customer_name", "service_advisor": "advisor"}

_BOOL = {"yes": True, "y": True, "true": True, "1": True, "是": True, "有": True, "√": True,
         "no": False, "n": False, "false": False, "0": False, "否": False, "无": False, "": False}
_CUSTOMER_KIND = {"个人": "person", "公司": "company", "企业": "company", "单位": "company"}
_ORDER_KIND = {"新车销售": "vehicle_sale", "新车": "vehicle_sale", "整车销售": "vehicle_sale", "维修保养": "service",
               "售后": "service", "维修": "service", "保养": "service", "保险": "insurance", "精品": "accessories",
               "附件": "accessories", "二手车": "used_car"}
_VISIT_STATUS = {"已预约": "booked", "预约": "booked", "维修中": "in_progress", "待料": "waiting_parts",
                 "已完工": "ready", "完工": "ready", "已交车": "collected", "交车": "collected", "已取消": "cancelled"}
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_DATETIME = re.compile(r"^(.+?)(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


class ImportError_(Exception):  # noqa: N801 - not the builtin ImportError
    """The file cannot be imported at all (unreadable, a required column missing, a bad mapping)."""


class MissingColumns(ImportError_):
    """Required columns are missing. The message is the CLI's (it names ``--mapping`` and ``--template``); the web
    page, which has neither, words its own from ``missing`` and ``found``."""

    def __init__(self, missing: list[str], found: list[str]) -> None:
        super().__init__(f"required column(s) missing: {', '.join(missing)} (columns found: {', '.join(found)}; "
                         "give --mapping, or see --template)")
        self.missing = missing
        self.found = found


@dataclass
class Table:
    encoding: str
    header: list[str]
    columns: dict[str, int]  # field -> column index
    ignored: list[str]  # source columns that map to no field
    rows: list[tuple[int, list[str]]]  # (line number, cells)


@dataclass
class RowResult:
    line: int
    status: str  # new | merged | unchanged | error
    message: str


@dataclass
class Plan:
    kind: str
    table: Table
    results: list[RowResult] = field(default_factory=list)
    # What write() inserts. Customers are keyed by a temporary key ("n<line>") until they have an id.
    new_customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_phones: dict[str, tuple[str, str]] = field(default_factory=dict)  # e164 -> (kind, customer key)
    links: list[tuple[str | int, str, bool]] = field(default_factory=list)  # (customer key or id, e164, primary)
    new_vehicles: list[dict[str, Any]] = field(default_factory=list)  # customer_id may be a key
    new_orders: list[dict[str, Any]] = field(default_factory=list)
    new_visits: list[dict[str, Any]] = field(default_factory=list)
    birthdays: dict[int, dt.date] = field(default_factory=dict)  # existing customer id -> the birthday it lacked

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def errors(self) -> list[RowResult]:
        return [r for r in self.results if r.status == "error"]


# --- reading -----------------------------------------------------------------------------------------------


def load_mapping(path: str | Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        mapping = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ImportError_(f"cannot read the mapping file: {exc}") from None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ImportError_('the mapping file must be a JSON object {"source column": "field", ...}')
    return mapping


def _field_for(kind: str, header: str, mapping: dict[str, str]) -> str | None:
    names = {f.name for f in FIELDS[kind]}
    clean = header.strip().strip("\ufeff")
    for candidate in (mapping.get(header), mapping.get(clean), clean, clean.lower(),
                      ALIASES.get(clean), ALIASES.get(clean.lower())):
        if candidate is None:
            continue
        if kind != "customers":
            candidate = _OWNER.get(candidate, candidate)
        if candidate in names:
            return candidate
    return None


def read_table(kind: str, data: bytes, mapping: dict[str, str] | None = None) -> Table:
    if kind not in KINDS:
        raise ImportError_(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    mapping = mapping or {}
    names = {f.name for f in FIELDS[kind]}
    bad = sorted(v for v in mapping.values() if v not in names)
    if bad:
        raise ImportError_(f"the mapping names unknown {kind} fields: {', '.join(bad)}")
    try:
        text, encoding = csvtext.decode(data)  # the same encodings as every CSV upload
    except csvtext.UndecodableCSV as exc:
        raise ImportError_(message_of(exc)) from None
    # A lone CR in a file whose lines end in LF is inside a field (a name typed with a stray carriage return), not
    # a line end: the csv module would cut the row there and import its halves. Kept as a CR in the cell, where the
    # field's own check refuses it with the line. (A file of CR-only line ends — old Mac — is left as it is.)
    lone_cr = "\n" in text and _LONE_CR.search(text) is not None and _CR_MARK not in text
    if lone_cr:
        text = _LONE_CR.sub(_CR_MARK, text)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportError_("the file is empty") from None
    except csv.Error as exc:
        raise ImportError_(f"line 1: {exc}") from None
    columns: dict[str, int] = {}
    ignored: list[str] = []
    for index, title in enumerate(header):
        name = _field_for(kind, title, mapping)
        if name is None or name in columns:
            if title.strip():
                ignored.append(title)
            continue
        columns[name] = index
    missing = [f.name for f in FIELDS[kind] if f.required and f.name not in columns]
    if kind in ("orders", "visits") and "customer_phone" not in columns and "vin" not in columns:
        missing.append("customer_phone or vin")
    if missing:
        raise MissingColumns(missing, header)
    rows: list[tuple[int, list[str]]] = []
    try:
        first = reader.line_num + 1  # a quoted field may span lines: a row is reported by its first one
        for cells in reader:
            if lone_cr:
                cells = [c.replace(_CR_MARK, "\r") for c in cells]
            if any(c.strip() for c in cells):
                rows.append((first, cells))
            first = reader.line_num + 1
    except csv.Error as exc:
        raise ImportError_(f"line {reader.line_num}: {exc}") from None
    return Table(encoding, header, columns, ignored, rows)


def template(kind: str) -> tuple[str, str]:
    """(CSV header + example row, documentation of each column)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f.name for f in FIELDS[kind]])
    writer.writerow([f.example for f in FIELDS[kind]])
    doc = "\n".join(f"  {f.name:<22} {'required' if f.required else 'optional':<9} {f.help}" for f in FIELDS[kind])
    return out.getvalue(), doc


# --- checking ------------------------------------------------------------------------------------------------


class RowError(Exception):
    pass


def _every(checks: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Each field's check run, and every refusal of the row said at once (in column order): a messy file is
    fixed in one pass, not one import per mistake. The values by name when all pass."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, check in checks.items():
        try:
            values[name] = check()
        except RowError as exc:
            problems.append(message_of(exc))
    if problems:
        joined = problems[-1]
        for problem in reversed(problems[:-1]):
            joined = T("{problem}; {more}", problem=problem, more=joined)
        raise RowError(joined)
    return values


_RECORDS = {"order": T("order"), "visit": T("visit")}  # what _dedupe names, in the reader's language


@dataclass
class _Known:
    """What the database holds already (read once at the start)."""

    stores: dict[str, tuple[int, str]]  # code and name -> (id, time zone)
    users: dict[str, int]  # username and display name -> id
    phones: dict[str, int]  # e164 -> customer id (the lowest when shared)
    phone_ids: set[str]  # e164s with a phone_numbers row
    vins: dict[str, tuple[int, int]]  # vin -> (vehicle id, customer id)
    customer_phones: set[tuple[int, str]]  # (customer id, e164) links
    order_keys: set[tuple[Any, ...]]
    visit_keys: set[tuple[Any, ...]]
    with_birthday: set[int] = field(default_factory=set)  # customer ids whose birthday is known


def _load_known(conn: Connection, kind: str) -> _Known:
    stores: dict[str, tuple[int, str]] = {}
    for sid, code, name, tz in conn.execute(select(Store.id, Store.code, Store.name, Store.time_zone)):
        stores[code.lower()] = stores[name.lower()] = (sid, tz)
    users: dict[str, int] = {}
    for uid, username, display in conn.execute(select(User.id, User.username, User.display_name)):
        users.setdefault(display.lower(), uid)
        users[username.lower()] = uid
    phones: dict[str, int] = {}
    links: set[tuple[int, str]] = set()
    for e164, cid in conn.execute(select(PhoneNumber.e164, customer_phones.c.customer_id)
                                  .join(customer_phones, customer_phones.c.phone_id == PhoneNumber.id)
                                  .order_by(customer_phones.c.customer_id)):
        phones.setdefault(e164, cid)
        links.add((cid, e164))
    phone_ids = set(conn.scalars(select(PhoneNumber.e164)))
    vins = {vin: (vid, cid) for vid, vin, cid in conn.execute(select(Vehicle.id, Vehicle.vin, Vehicle.customer_id))}
    order_keys: set[tuple[Any, ...]] = set()
    visit_keys: set[tuple[Any, ...]] = set()
    if kind == "orders":
        order_keys = {_order_key(*r) for r in conn.execute(select(
            Order.customer_id, Order.vehicle_id, Order.store_id, Order.kind, Order.amount, Order.ordered_on))}
    if kind == "visits":
        visit_keys = {_visit_key(*r) for r in conn.execute(select(
            ServiceVisit.customer_id, ServiceVisit.vehicle_id, ServiceVisit.store_id, ServiceVisit.opened_at))}
    with_birthday: set[int] = set()
    if kind == "customers":
        with_birthday = set(conn.scalars(select(Customer.id).where(Customer.birthday.is_not(None))))
    return _Known(stores, users, phones, phone_ids, vins, links, order_keys, visit_keys, with_birthday)


def _order_key(cid: Any, vid: Any, sid: Any, kind: str, amount: Any, on: dt.date) -> tuple[Any, ...]:
    return (cid, vid, sid, kind, f"{Decimal(str(amount)):.2f}", on)


def _visit_key(cid: Any, vid: Any, sid: Any, opened: dt.datetime) -> tuple[Any, ...]:
    if opened.tzinfo is None:
        opened = opened.replace(tzinfo=dt.UTC)
    return (cid, vid, sid, opened.astimezone(dt.UTC).replace(microsecond=0))


def _text(value: str, limit: int, what: str) -> str:
    value = value.strip()
    if CONTROLS.search(value):  # a bidi override too: a customer's name that reads as another's on the screen pop
        raise RowError(T("{what} contains control characters", what=what))
    if len(value) > limit:
        raise RowError(T("{what} longer than {limit} characters", what=what, limit=limit))
    return value


def _bool(value: str, what: str) -> bool:
    try:
        return _BOOL[value.strip().lower()]
    except KeyError:
        raise RowError(T("{what} {value} is not yes/no", what=what, value=repr(value))) from None


def parse_date(value: str, what: str) -> dt.date:
    m = _DATE.match(value.strip())
    try:
        if not m:
            raise ValueError
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise RowError(T("{what} {value} is not a date like 2025-10-08", what=what, value=repr(value))) from None


def parse_birthday(value: str, today: dt.date) -> dt.date:
    """A date of birth: a date (as :func:`parse_date` reads them), not after ``today``, not before 1900."""
    born = parse_date(value, "birthday")
    if born > today:
        raise RowError(T("birthday {value} is in the future", value=repr(value)))
    if born.year < 1900:
        raise RowError(T("birthday {value} is before 1900", value=repr(value)))
    return born


def _datetime(value: str, tz: str, what: str) -> dt.datetime:
    m = _DATETIME.match(value.strip())
    if not m:
        raise RowError(T("{what} {value} is not a date and time like 2025-10-08 09:30", what=what, value=repr(value)))
    day = parse_date(m[1], what)
    try:
        clock = dt.time(int(m[2] or 0), int(m[3] or 0), int(m[4] or 0))
    except ValueError:
        raise RowError(T("{what} {value} has an impossible time", what=what, value=repr(value))) from None
    return dt.datetime.combine(day, clock, ZoneInfo(tz)).astimezone(dt.UTC)


class _Checker:
    """Turns rows into a :class:`Plan`, remembering what earlier lines of the file add (merge, not duplicate)."""

    def __init__(self, kind: str, table: Table, known: _Known, region: str, today: dt.date | None = None):
        self.plan = Plan(kind, table)
        self.known = known
        self.region = region
        self.today = today or dt.date.today()
        self.file_phones: dict[str, str] = {}  # e164 -> customer key of an earlier line
        self.file_vins: dict[str, int] = {}  # vin -> line
        self.file_keys: dict[tuple[Any, ...], int] = {}

    def cell(self, cells: list[str], name: str) -> str:
        index = self.plan.table.columns.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    def number(self, raw: str, what: str) -> tuple[str, str]:
        parsed = normalize(raw, region=self.region)
        if not parsed.ok or parsed.e164 is None:
            raise RowError(T("bad {what} {raw}: {reason}", what=what, raw=repr(raw),
                             reason=number_reason(parsed.reason)))
        return parsed.e164, parsed.kind if parsed.kind in PHONE_KINDS else "other"

    def store(self, value: str) -> tuple[int, str] | None:
        if not value:
            return None
        found = self.known.stores.get(value.lower())
        if found is None:
            raise RowError(T("unknown store {value}", value=repr(value)))
        return found

    def user(self, value: str, what: str) -> int | None:
        if not value:
            return None
        found = self.known.users.get(value.lower())
        if found is None:
            raise RowError(T("unknown {what} {value}", what=what, value=repr(value)))
        return found

    def owner(self, e164: str) -> str | int | None:
        """The customer this number belongs to: an id in the database, a key of an earlier line, or None."""
        if e164 in self.known.phones:
            return self.known.phones[e164]
        return self.file_phones.get(e164)

    def add_phone(self, customer: str | int, e164: str, kind: str, primary: bool) -> bool:
        """Link a number to a customer unless it already is (True: something new)."""
        if isinstance(customer, int) and (customer, e164) in self.known.customer_phones:
            return False
        if self.owner(e164) not in (None, customer):
            return False  # the number is someone else's: the caller decides (merge) before calling this
        if e164 not in self.known.phone_ids and e164 not in self.plan.new_phones:
            self.plan.new_phones[e164] = (kind, str(customer))
        if isinstance(customer, str):
            self.file_phones.setdefault(e164, customer)
        else:
            self.known.customer_phones.add((customer, e164))
            self.known.phones.setdefault(e164, customer)
        self.plan.links.append((customer, e164, primary))
        return True

    def fill_birthday(self, customer: str | int, born: dt.date) -> bool:
        """Give a customer without a birthday this one (an existing customer, or an earlier line's). True: done."""
        if isinstance(customer, str):
            values = self.plan.new_customers[customer]
            if values.get("birthday") is None and values.get("kind", "person") == "person":
                values["birthday"] = born
                return True
            return False
        if customer in self.known.with_birthday:
            return False
        self.known.with_birthday.add(customer)
        self.plan.birthdays[customer] = born
        return True

    def new_customer(self, line: int, values: dict[str, Any]) -> str:
        key = f"n{line}"
        self.plan.new_customers[key] = values
        return key

    # --- one row per kind ---

    def customers(self, line: int, cells: list[str]) -> RowResult:
        def cell(name: str) -> str:
            return self.cell(cells, name)

        def name() -> str:
            value = _text(cell("name"), 120, "name")
            if not value:
                raise RowError(T("name is empty"))
            return value

        def phone() -> tuple[str, str]:
            raw = cell("phone")
            if not raw:
                raise RowError(T("phone is empty"))
            return self.number(raw, "phone")

        def kind() -> str:
            value = cell("kind") or "person"
            value = _CUSTOMER_KIND.get(value, value.lower())
            if value not in CUSTOMER_KINDS:
                raise RowError(T("kind {kind} is not person or company", kind=repr(value)))
            return value

        def language() -> str:
            value = (cell("language") or "zh").lower()[:2]
            if value not in LANGUAGES:
                raise RowError(T("language {language} is not zh or en", language=repr(value)))
            return value

        def lifecycle() -> str:
            value = (cell("lifecycle") or "customer").lower()
            if value not in LIFECYCLES:
                raise RowError(T("lifecycle {lifecycle} is not one of {lifecycles}", lifecycle=repr(value),
                                 lifecycles=', '.join(LIFECYCLES)))
            return value

        def level() -> int:
            level_text = cell("membership_level") or "0"
            if not (level_text.isascii() and level_text.isdigit()) or int(level_text) > 9:
                raise RowError(T("membership_level {level_text} is not 0-9", level_text=repr(level_text)))
            return int(level_text)

        def check_vin() -> str:
            value = cell("vin").upper().replace(" ", "")
            if value and not VIN.match(value):  # a VIN that names no car merges nothing: said, not passed over
                raise RowError(T("bad VIN {vin} (17 letters and digits, no I, O or Q)", vin=repr(value)))
            return value

        v = _every({
            "name": name, "phone": phone,
            "phone2": lambda: self.number(second, "phone2") if (second := cell("phone2")) else None,
            "kind": kind, "language": language, "lifecycle": lifecycle, "level": level,
            "store": lambda: self.store(cell("store")),
            "born": lambda: parse_birthday(born_text, self.today) if (born_text := cell("birthday")) else None,
            "source": lambda: _text(cell("source"), 40, "source") or None,
            "consent": lambda: _bool(cell("consent"), "consent"),
            "do_not_call": lambda: _bool(cell("do_not_call"), "do_not_call"),
            "vip": lambda: _bool(cell("vip"), "vip"),
            "consultant": lambda: self.user(cell("sales_consultant"), T("sales consultant")),
            "advisor": lambda: self.user(cell("service_advisor"), T("service advisor")),
            "vin": check_vin,
        })
        e164, phone_kind = v["phone"]
        extra: tuple[str, str] | None = v["phone2"]
        born, store, vin_text = v["born"], v["store"], v["vin"]
        if born is not None and v["kind"] == "company":
            raise RowError(T("a company has no birthday (leave the birthday empty)"))
        values = {
            "kind": v["kind"], "name": v["name"], "birthday": born, "lifecycle": v["lifecycle"],
            "language": v["language"], "source": v["source"], "consent": v["consent"],
            "do_not_call": v["do_not_call"], "manual_vip": v["vip"], "membership_level": v["level"],
            "sales_consultant_id": v["consultant"], "service_advisor_id": v["advisor"],
            "home_store_id": store[0] if store else None,
        }
        existing = self.owner(e164)
        how = T("number {e164}", e164=e164)
        if existing is None and vin_text and vin_text in self.known.vins:
            existing, how = self.known.vins[vin_text][1], T("VIN {vin}", vin=vin_text)
        if existing is not None:
            added = extra is not None and self.owner(extra[0]) is None and self.add_phone(existing, *extra, False)
            dated = born is not None and self.fill_birthday(existing, born)
            where = (T("customer #{id}", id=existing) if isinstance(existing, int)
                     else T("line {line}", line=existing[1:]))
            # Texts, not f-strings: the page reads the row report in its language (ccserver.texts).
            if added or dated or isinstance(existing, str):
                return RowResult(line, "merged", T(
                    "{how} already belongs to {where}: merged{added}{birthday}", how=how, where=where,
                    added=T(", {number} added", number=extra[0]) if added and extra else "",
                    birthday=T(", birthday added") if dated else ""))
            return RowResult(line, "unchanged", T("{how} already belongs to {where}: nothing new", how=how,
                                                  where=where))
        key = self.new_customer(line, values)
        self.add_phone(key, e164, phone_kind, True)
        if extra is not None and self.owner(extra[0]) is None:
            self.add_phone(key, *extra, False)
        return RowResult(line, "new", f"new customer {v['name']} ({e164})")

    def vehicles(self, line: int, cells: list[str]) -> RowResult:
        def cell(name: str) -> str:
            return self.cell(cells, name)

        def check_vin() -> str:
            value = cell("vin").upper().replace(" ", "")
            if not VIN.match(value):
                raise RowError(T("bad VIN {vin} (17 letters and digits, no I, O or Q)", vin=repr(value)))
            if value in self.file_vins:
                raise RowError(T("duplicate VIN {vin} (also on line {file_vins})", vin=value,
                                 file_vins=self.file_vins[value]))
            return value

        def brand_model() -> tuple[str, str]:
            brand, model = _text(cell("brand"), 60, "brand"), _text(cell("model"), 80, "model")
            if not brand or not model:
                raise RowError(T("brand and model are required"))
            return brand, model

        def mileage() -> int | None:
            value = cell("mileage_km").replace(",", "")
            if value and not (value.isascii() and value.isdigit()):
                raise RowError(T("mileage_km {mileage} is not a whole number", mileage=repr(value)))
            return int(value) if value else None

        def date(name: str) -> Callable[[], dt.date | None]:
            return lambda: parse_date(value, name) if (value := cell(name)) else None

        v = _every({
            "vin": check_vin, "phone": lambda: self.number(cell("customer_phone"), "customer_phone"),
            "brand_model": brand_model, "mileage": mileage,
            **{name: date(name) for name in ("purchase_date", "next_maintenance_due", "insurance_expiry")},
            "plate": lambda: _text(cell("plate"), 16, "plate") or None,
        })
        vin: str = v["vin"]
        e164, phone_kind = v["phone"]
        brand, model = v["brand_model"]
        dates = {name: v[name] for name in ("purchase_date", "next_maintenance_due", "insurance_expiry")}
        plate, mileage_km = v["plate"], v["mileage"]
        self.file_vins[vin] = line
        if vin in self.known.vins:
            owner = self.known.vins[vin][1]
            return RowResult(line, "unchanged", T("VIN {vin} is already on customer #{owner}: nothing new", vin=vin,
                                                  owner=owner))
        owner_key = self.owner(e164)
        merged = owner_key is not None
        if owner_key is None:
            name = _text(self.cell(cells, "customer_name"), 120, "customer_name")
            if not name:
                raise RowError(T("no customer has number {e164} and customer_name is empty", e164=e164))
            owner_key = self.new_customer(line, {"name": name, "lifecycle": "customer"})
            self.add_phone(owner_key, e164, phone_kind, True)
        self.plan.new_vehicles.append({"customer_id": owner_key, "vin": vin, "brand": brand, "model": model,
                                       "plate": plate, "mileage_km": mileage_km, **dates})
        return RowResult(line, "new", f"new vehicle {vin}" + (f", owner by number {e164}" if merged else
                                                                f", new owner ({e164})"))

    def _customer_and_vehicle(self, cells: list[str]) -> tuple[int, int | None]:
        vin = self.cell(cells, "vin").upper().replace(" ", "")
        raw = self.cell(cells, "customer_phone")
        if vin:
            if vin not in self.known.vins:
                raise RowError(T("no vehicle with VIN {vin}; import vehicles first", vin=vin))
            vid, cid = self.known.vins[vin]
            return cid, vid
        if not raw:
            raise RowError(T("give customer_phone or vin"))
        e164, _ = self.number(raw, "customer_phone")
        owner = self.known.phones.get(e164)
        if owner is None:
            raise RowError(T("no customer with number {e164}; import customers first", e164=e164))
        cid = owner
        return cid, None

    def _dedupe(self, line: int, key: tuple[Any, ...], existing: set[tuple[Any, ...]], what: str) -> RowResult | None:
        if key in existing:
            return RowResult(line, "unchanged", T("this {what} is already in the database: nothing new",
                                                  what=_RECORDS.get(what, what)))
        if key in self.file_keys:
            return RowResult(line, "unchanged", T("the same {what} as line {line}: skipped",
                                                  what=_RECORDS.get(what, what), line=self.file_keys[key]))
        self.file_keys[key] = line
        return None

    def orders(self, line: int, cells: list[str]) -> RowResult:
        def check_kind() -> str:
            value = self.cell(cells, "kind")
            value = _ORDER_KIND.get(value, value.lower())
            if value not in ORDER_KINDS:
                raise RowError(T("order kind {kind} is not one of {order_kinds}", kind=repr(value),
                                 order_kinds=', '.join(ORDER_KINDS)))
            return value

        def check_amount() -> Decimal:
            text = self.cell(cells, "amount").replace(",", "").replace("¥", "").replace("￥", "")
            try:
                value = Decimal(text)
            except InvalidOperation:
                raise RowError(T("amount {text} is not a number", text=repr(text))) from None
            if not value.is_finite() or value < 0 or value >= Decimal("1e10"):
                raise RowError(T("amount {text} is out of range", text=repr(text)))
            return value

        v = _every({"owner": lambda: self._customer_and_vehicle(cells),
                    "store": lambda: self.store(self.cell(cells, "store")), "kind": check_kind,
                    "amount": check_amount,
                    "on": lambda: parse_date(self.cell(cells, "ordered_on"), "ordered_on")})
        (cid, vid), store, on = v["owner"], v["store"], v["on"]
        kind: str = v["kind"]
        amount: Decimal = v["amount"]
        sid = store[0] if store else None
        dup = self._dedupe(line, _order_key(cid, vid, sid, kind, amount, on), self.known.order_keys, "order")
        if dup:
            return dup
        self.plan.new_orders.append({"customer_id": cid, "vehicle_id": vid, "store_id": sid, "kind": kind,
                                     "amount": amount.quantize(Decimal("0.01")), "ordered_on": on})
        return RowResult(line, "new", f"new {kind} order for customer #{cid}")

    def visits(self, line: int, cells: list[str]) -> RowResult:
        try:  # first: the opening time is read in the store's zone (UTC only to say what else is wrong)
            place: tuple[int, str] | None = self.store(self.cell(cells, "store"))
            refused: str = "" if place is not None else T("store is empty")
        except RowError as exc:
            place, refused = None, message_of(exc)

        def check_store() -> tuple[int, str]:
            if place is None:
                raise RowError(refused)
            return place

        def check_status() -> str:
            value = self.cell(cells, "status") or "collected"
            value = _VISIT_STATUS.get(value, value.lower())
            if value not in VISIT_STATUSES:
                raise RowError(T("status {status} is not one of {visit_statuses}", status=repr(value),
                                 visit_statuses=', '.join(VISIT_STATUSES)))
            return value

        v = _every({"owner": lambda: self._customer_and_vehicle(cells), "store": check_store,
                    "opened": lambda: _datetime(self.cell(cells, "opened_at"), place[1] if place else "UTC",
                                                "opened_at"),
                    "status": check_status,
                    "advisor": lambda: self.user(self.cell(cells, "advisor"), "advisor")})
        (cid, vid), opened, advisor = v["owner"], v["opened"], v["advisor"]
        store: tuple[int, str] = v["store"]
        status: str = v["status"]
        dup = self._dedupe(line, _visit_key(cid, vid, store[0], opened), self.known.visit_keys, "visit")
        if dup:
            return dup
        self.plan.new_visits.append({"customer_id": cid, "vehicle_id": vid, "store_id": store[0],
                                     "advisor_id": advisor, "opened_at": opened, "status": status,
                                     "description": _text(self.cell(cells, "description"), 2000, "description")
                                     or None})
        return RowResult(line, "new", f"new visit for customer #{cid}")


def plan(engine: Engine, kind: str, table: Table, *, region: str = "CN",
         progress: Callable[[int, int], None] | None = None, today: dt.date | None = None) -> Plan:
    """Check every row against the database (read only). ``today``: what a birthday may not be after."""
    with engine.connect() as conn:
        known = _load_known(conn, kind)
    checker = _Checker(kind, table, known, region, today)
    check_row: Callable[[int, list[str]], RowResult] = getattr(checker, kind)
    total = len(table.rows)
    for done, (line, cells) in enumerate(table.rows, 1):
        try:
            checker.plan.results.append(check_row(line, cells))
        except RowError as exc:
            checker.plan.results.append(RowResult(line, "error", message_of(exc)))
        if progress and (done % BATCH == 0 or done == total):
            progress(done, total)
    return checker.plan


# --- writing -------------------------------------------------------------------------------------------------


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def write(engine: Engine, p: Plan, progress: Callable[[int, int], None] | None = None,
          now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> dict[str, int]:
    """Apply the plan in one transaction (all of it, or — on any failure — nothing). Counts of rows inserted."""
    stamp = now()
    total = len(p.new_customers) + len(p.new_phones) + len(p.links) + len(p.new_vehicles) + len(p.new_orders) \
        + len(p.new_visits) + len(p.birthdays)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    with engine.begin() as conn:
        ids: dict[str, int] = {}
        keys = list(p.new_customers)
        defaults = {"kind": "person", "lifecycle": "customer", "language": "zh", "source": None, "consent": False,
                    "do_not_call": False, "manual_vip": False, "membership_level": 0, "sales_consultant_id": None,
                    "service_advisor_id": None, "home_store_id": None, "birthday": None}
        for start in range(0, len(keys), BATCH):
            chunk = keys[start : start + BATCH]
            rows = [{**defaults, **p.new_customers[k], "created_at": stamp, "updated_at": stamp} for k in chunk]
            result = conn.execute(insert(Customer).returning(Customer.id, sort_by_parameter_order=True), rows)
            ids.update(zip(chunk, result.scalars().all(), strict=True))
            step(len(chunk))

        def customer_id(ref: str | int) -> int:
            return ref if isinstance(ref, int) else ids[ref]

        phones = list(p.new_phones.items())
        phone_ids: dict[str, int] = {}
        for start in range(0, len(phones), BATCH):
            chunk_p = phones[start : start + BATCH]
            result = conn.execute(insert(PhoneNumber).returning(PhoneNumber.id, sort_by_parameter_order=True),
                                  [{"e164": e164, "kind": kind, "shared": False} for e164, (kind, _) in chunk_p])
            phone_ids.update(zip((e for e, _ in chunk_p), result.scalars().all(), strict=True))
            step(len(chunk_p))
        missing = {e164 for _, e164, _ in p.links if e164 not in phone_ids}
        if missing:
            for e164, pid in conn.execute(select(PhoneNumber.e164, PhoneNumber.id).where(
                    PhoneNumber.e164.in_(sorted(missing)))):
                phone_ids[e164] = pid
        links = [{"customer_id": customer_id(c), "phone_id": phone_ids[e], "label": None, "is_primary": primary}
                 for c, e, primary in p.links]
        for link_chunk in _chunks(links):
            conn.execute(insert(customer_phones), list(link_chunk))
            step(len(link_chunk))
        for table, rows in ((Vehicle, p.new_vehicles), (Order, p.new_orders), (ServiceVisit, p.new_visits)):
            for row_chunk in _chunks(rows):
                conn.execute(insert(table), [{**r, "customer_id": customer_id(r["customer_id"])} for r in row_chunk])
                step(len(row_chunk))
        if p.birthdays:  # only where the customer had none (checked at plan time; re-checked here)
            stmt = (update(Customer).where(Customer.id == bindparam("cid"), Customer.birthday.is_(None))
                    .values(birthday=bindparam("born"), updated_at=stamp))
            rows_b = [{"cid": cid, "born": born} for cid, born in p.birthdays.items()]
            for b_chunk in _chunks(rows_b):
                conn.execute(stmt.execution_options(synchronize_session=False), list(b_chunk))
                step(len(b_chunk))
        if total == 0 and progress:
            progress(0, 0)
    return {"customers": len(p.new_customers), "phone_numbers": len(p.new_phones), "vehicles": len(p.new_vehicles),
            "orders": len(p.new_orders), "visits": len(p.new_visits), "birthdays_added": len(p.birthdays)}


def report(p: Plan, *, all_rows: bool = False) -> Iterator[str]:
    """The row-by-row report (errors, merges and skips; every row with ``all_rows``), then a summary."""
    yield f"{p.kind}: {len(p.table.rows):,} rows read ({p.table.encoding})"
    if p.table.ignored:
        yield f"columns ignored: {', '.join(p.table.ignored)}"
    for r in p.results:
        if all_rows or r.status != "new":
            yield f"line {r.line}: {r.status.upper() if r.status == 'error' else r.status}: {r.message}"
    yield (f"{p.count('new'):,} new, {p.count('merged'):,} merged, {p.count('unchanged'):,} unchanged, "
           f"{p.count('error'):,} with errors")
