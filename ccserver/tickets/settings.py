"""The ``[tickets]`` and ``[notify]`` settings, validated as a whole (pure; errors name the key).

Every table falls back to the built-in defaults below kind by kind, so a site that only changes the complaint SLA
writes only ``[tickets.sla.complaint]``.

- ``categories``: kind → the category codes a ticket of that kind may carry (the pages translate the known ones).
- ``departments``: kind → the department a ticket goes to when no route matches; ``routes``: a list of
  ``{kind, store?, category?, department}`` (``store``: a store code; ``*`` or left out: any); the most specific
  matching route wins (store and category both named, then store, then category), ties by order.
- ``sla``: kind → severity → ``{first_response, resolution}``, each a duration in the store's business hours
  (``"2h"``, ``"90m"``, ``"0"`` = at once, or when the line next opens), ``"close"`` (the end of the working
  day: fixed the same working day), or ``""`` (no such clock). A severity not listed uses ``normal``.
- ``slots``: workshop appointment slots: ``capacity`` is a list of ``{store?, weekdays, hours, capacity}`` rules
  (later rules override earlier ones for the same store, weekday and hour; a slot is one hour from ``hour:00``
  local time), open only while the store's ``line`` is open (holidays, make-up days); bookable from
  ``lead_minutes`` ahead to ``horizon_days`` out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from ccserver.db.models import TICKET_KINDS, TICKET_SEVERITIES
from ccserver.texts import T

__all__ = ["DEFAULTS", "NotifySettings", "SlaSpec", "SlotRule", "TicketSettings", "TicketSettingsError"]

DEFAULTS: Final[dict[str, Any]] = {
    "categories": {
        "complaint": ["service_quality", "parts", "billing", "staff_attitude", "sales_promise", "waiting_time",
                      "other"],
        "repair": ["breakdown", "accident", "warranty", "recall", "other"],
        "appointment": ["maintenance", "repair", "inspection", "bodywork", "test_drive"],
        "callback": ["callback_request", "abandoned_call", "other"],
        "inquiry": ["sales", "service", "insurance", "finance", "other"],
        "praise": ["staff", "service", "other"],
    },
    "departments": {"complaint": "service", "repair": "service", "appointment": "service",
                    "callback": "call_center", "inquiry": "call_center", "praise": "call_center"},
    "routes": [
        {"kind": "complaint", "category": "sales_promise", "department": "sales"},
        {"kind": "complaint", "category": "billing", "department": "finance"},
        {"kind": "inquiry", "category": "sales", "department": "sales"},
        {"kind": "inquiry", "category": "service", "department": "service"},
    ],
    "sla": {
        "complaint": {"normal": {"first_response": "2h", "resolution": "48h"},
                      "high": {"first_response": "1h", "resolution": "24h"},
                      "urgent": {"first_response": "30m", "resolution": "8h"},
                      "low": {"first_response": "4h", "resolution": "72h"}},
        "repair": {"normal": {"first_response": "1h", "resolution": "close"},
                   "urgent": {"first_response": "15m", "resolution": "close"}},
        "appointment": {"normal": {"first_response": "0", "resolution": ""}},
        "callback": {"normal": {"first_response": "", "resolution": "2h"}},
        "inquiry": {"normal": {"first_response": "4h", "resolution": "24h"}},
        "praise": {"normal": {"first_response": "", "resolution": ""}},
    },
    "slots": {
        "line": "service",
        "lead_minutes": 60,
        "horizon_days": 14,
        "capacity": [{"weekdays": [0, 1, 2, 3, 4, 5], "hours": [8, 9, 10, 11, 13, 14, 15, 16], "capacity": 3}],
    },
}

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([hm])$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")


class TicketSettingsError(ValueError):
    """A ``[tickets]`` / ``[notify]`` value is wrong; the message names the key."""


@dataclass(frozen=True)
class SlaSpec:
    """One SLA clock: ``business`` time in the store's hours, or ``close`` = the end of the working day."""

    mode: str  # "business" | "close"
    duration: timedelta = timedelta(0)

    @classmethod
    def parse(cls, value: Any, where: str) -> SlaSpec | None:
        text = str(value).strip().lower() if value is not None else ""
        if text in ("", "none"):
            return None
        if text == "close":
            return cls("close")
        if text == "0":
            return cls("business")
        match = _DURATION.match(text)
        if not match:
            raise TicketSettingsError(f'{where}: expected a duration such as "2h" or "30m", "0", "close" or ""')
        amount = float(match.group(1))
        seconds = amount * (3600 if match.group(2) == "h" else 60)
        if not math.isfinite(seconds) or seconds > 366 * 86400:
            raise TicketSettingsError(T("{where}: too long", where=where))
        return cls("business", timedelta(seconds=seconds))


@dataclass(frozen=True)
class Route:
    kind: str
    store: str | None  # store code, None = any
    category: str | None
    department: str

    def specificity(self) -> int:
        return (2 if self.store else 0) + (1 if self.category else 0)


@dataclass(frozen=True)
class SlotRule:
    store: str | None
    weekdays: frozenset[int]
    hours: frozenset[int]
    capacity: int


@dataclass(frozen=True)
class TicketSettings:
    categories: Mapping[str, tuple[str, ...]]
    departments: Mapping[str, str]
    routes: tuple[Route, ...]
    sla: Mapping[str, Mapping[str, tuple[SlaSpec | None, SlaSpec | None]]]
    slot_rules: tuple[SlotRule, ...]
    slot_line: str | None = "service"
    slot_lead: timedelta = timedelta(minutes=60)
    slot_horizon_days: int = 14
    warning_before: timedelta = timedelta(minutes=30)
    check_seconds: float = 60.0
    resolution_callback: SlaSpec | None = field(default_factory=lambda: SlaSpec("business", timedelta(hours=4)))
    abandoned_min_wait_seconds: float = 10.0  # negative: no callback tickets for abandoned calls
    time_zone: str = "Asia/Shanghai"

    # -- building ------------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, values: Mapping[str, Any], time_zone: str = "Asia/Shanghai") -> TicketSettings:
        def table(name: str) -> dict[str, Any]:
            given = values.get(name)
            merged = dict(DEFAULTS[name])
            if given is None:
                return merged
            if not isinstance(given, dict):
                raise TicketSettingsError(T("tickets.{name}: expected a table of kind → value", name=name))
            for key in given:
                if key not in TICKET_KINDS:
                    raise TicketSettingsError(T("tickets.{name}.{key}: unknown kind (one of {ticket_kinds})",
                                                name=name, key=key, ticket_kinds=', '.join(TICKET_KINDS)))
            merged.update(given)
            return merged

        categories: dict[str, tuple[str, ...]] = {}
        for kind, listed in table("categories").items():
            if not isinstance(listed, list) or not all(isinstance(c, str) and _NAME.match(c) for c in listed):
                raise TicketSettingsError(T("tickets.categories.{kind}: expected a list of category codes "
                                            "(letters, digits, '_', '-', '.')", kind=kind))
            categories[kind] = tuple(listed)

        departments: dict[str, str] = {}
        for kind, dept in table("departments").items():
            departments[kind] = _department(dept, f"tickets.departments.{kind}")

        raw_routes = values.get("routes")
        raw_routes = DEFAULTS["routes"] if raw_routes is None else raw_routes
        if not isinstance(raw_routes, list):
            raise TicketSettingsError(T("tickets.routes: expected a list of {kind, store?, category?, department}"))
        routes = []
        for i, r in enumerate(raw_routes):
            where = f"tickets.routes[{i}]"
            if not isinstance(r, dict) or set(r) - {"kind", "store", "category", "department"}:
                raise TicketSettingsError(T("{where}: expected a table with kind, store, category, department",
                                            where=where))
            route_kind = r.get("kind")
            if route_kind not in TICKET_KINDS:
                raise TicketSettingsError(T("{where}.kind: one of {ticket_kinds}", where=where,
                                            ticket_kinds=', '.join(TICKET_KINDS)))
            kind = str(route_kind)
            store = _wild(r.get("store"), f"{where}.store")
            category = _wild(r.get("category"), f"{where}.category")
            if category is not None and category not in categories[kind]:
                raise TicketSettingsError(T("{where}.category: {category} is not a {kind} category", where=where,
                                            category=repr(category), kind=kind))
            routes.append(Route(kind, store, category, _department(r.get("department"), f"{where}.department")))

        sla: dict[str, dict[str, tuple[SlaSpec | None, SlaSpec | None]]] = {}
        for kind, by_severity in table("sla").items():
            if not isinstance(by_severity, dict) or "normal" not in by_severity:
                raise TicketSettingsError(T("tickets.sla.{kind}: expected a table of severity → clocks, with normal",
                                            kind=kind))
            sla[kind] = {}
            for severity, clocks in by_severity.items():
                where = f"tickets.sla.{kind}.{severity}"
                if severity not in TICKET_SEVERITIES:
                    raise TicketSettingsError(T("{where}: unknown severity (one of {ticket_severities})", where=where,
                                                ticket_severities=', '.join(TICKET_SEVERITIES)))
                if not isinstance(clocks, dict) or set(clocks) - {"first_response", "resolution"}:
                    raise TicketSettingsError(T("{where}: expected {{first_response, resolution}}", where=where))
                sla[kind][severity] = (SlaSpec.parse(clocks.get("first_response"), f"{where}.first_response"),
                                       SlaSpec.parse(clocks.get("resolution"), f"{where}.resolution"))

        slots = values.get("slots")
        slots = DEFAULTS["slots"] if slots is None else {**DEFAULTS["slots"], **slots} if isinstance(slots, dict) \
            else slots
        if not isinstance(slots, dict) or set(slots) - set(DEFAULTS["slots"]):
            raise TicketSettingsError(
                T("tickets.slots: expected a table of line, lead_minutes, horizon_days, capacity"))
        line = slots.get("line") or None
        if line is not None:
            line = _department(line, "tickets.slots.line")
        lead = _number(slots.get("lead_minutes"), "tickets.slots.lead_minutes", 0, 10_080)
        horizon = int(_number(slots.get("horizon_days"), "tickets.slots.horizon_days", 1, 366))
        rules = []
        capacity = slots.get("capacity")
        if not isinstance(capacity, list):
            raise TicketSettingsError(
                T("tickets.slots.capacity: expected a list of {store?, weekdays, hours, capacity}"))
        for i, rule in enumerate(capacity):
            where = f"tickets.slots.capacity[{i}]"
            if not isinstance(rule, dict) or set(rule) - {"store", "weekdays", "hours", "capacity"}:
                raise TicketSettingsError(T("{where}: expected a table with store, weekdays, hours, capacity",
                                            where=where))
            weekdays, hours = rule.get("weekdays", list(range(7))), rule.get("hours")
            if not isinstance(weekdays, list) or not all(isinstance(d, int) and 0 <= d <= 6 for d in weekdays):
                raise TicketSettingsError(T("{where}.weekdays: a list of 0 (Monday) … 6 (Sunday)", where=where))
            if not isinstance(hours, list) or not all(isinstance(h, int) and 0 <= h <= 23 for h in hours):
                raise TicketSettingsError(T("{where}.hours: a list of hours 0 … 23 (the slot starts at hour:00)",
                                            where=where))
            rules.append(SlotRule(_wild(rule.get("store"), f"{where}.store"), frozenset(weekdays),
                                  frozenset(hours), int(_number(rule.get("capacity"), f"{where}.capacity", 0, 1000))))

        return cls(
            categories=categories, departments=departments, routes=tuple(routes), sla=sla, slot_rules=tuple(rules),
            slot_line=line, slot_lead=timedelta(minutes=lead), slot_horizon_days=horizon,
            warning_before=timedelta(minutes=_number(values.get("sla_warning_minutes", 30),
                                                     "tickets.sla_warning_minutes", 0, 10_080)),
            check_seconds=_number(values.get("sla_check_seconds", 60), "tickets.sla_check_seconds", 1, 3600),
            resolution_callback=SlaSpec.parse(values.get("resolution_callback", "4h"), "tickets.resolution_callback"),
            abandoned_min_wait_seconds=_number(values.get("abandoned_min_wait_seconds", 10),
                                               "tickets.abandoned_min_wait_seconds", -1, 3600),
            time_zone=time_zone,
        )

    @classmethod
    def from_config(cls, config: Any) -> TicketSettings:
        return cls.from_dict(config.section("tickets"), config.server.time_zone)

    # -- questions ------------------------------------------------------------------------------------------------
    def configured_departments(self) -> set[str]:
        """The departments tickets are sent to by these settings (kinds' defaults and routes)."""
        return set(self.departments.values()) | {route.department for route in self.routes}

    def department_for(self, kind: str, store_code: str | None, category: str | None) -> str:
        """The department a new ticket goes to (see the module docstring)."""
        best: Route | None = None
        for route in self.routes:
            if route.kind != kind or (route.store and route.store != store_code) or \
                    (route.category and route.category != category):
                continue
            if best is None or route.specificity() > best.specificity():
                best = route
        return best.department if best is not None else self.departments[kind]

    def sla_for(self, kind: str, severity: str) -> tuple[SlaSpec | None, SlaSpec | None]:
        """(first response, resolution) clocks of a kind and severity (``normal``'s when it is not listed)."""
        by_severity = self.sla[kind]
        return by_severity.get(severity) or by_severity["normal"]

    def slot_capacity(self, store_code: str | None, weekday: int, hour: int) -> int:
        capacity = 0
        for rule in self.slot_rules:
            if (rule.store is None or rule.store == store_code) and weekday in rule.weekdays and hour in rule.hours:
                capacity = rule.capacity
        return capacity


@dataclass(frozen=True)
class NotifySettings:
    """``[notify]``: the webhook that hears of ticket changes (an SMS gateway, a CRM)."""

    webhook_url: str = ""
    webhook_secret: str = field(default="", repr=False)
    retry_delays: tuple[float, ...] = (10.0, 60.0, 300.0, 1800.0, 7200.0)
    timeout_seconds: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url)

    @classmethod
    def from_config(cls, config: Any) -> NotifySettings:
        n = config.section("notify")
        return cls(n["webhook_url"], n["webhook_secret"], tuple(n["retry_delays"]), n["timeout_seconds"])


def _department(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise TicketSettingsError(T("{where}: expected a department name (letters, digits, '_', '-', '.')",
                                    where=where))
    return value


def _wild(value: Any, where: str) -> str | None:
    if value is None or value == "*":
        return None
    if not isinstance(value, str) or not _NAME.match(value):
        raise TicketSettingsError(T("{where}: expected a code, or '*' for any", where=where))
    return value


def _number(value: Any, where: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TicketSettingsError(T("{where}: expected a number", where=where)) from None
    if not (math.isfinite(number) and low <= number <= high):
        raise TicketSettingsError(T("{where}: must be between {low:g} and {high:g}", where=where, low=low, high=high))
    return number
