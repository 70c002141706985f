"""Routing rules: the policy ``decide()`` applies, from config.

``RoutingRules()`` is the documented default policy; ``RoutingRules.from_dict(d)`` reads the ``[routing]``
table of the config (every key optional; missing keys keep their defaults) and raises :class:`RulesError`
naming the offending key (``routing.priority.gold: expected an integer, got 'high'``). Unknown keys are errors,
so a typo never silently does nothing.

Schema, with the defaults (TOML)::

    [routing]
    vip_tiers = ["diamond", "gold"]     # tiers that count as VIP (plus each customer's manual VIP flag)
    max_priority = 12                   # QUEUE_PRIO cap after modifiers
    callback_ewt_seconds = 180          # offer a callback when the estimated wait exceeds this (0 = never)
    default_aht_seconds = 180           # handle time assumed for a queue with no history yet
    fallback_queue = "default"          # when Asterisk (after a resync) has neither the chosen queue nor the
                                        # DID's default queue: this one (the shipped queues define it)

    [routing.priority]                  # tier → base QUEUE_PRIO (unidentified callers are "prospect")
    diamond = 10
    gold = 8
    silver = 5
    bronze = 3
    prospect = 1

    [routing.modifiers]                 # added to the base priority, then capped at max_priority
    open_complaint = 2                  # the customer has an open complaint
    repeat_caller = 1                   # called at least repeat_min_calls times in the last 24 h
    repeat_min_calls = 1                # earlier calls in 24 h (this call not counted)
    vip = 1                             # VIP (tier in vip_tiers, or manual flag)

    [routing.queue_timeout]             # tier → seconds in queue before the dialplan falls through
    diamond = 600
    gold = 480
    silver = 300
    bronze = 300
    prospect = 300

    [routing.queues]                    # line → tier → queue; "*" = every tier; a tier not listed, and a
    sales = { diamond = "vip", gold = "vip" }            # line not listed, use the DID's default queue.
    service = { diamond = "vip", gold = "vip" }          # A line given here replaces that line's default
    complaints = { "*" = "complaints" }                  # table entirely (`sales = {}` turns VIP routing off).

    [routing.overflow]                  # queue → queue to use when nobody is logged in to it. Not listed:
    # vip = "sales"                     # the DID's default queue. Followed at most 3 hops.

    [routing.preferred_agent]           # the customer's own person first, when logged in and free
    ring_seconds = 15                   # CC_AGENT_TIMEOUT
    queue_template = "agent-{ext}"      # personal queue; {ext} = the agent's extension, "8001"
    lines = { sales = "consultant", hotline = "consultant", service = "advisor" }   # line → whose

    [routing.penalty]                   # CC_MAX_PENALTY bands (QUEUE_MAX_PENALTY); see "skills" below
    max = 5                             # normal band: primary + secondary skill
    widened = 10                        # when no member within the band is free: add backup members

    [routing.languages.en]              # per caller language (customer's preference, else the DID's)
    queue_template = "{queue}-en"       # use this queue when the live view has it with members logged in
    # max_penalty = 0                   # else stay in the base queue with this band (omitted: normal band)

    [routing.announce]                  # CC_ANNOUNCE prompt names (a closed set the dialplan tests for)
    after_hours = "cc-after-hours"      # closed: CC_QUEUE is empty → run the callback-request IVR
    no_agents = "cc-no-agents"          # nobody logged in anywhere: CC_QUEUE empty → callback-request IVR
    callback_offer = "cc-callback-offer"  # long wait: CC_QUEUE set, dialplan offers "press 1 for a callback"

    [routing.after_hours]               # line → queue still answered when closed (default: none, all lines
    # roadside = "roadside-24h"         # take the callback flow)

Skills as penalties (app_queue has no skills): in each queue a member's penalty says how well they fit its
calls — **0–4 primary skill, 5–9 secondary skill, 10+ backup** (another department helping out). A caller's
``CC_MAX_PENALTY`` (the dialplan sets ``QUEUE_MAX_PENALTY`` from it) chooses who may ring: the normal band (5:
primary + secondary); when the live view shows no free member within the band, the widened band (10). A language
without its own queue can use a band of its own: e.g. give English-speaking members penalties 0–1 in each queue
and set ``languages.en.max_penalty = 1``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from routing.value import DEFAULT_VIP_TIERS, TIERS

__all__ = ["RoutingRules", "LanguageRule", "RulesError", "SAFE_NAME", "ROLES"]

SAFE_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
"""Queue and prompt names: they travel through MSet and QUEUE(), so no spaces, commas, quotes or '$'."""
_PROMPT: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,63}$")
ROLES: Final = ("consultant", "advisor")
_MAX_OVERFLOW_HOPS: Final = 3


class RulesError(ValueError):
    """A bad routing config value; ``key`` is its dotted path (``routing.priority.gold``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True, slots=True)
class LanguageRule:
    """``queue_template``: per-language queue name from the base queue (``"{queue}-en"``), used when the live
    view has that queue with members logged in; None = no language queues. ``max_penalty``: band within the base
    queue when no language queue is used; None = the normal band."""

    queue_template: str | None = None
    max_penalty: int | None = None


def _default_priority() -> dict[str, int]:
    return {"diamond": 10, "gold": 8, "silver": 5, "bronze": 3, "prospect": 1}


def _default_timeouts() -> dict[str, int]:
    return {"diamond": 600, "gold": 480, "silver": 300, "bronze": 300, "prospect": 300}


def _default_queues() -> dict[str, dict[str, str]]:
    return {
        "sales": {"diamond": "vip", "gold": "vip"},
        "service": {"diamond": "vip", "gold": "vip"},
        "complaints": {"*": "complaints"},
    }


def _default_agent_lines() -> dict[str, str]:
    return {"sales": "consultant", "hotline": "consultant", "service": "advisor"}


def _default_languages() -> dict[str, LanguageRule]:
    return {"en": LanguageRule(queue_template="{queue}-en")}


@dataclass(frozen=True, slots=True)
class RoutingRules:
    """The routing policy. Field names mirror the config schema in the module docstring."""

    vip_tiers: frozenset[str] = DEFAULT_VIP_TIERS
    max_priority: int = 12
    callback_ewt_seconds: int = 180
    default_aht_seconds: float = 180.0
    priority: Mapping[str, int] = field(default_factory=_default_priority)
    complaint_bonus: int = 2
    repeat_bonus: int = 1
    repeat_min_calls: int = 1
    vip_bonus: int = 1
    queue_timeout: Mapping[str, int] = field(default_factory=_default_timeouts)
    queues: Mapping[str, Mapping[str, str]] = field(default_factory=_default_queues)
    overflow: Mapping[str, str] = field(default_factory=dict)
    agent_ring_seconds: int = 15
    agent_queue_template: str = "agent-{ext}"
    agent_lines: Mapping[str, str] = field(default_factory=_default_agent_lines)
    max_penalty: int = 5
    widened_max_penalty: int = 10
    languages: Mapping[str, LanguageRule] = field(default_factory=_default_languages)
    announce_after_hours: str = "cc-after-hours"
    announce_no_agents: str = "cc-no-agents"
    announce_callback_offer: str = "cc-callback-offer"
    after_hours: Mapping[str, str] = field(default_factory=dict)
    max_overflow_hops: int = _MAX_OVERFLOW_HOPS
    fallback_queue: str = "default"

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, *, path: str = "routing") -> RoutingRules:
        """Build rules from the ``[routing]`` config table (see the module docstring); raises RulesError."""
        if d is None:
            return cls()
        r = _Reader()
        r.mapping(d, path)
        r.only(d, path, ("vip_tiers", "max_priority", "callback_ewt_seconds", "default_aht_seconds", "priority",
                         "modifiers", "queue_timeout", "queues", "overflow", "preferred_agent", "penalty",
                         "languages", "announce", "after_hours", "fallback_queue"))
        kw: dict[str, Any] = {}
        if "vip_tiers" in d:
            kw["vip_tiers"] = frozenset(r.tier_list(d["vip_tiers"], f"{path}.vip_tiers"))
        if "max_priority" in d:
            kw["max_priority"] = r.integer(d["max_priority"], f"{path}.max_priority", 0, 1_000_000)
        if "callback_ewt_seconds" in d:
            kw["callback_ewt_seconds"] = r.integer(d["callback_ewt_seconds"], f"{path}.callback_ewt_seconds",
                                                   0, 86_400)
        if "default_aht_seconds" in d:
            kw["default_aht_seconds"] = r.number(d["default_aht_seconds"], f"{path}.default_aht_seconds", 1, 86_400)
        if "priority" in d:
            kw["priority"] = {**_default_priority(),
                              **r.tier_map(d["priority"], f"{path}.priority", lambda v, k: r.integer(v, k, 0,
                                                                                                     1_000_000))}
        if "modifiers" in d:
            m = r.mapping(d["modifiers"], f"{path}.modifiers")
            r.only(m, f"{path}.modifiers", ("open_complaint", "repeat_caller", "repeat_min_calls", "vip"))
            for key, attr, lo in (("open_complaint", "complaint_bonus", 0), ("repeat_caller", "repeat_bonus", 0),
                                  ("repeat_min_calls", "repeat_min_calls", 1), ("vip", "vip_bonus", 0)):
                if key in m:
                    kw[attr] = r.integer(m[key], f"{path}.modifiers.{key}", lo, 1000)
        if "queue_timeout" in d:
            kw["queue_timeout"] = {**_default_timeouts(),
                                   **r.tier_map(d["queue_timeout"], f"{path}.queue_timeout",
                                                lambda v, k: r.integer(v, k, 1, 86_400))}
        if "queues" in d:
            q = r.mapping(d["queues"], f"{path}.queues")
            queues: dict[str, dict[str, str]] = {k: dict(v) for k, v in _default_queues().items()}
            for line, table in q.items():
                lkey = f"{path}.queues.{r.name(line, f'{path}.queues')}"
                queues[line] = r.tier_map(table, lkey, r.queue_name, wildcard=True)
            kw["queues"] = queues
        if "fallback_queue" in d:
            kw["fallback_queue"] = r.queue_name(d["fallback_queue"], f"{path}.fallback_queue")
        if "overflow" in d:
            o = r.mapping(d["overflow"], f"{path}.overflow")
            kw["overflow"] = {r.queue_name(k, f"{path}.overflow"): r.queue_name(v, f"{path}.overflow.{k}")
                              for k, v in o.items()}
        if "preferred_agent" in d:
            p = r.mapping(d["preferred_agent"], f"{path}.preferred_agent")
            r.only(p, f"{path}.preferred_agent", ("ring_seconds", "queue_template", "lines"))
            if "ring_seconds" in p:
                kw["agent_ring_seconds"] = r.integer(p["ring_seconds"], f"{path}.preferred_agent.ring_seconds",
                                                     1, 600)
            if "queue_template" in p:
                kw["agent_queue_template"] = r.agent_template(p["queue_template"],
                                                              f"{path}.preferred_agent.queue_template")
            if "lines" in p:
                lines = r.mapping(p["lines"], f"{path}.preferred_agent.lines")
                agent_lines: dict[str, str] = {}
                for line, role in lines.items():
                    lkey = f"{path}.preferred_agent.lines.{r.name(line, f'{path}.preferred_agent.lines')}"
                    if role not in ROLES:
                        raise RulesError(lkey, f"expected one of {', '.join(ROLES)}, got {role!r}")
                    agent_lines[line] = role
                kw["agent_lines"] = agent_lines
        if "penalty" in d:
            p = r.mapping(d["penalty"], f"{path}.penalty")
            r.only(p, f"{path}.penalty", ("max", "widened"))
            if "max" in p:
                kw["max_penalty"] = r.integer(p["max"], f"{path}.penalty.max", 0, 1_000_000)
            if "widened" in p:
                kw["widened_max_penalty"] = r.integer(p["widened"], f"{path}.penalty.widened", 0, 1_000_000)
        if "languages" in d:
            langs = r.mapping(d["languages"], f"{path}.languages")
            languages: dict[str, LanguageRule] = dict(_default_languages())
            for lang, spec in langs.items():
                lkey = f"{path}.languages.{r.name(lang, f'{path}.languages')}"
                s = r.mapping(spec, lkey)
                r.only(s, lkey, ("queue_template", "max_penalty"))
                template = s.get("queue_template")
                if template is not None:
                    template = r.language_template(template, f"{lkey}.queue_template")
                band = s.get("max_penalty")
                if band is not None:
                    band = r.integer(band, f"{lkey}.max_penalty", 0, 1_000_000)
                languages[lang] = LanguageRule(queue_template=template, max_penalty=band)
            kw["languages"] = languages
        if "announce" in d:
            a = r.mapping(d["announce"], f"{path}.announce")
            r.only(a, f"{path}.announce", ("after_hours", "no_agents", "callback_offer"))
            for key in ("after_hours", "no_agents", "callback_offer"):
                if key in a:
                    kw["announce_" + key] = r.prompt(a[key], f"{path}.announce.{key}")
        if "after_hours" in d:
            ah = r.mapping(d["after_hours"], f"{path}.after_hours")
            kw["after_hours"] = {r.name(k, f"{path}.after_hours"): r.queue_name(v, f"{path}.after_hours.{k}")
                                 for k, v in ah.items()}
        try:
            return cls(**kw)
        except RulesError as exc:
            raise RulesError(f"{path}.{exc.key}", exc.message) from None

    def to_dict(self) -> dict[str, Any]:
        """The rules in the ``from_dict`` schema (for display and round-trips)."""
        return {
            "vip_tiers": sorted(self.vip_tiers),
            "max_priority": self.max_priority,
            "callback_ewt_seconds": self.callback_ewt_seconds,
            "default_aht_seconds": self.default_aht_seconds,
            "priority": dict(self.priority),
            "modifiers": {"open_complaint": self.complaint_bonus, "repeat_caller": self.repeat_bonus,
                          "repeat_min_calls": self.repeat_min_calls, "vip": self.vip_bonus},
            "queue_timeout": dict(self.queue_timeout),
            "queues": {line: dict(t) for line, t in self.queues.items()},
            "overflow": dict(self.overflow),
            "preferred_agent": {"ring_seconds": self.agent_ring_seconds,
                                "queue_template": self.agent_queue_template, "lines": dict(self.agent_lines)},
            "penalty": {"max": self.max_penalty, "widened": self.widened_max_penalty},
            "languages": {lang: {k: v for k, v in (("queue_template", rule.queue_template),
                                                   ("max_penalty", rule.max_penalty)) if v is not None}
                          for lang, rule in self.languages.items()},
            "announce": {"after_hours": self.announce_after_hours, "no_agents": self.announce_no_agents,
                         "callback_offer": self.announce_callback_offer},
            "after_hours": dict(self.after_hours),
            "fallback_queue": self.fallback_queue,
        }


def _validate(rules: RoutingRules) -> None:
    """Invariants of a RoutingRules built in code (from_dict has already checked types)."""
    for tier in TIERS:
        if tier not in rules.priority:
            raise RulesError(f"priority.{tier}", "missing")
        if tier not in rules.queue_timeout:
            raise RulesError(f"queue_timeout.{tier}", "missing")
    for tier, value in rules.priority.items():
        if value > rules.max_priority:
            raise RulesError(f"priority.{tier}", f"{value} is above max_priority {rules.max_priority}")
    for tier in rules.vip_tiers:
        if tier not in TIERS:
            raise RulesError("vip_tiers", f"unknown tier {tier!r} (expected {', '.join(TIERS)})")
    for line, table in rules.queues.items():
        for tier, queue in table.items():
            if tier != "*" and tier not in TIERS:
                raise RulesError(f"queues.{line}.{tier}", f"unknown tier (expected {', '.join(TIERS)} or '*')")
            if not SAFE_NAME.match(queue):
                raise RulesError(f"queues.{line}.{tier}", f"unsafe queue name {queue!r}")
    for name in (*rules.overflow.keys(), *rules.overflow.values(), *rules.after_hours.values(), rules.fallback_queue):
        if not SAFE_NAME.match(name):
            raise RulesError("overflow", f"unsafe queue name {name!r}")
    if rules.widened_max_penalty < rules.max_penalty:
        raise RulesError("penalty.widened", "must be ≥ penalty.max")
    for name in (rules.announce_after_hours, rules.announce_no_agents, rules.announce_callback_offer):
        if not _PROMPT.match(name):
            raise RulesError("announce", f"unsafe prompt name {name!r}")
    if len({rules.announce_after_hours, rules.announce_no_agents, rules.announce_callback_offer}) != 3:
        raise RulesError("announce", "the three prompts must differ (the dialplan tells them apart by name)")
    _check_agent_template(rules.agent_queue_template, "preferred_agent.queue_template")
    for lang, rule in rules.languages.items():
        if rule.queue_template is not None:
            _check_language_template(rule.queue_template, f"languages.{lang}.queue_template")
    for line, role in rules.agent_lines.items():
        if role not in ROLES:
            raise RulesError(f"preferred_agent.lines.{line}", f"expected one of {', '.join(ROLES)}, got {role!r}")


def _check_agent_template(template: str, key: str) -> None:
    try:
        sample = template.format(ext="8001")
    except (KeyError, IndexError, ValueError) as exc:
        raise RulesError(key, f"bad template {template!r} (placeholder: {{ext}}, the agent's extension): {exc}") \
            from None
    if "{ext}" not in template or not SAFE_NAME.match(sample):
        raise RulesError(key, f"template {template!r} must contain {{ext}} and give a safe queue name")


def _check_language_template(template: str, key: str) -> None:
    try:
        sample = template.format(queue="sales")
    except (KeyError, IndexError, ValueError) as exc:
        raise RulesError(key, f"bad template {template!r} (placeholder: {{queue}}): {exc}") from None
    if "{queue}" not in template or not SAFE_NAME.match(sample):
        raise RulesError(key, f"template {template!r} must contain {{queue}} and give a safe queue name")


class _Reader:
    """Typed reads with error messages that name the key."""

    @staticmethod
    def mapping(value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise RulesError(key, f"expected a table, got {type(value).__name__}")
        for k in value:
            if not isinstance(k, str):
                raise RulesError(key, f"keys must be text, got {k!r}")
        return value

    @staticmethod
    def only(value: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> None:
        for k in value:
            if k not in allowed:
                raise RulesError(f"{key}.{k}", f"unknown key (expected one of {', '.join(allowed)})")

    @staticmethod
    def integer(value: Any, key: str, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RulesError(key, f"expected an integer, got {value!r}")
        if not lo <= value <= hi:
            raise RulesError(key, f"must be within {lo}..{hi}, got {value}")
        return value

    @staticmethod
    def number(value: Any, key: str, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RulesError(key, f"expected a number, got {value!r}")
        if not lo <= value <= hi:
            raise RulesError(key, f"must be within {lo:g}..{hi:g}, got {value}")
        return float(value)

    @staticmethod
    def name(value: Any, key: str) -> str:
        if not isinstance(value, str) or not SAFE_NAME.match(value):
            raise RulesError(key, f"expected a simple name (letters, digits, _ . -), got {value!r}")
        return value

    @staticmethod
    def queue_name(value: Any, key: str) -> str:
        if not isinstance(value, str) or not SAFE_NAME.match(value):
            raise RulesError(key, f"expected a queue name (letters, digits, _ . -; no spaces), got {value!r}")
        return value

    @staticmethod
    def prompt(value: Any, key: str) -> str:
        if not isinstance(value, str) or not _PROMPT.match(value):
            raise RulesError(key, f"expected a prompt name (letters, digits, _ . - /), got {value!r}")
        return value

    @staticmethod
    def tier_list(value: Any, key: str) -> list[str]:
        if not isinstance(value, list | tuple):
            raise RulesError(key, f"expected a list of tiers, got {value!r}")
        for tier in value:
            if tier not in TIERS:
                raise RulesError(key, f"unknown tier {tier!r} (expected {', '.join(TIERS)})")
        return list(value)

    @staticmethod
    def agent_template(value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise RulesError(key, f"expected text, got {value!r}")
        _check_agent_template(value, key)
        return value

    @staticmethod
    def language_template(value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise RulesError(key, f"expected text, got {value!r}")
        _check_language_template(value, key)
        return value

    def tier_map(self, value: Any, key: str, read: Callable[[Any, str], Any], *,
                 wildcard: bool = False) -> dict[str, Any]:
        m = self.mapping(value, key)
        out: dict[str, Any] = {}
        for tier, v in m.items():
            if tier not in TIERS and not (wildcard and tier == "*"):
                expected = ", ".join(TIERS) + (" or '*'" if wildcard else "")
                raise RulesError(f"{key}.{tier}", f"unknown tier (expected {expected})")
            out[tier] = read(v, f"{key}.{tier}")
        return out
