"""A posted campaign, validated — pure. Errors name the field (HTTP 400) before anything is written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from ccserver.campaigns.windows import WindowError, parse_window
from ccserver.db.models import CAMPAIGN_MODES, CAMPAIGN_TYPES, TIERS
from ccserver.texts import T, message_of

__all__ = ["FILTER_KEYS", "CampaignSpec", "SpecError", "parse_spec"]

FIELDS = {"name", "type", "mode", "queue", "store", "window", "targets", "tiers_first", "max_attempts", "script"}
FILTER_KEYS = {"tiers", "store", "consent", "model", "last_visit_before", "maintenance_due_before",
               "insurance_expiry_before"}
MAX_CUSTOMER_IDS = 100_000


class SpecError(ValueError):
    def __init__(self, message: str, field: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.field, self.status = message, field, status


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    type: str
    mode: str
    queue: str
    store: int | str | None  # id or code
    window: dict[str, Any]
    targets: dict[str, Any]  # {"filter": {...}} or {"customer_ids": [...]}, normalised
    tiers_first: bool = False
    max_attempts: int | None = None
    script: str | None = None  # what the agent says in preview mode


def _text(body: Mapping[str, Any], name: str, limit: int, *, pattern_ok: Any = None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(T("{name} is required (text)", name=name), name)
    value = value.strip()
    if len(value) > limit or any(ch in value for ch in "\r\n\0"):
        raise SpecError(T("{name} must be one line of at most {limit} characters", name=name, limit=limit), name)
    if pattern_ok is not None and not pattern_ok(value):
        raise SpecError(T("{name} must be letters, digits, '-', '_' or '.'", name=name), name)
    return value


def _queue_name(text: str) -> bool:
    return text.isascii() and all(ch.isalnum() or ch in "-_." for ch in text)


def _date(value: Any, name: str) -> str:
    try:
        return date.fromisoformat(value).isoformat() if isinstance(value, str) else _bad_date(name)
    except ValueError:
        return _bad_date(name)


def _bad_date(name: str) -> str:
    raise SpecError(T("{name} must be a date such as 2026-12-01", name=name), name)


def _filter(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise SpecError(T("targets.filter must be an object"), "targets.filter")
    unknown = sorted(set(raw) - FILTER_KEYS)
    if unknown:
        known = ", ".join(sorted(FILTER_KEYS))
        raise SpecError(T("targets.filter: unknown key(s) {unknown} (known: {known})", unknown=', '.join(unknown),
                          known=known),
                        f"targets.filter.{unknown[0]}")
    out: dict[str, Any] = {}
    if "tiers" in raw:
        tiers = raw["tiers"]
        if not isinstance(tiers, list) or not tiers or not all(t in TIERS for t in tiers):
            raise SpecError(T("targets.filter.tiers must be a list of {tiers}", tiers=', '.join(TIERS)),
                            "targets.filter.tiers")
        out["tiers"] = sorted(set(tiers))
    if "store" in raw:
        store = raw["store"]
        if not (isinstance(store, int) and not isinstance(store, bool) and store > 0) and not (
                isinstance(store, str) and store and _queue_name(store)):
            raise SpecError(T("targets.filter.store must be a store id or code"), "targets.filter.store")
        out["store"] = store
    if "consent" in raw:
        if not isinstance(raw["consent"], bool):
            raise SpecError(T("targets.filter.consent must be true or false"), "targets.filter.consent")
        out["consent"] = raw["consent"]
    if "model" in raw:
        model = raw["model"]
        if not isinstance(model, str) or not model.strip() or len(model) > 80:
            raise SpecError(T("targets.filter.model must be a vehicle model name"), "targets.filter.model")
        out["model"] = model.strip()
    for key in ("last_visit_before", "maintenance_due_before", "insurance_expiry_before"):
        if key in raw:
            out[key] = _date(raw[key], f"targets.filter.{key}")
    return out


SOURCES = ("resolution_callbacks", "abandoned_callers", "callback_requests")  # ccserver/campaigns/sources.py


DUE_KINDS = ("maintenance", "insurance", "post_purchase", "post_service")  # ccserver/campaigns/refresh.py


def _due(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or raw.get("kind") not in DUE_KINDS or not set(raw) <= {"kind", "days"}:
        raise SpecError(T("targets.due must be {{\"kind\": {due_kinds}, \"days\"?}}",
                          due_kinds=' | '.join(DUE_KINDS)), "targets.due")
    out: dict[str, Any] = {"kind": raw["kind"]}
    if "days" in raw:
        days = raw["days"]
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 365:
            raise SpecError(T("targets.due.days must be a whole number of days from 0 to 365"), "targets.due.days")
        out["days"] = days
    return out


def _targets(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or len(raw) != 1 or not set(raw) <= {"filter", "customer_ids", "source", "due"}:
        raise SpecError('targets must be {"filter": {...}}, {"customer_ids": [...]}, {"source": "..."} or '
                        '{"due": {"kind": ...}}', "targets")
    if "due" in raw:
        return {"due": _due(raw["due"])}
    if "source" in raw:
        if raw["source"] not in SOURCES:
            raise SpecError(T("targets.source must be one of {sources}", sources=', '.join(SOURCES)), "targets.source")
        return {"source": raw["source"]}
    if "filter" in raw:
        return {"filter": _filter(raw["filter"])}
    ids = raw["customer_ids"]
    if (not isinstance(ids, list) or not ids or len(ids) > MAX_CUSTOMER_IDS
            or not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**53 for i in ids)):
        raise SpecError(T("targets.customer_ids must be a list of 1 to {max_customer_ids} customer ids",
                          max_customer_ids=MAX_CUSTOMER_IDS),
                        "targets.customer_ids")
    return {"customer_ids": sorted(set(ids))}


def parse_spec(body: Any) -> CampaignSpec:
    if not isinstance(body, Mapping):
        raise SpecError(T("expected a JSON object"), "body")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise SpecError(T("unknown field(s): {unknown}", unknown=', '.join(unknown)), unknown[0])
    name = _text(body, "name", 120)
    kind = body.get("type")
    if kind not in CAMPAIGN_TYPES:
        raise SpecError(T("type must be one of {campaign_types}", campaign_types=', '.join(CAMPAIGN_TYPES)), "type")
    mode = body.get("mode")
    if mode not in CAMPAIGN_MODES:
        raise SpecError(T("mode must be one of {campaign_modes}", campaign_modes=', '.join(CAMPAIGN_MODES)), "mode")
    queue = _text(body, "queue", 80, pattern_ok=_queue_name)
    store = body.get("store")
    if store is not None and not (isinstance(store, int) and not isinstance(store, bool) and store > 0) and not (
            isinstance(store, str) and store and _queue_name(store)):
        raise SpecError(T("store must be a store id or code"), "store")
    window = body.get("window")
    try:
        parse_window(window)
    except WindowError as exc:
        raise SpecError(message_of(exc), "window") from None
    if "targets" not in body:
        raise SpecError('targets is required: {"filter": {...}} or {"customer_ids": [...]}', "targets")
    targets = _targets(body["targets"])
    tiers_first = body.get("tiers_first", False)
    if not isinstance(tiers_first, bool):
        raise SpecError(T("tiers_first must be true or false"), "tiers_first")
    max_attempts = body.get("max_attempts")
    if max_attempts is not None and not (isinstance(max_attempts, int) and not isinstance(max_attempts, bool)
                                         and 1 <= max_attempts <= 20):
        raise SpecError(T("max_attempts must be an integer from 1 to 20"), "max_attempts")
    script = body.get("script")
    if script is not None and (not isinstance(script, str) or len(script) > 4000 or "\0" in script):
        raise SpecError(T("script must be text of at most 4000 characters"), "script")
    return CampaignSpec(name, kind, mode, queue, store, dict(window or {}), targets, tiers_first, max_attempts,
                        script.strip() or None if script is not None else None)
