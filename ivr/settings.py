"""The IVR's configuration: the ``[ivr]`` table over the built-in default menu (``ivr/default_menu.toml``).

``IVRSettings.from_dict(table)`` merges a config's ``[ivr]`` table over the defaults — a menu or ticket of the same
name replaces the built-in one, ``dids`` and ``lines`` replace the built-in tables whole, scalars replace scalars —
and validates the result as a whole: every action names a menu, ticket or line that exists, every key is one DTMF
key and none collides with ``language_key``, every prompt is in the catalogue (or ``[ivr.prompts]``), every menu is
reachable or not (unreachable menus are allowed). A bad value raises :class:`IVRConfigError` naming the dotted key
(``ivr.menus.main.options.7: unknown menu 'sales2'``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ivr.catalogue import PROMPTS, Prompt
from ivr.ports import SEVERITIES

__all__ = ["Action", "IVRConfigError", "IVRSettings", "Menu", "Start", "TicketSpec", "default_table", "parse_action"]

DTMF_KEYS = frozenset("0123456789*#")
KEYS = ("enabled", "timeout_ms", "retries", "language_key", "operator", "vip_tiers", "booking_slots",
        "booking_after_minutes", "dids", "lines", "menus", "tickets", "prompts")
_SIMPLE_ACTIONS = ("operator", "booking", "status", "route")
_TIERS = ("diamond", "gold", "silver", "bronze", "prospect")


class IVRConfigError(ValueError):
    """A bad ``[ivr]`` value; ``key`` is its dotted path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True, slots=True)
class Action:
    """What a key, a DID or a line leads to: ``kind`` menu / line / operator / booking / status / ticket /
    route, and its ``target`` (the menu, line or ticket name; "" for the others)."""

    kind: str
    target: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else self.kind


def parse_action(text: object, key: str) -> Action:
    if not isinstance(text, str) or not text.strip():
        raise IVRConfigError(key, "expected an action such as \"menu:main\", \"line:sales\" or \"operator\"")
    kind, _, target = text.strip().partition(":")
    if kind in _SIMPLE_ACTIONS and not target:
        return Action(kind)
    if kind in ("menu", "line", "ticket") and target and _plain(target):
        return Action(kind, target)
    raise IVRConfigError(key, f"{text!r} is not an action (menu:NAME, line:LINE, ticket:NAME, operator, booking, "
                              "status, route)")


def _plain(name: str) -> bool:
    return name.isascii() and all(c.isalnum() or c in "-_" for c in name) and len(name) <= 64


@dataclass(frozen=True, slots=True)
class Menu:
    name: str
    prompts: tuple[str, ...]
    options: Mapping[str, Action]
    intro: tuple[str, ...] = ()
    timeout_ms: int | None = None  # None: the [ivr] default
    retries: int | None = None


@dataclass(frozen=True, slots=True)
class TicketSpec:
    name: str
    kind: str
    category: str
    severity: str
    line: str
    priority: int
    prompt: str
    subject: str


@dataclass(frozen=True, slots=True)
class Start:
    """Where a DID's callers start, and their language when their own is not known (None: the DID's)."""

    action: Action
    language: str | None = None


@dataclass(frozen=True)
class IVRSettings:
    enabled: bool = True
    timeout_ms: int = 5000
    retries: int = 2
    language_key: str = "9"
    operator: str = "hotline"
    vip_tiers: tuple[str, ...] = ()
    booking_slots: int = 3
    booking_after_minutes: int = 60
    dids: Mapping[str, Start] = field(default_factory=dict)
    lines: Mapping[str, Start] = field(default_factory=dict)
    menus: Mapping[str, Menu] = field(default_factory=dict)
    tickets: Mapping[str, TicketSpec] = field(default_factory=dict)
    prompts: Mapping[str, Prompt] = field(default_factory=dict)  # a site's own texts

    def start_for(self, did: str, line: str | None) -> Start | None:
        """Where a call to ``did`` (its ``line``; None for a DID routing does not know) starts; None: no IVR
        (routed at once)."""
        if not self.enabled:
            return None
        start = self.dids.get(did) or (self.lines.get(line) if line is not None else None)
        if start is None or start.action.kind == "route":
            return None
        return start

    def menu_timeout(self, menu: Menu) -> int:
        return self.timeout_ms if menu.timeout_ms is None else menu.timeout_ms

    def menu_retries(self, menu: Menu) -> int:
        return self.retries if menu.retries is None else menu.retries

    def prompt_names(self) -> set[str]:
        """Every prompt the configured menus and tickets play."""
        names: set[str] = set()
        for menu in self.menus.values():
            names.update(menu.intro)
            names.update(menu.prompts)
        names.update(t.prompt for t in self.tickets.values())
        return names

    @classmethod
    def from_dict(cls, table: Mapping[str, Any] | None = None) -> IVRSettings:
        merged = _merge(default_table(), dict(table or {}))
        return _build(merged)


def default_table() -> dict[str, Any]:
    """The built-in ``[ivr]`` table (``ivr/default_menu.toml``)."""
    text = resources.files("ivr").joinpath("default_menu.toml").read_text(encoding="utf-8")
    return dict(tomllib.loads(text)["ivr"])


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(over) - set(KEYS))
    if unknown:
        raise IVRConfigError(f"ivr.{unknown[0]}", "unknown key")
    out = dict(base)
    for key, value in over.items():
        if value is None:
            continue
        if key in ("menus", "tickets", "prompts"):
            if not isinstance(value, Mapping):
                raise IVRConfigError(f"ivr.{key}", "expected a table")
            out[key] = {**base.get(key, {}), **value}
        else:
            out[key] = value
    return out


def _int(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise IVRConfigError(key, f"expected a whole number from {low} to {high}, got {value!r}")
    return value


def _names(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and _prompt_name(v) for v in value):
        raise IVRConfigError(key, "expected a list of prompt names (letters, digits, '-', '_')")
    return tuple(value)


def _prompt_name(name: str) -> bool:
    return bool(name) and name.isascii() and name[0].isalnum() and all(c.isalnum() or c in "-_" for c in name)


def _table(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise IVRConfigError(key, "expected a table")
    return value


def _start(value: Any, key: str) -> Start:
    if isinstance(value, Mapping):
        extra = set(value) - {"start", "language"}
        if extra:
            raise IVRConfigError(f"{key}.{sorted(extra)[0]}", "unknown key (start, language)")
        language = value.get("language")
        if language is not None and language not in ("zh", "en"):
            raise IVRConfigError(f"{key}.language", "expected zh or en")
        return Start(parse_action(value.get("start"), f"{key}.start"), language)
    return Start(parse_action(value, key))


def _build(t: dict[str, Any]) -> IVRSettings:
    enabled = t.get("enabled", True)
    if not isinstance(enabled, bool):
        raise IVRConfigError("ivr.enabled", "expected true or false")
    language_key = t.get("language_key", "")
    if isinstance(language_key, int) and not isinstance(language_key, bool) and 0 <= language_key <= 9:
        language_key = str(language_key)  # "9" from the environment (or a file, through JSON) reads as 9
    if not isinstance(language_key, str) or (language_key and language_key not in DTMF_KEYS):
        raise IVRConfigError("ivr.language_key", "expected one DTMF key (0-9, *, #) or \"\" for none")
    operator = t.get("operator")
    if not isinstance(operator, str) or not _plain(operator):
        raise IVRConfigError("ivr.operator", "expected a line name such as hotline")
    tiers = t.get("vip_tiers", [])
    if not isinstance(tiers, list) or any(tier not in _TIERS for tier in tiers):
        raise IVRConfigError("ivr.vip_tiers", f"expected a list of tiers from {', '.join(_TIERS)}")
    extra_prompts: dict[str, Prompt] = {}
    for name, texts in _table(t.get("prompts", {}), "ivr.prompts").items():
        key = f"ivr.prompts.{name}"
        texts = _table(texts, key)
        if not _prompt_name(name) or set(texts) != {"zh", "en"} or not all(
                isinstance(v, str) and v.strip() for v in texts.values()):
            raise IVRConfigError(key, "expected a prompt name with zh = \"…\" and en = \"…\" texts")
        extra_prompts[name] = Prompt(texts["zh"], texts["en"])
    known_prompts = set(PROMPTS) | set(extra_prompts)

    def prompt(name: str, key: str) -> str:
        if name not in known_prompts:
            raise IVRConfigError(key, f"prompt {name!r} is neither in the catalogue nor in [ivr.prompts]")
        return name

    tickets: dict[str, TicketSpec] = {}
    for name, spec in _table(t.get("tickets", {}), "ivr.tickets").items():
        key = f"ivr.tickets.{name}"
        spec = _table(spec, key)
        extra = set(spec) - {"kind", "category", "severity", "line", "priority", "prompt", "subject"}
        if extra:
            raise IVRConfigError(f"{key}.{sorted(extra)[0]}", "unknown key")
        for field_name in ("kind", "category", "line"):
            if not isinstance(spec.get(field_name), str) or not _plain(spec[field_name]):
                raise IVRConfigError(f"{key}.{field_name}", "expected a plain name")
        severity = spec.get("severity", "normal")
        if severity not in SEVERITIES:
            raise IVRConfigError(f"{key}.severity", f"expected one of {', '.join(SEVERITIES)}")
        subject = spec.get("subject", f"{spec['kind']} reported by phone")
        if not isinstance(subject, str) or not subject.strip() or len(subject) > 200:
            raise IVRConfigError(f"{key}.subject", "expected a text of at most 200 characters")
        tickets[name] = TicketSpec(name, spec["kind"], spec["category"], severity, spec["line"],
                                   _int(spec.get("priority", 0), f"{key}.priority", 0, 20),
                                   prompt(spec.get("prompt", "cc-ivr-connecting"), f"{key}.prompt"), subject)

    raw_menus = _table(t.get("menus", {}), "ivr.menus")
    menus: dict[str, Menu] = {}
    for name, spec in raw_menus.items():
        key = f"ivr.menus.{name}"
        spec = _table(spec, key)
        extra = set(spec) - {"intro", "prompts", "options", "timeout_ms", "retries"}
        if extra:
            raise IVRConfigError(f"{key}.{sorted(extra)[0]}", "unknown key")
        prompts = tuple(prompt(p, f"{key}.prompts") for p in _names(spec.get("prompts", []), f"{key}.prompts"))
        if not prompts:
            raise IVRConfigError(f"{key}.prompts", "a menu needs at least one prompt")
        intro = tuple(prompt(p, f"{key}.intro") for p in _names(spec.get("intro", []), f"{key}.intro"))
        options: dict[str, Action] = {}
        for digit, text in _table(spec.get("options", {}), f"{key}.options").items():
            okey = f"{key}.options.{digit}"
            if digit not in DTMF_KEYS:
                raise IVRConfigError(okey, "a key is one of 0-9, * and #")
            if digit == language_key:
                raise IVRConfigError(okey, f"key {digit} is ivr.language_key (it switches the language)")
            action = parse_action(text, okey)
            if action.kind == "route":
                raise IVRConfigError(okey, "route is for a DID or line, not a menu key")
            options[digit] = action
        if not options:
            raise IVRConfigError(f"{key}.options", "a menu needs at least one option")
        timeout = spec.get("timeout_ms")
        retries = spec.get("retries")
        menus[name] = Menu(name, prompts, options, intro,
                           None if timeout is None else _int(timeout, f"{key}.timeout_ms", 500, 60_000),
                           None if retries is None else _int(retries, f"{key}.retries", 0, 5))

    def check(action: Action, key: str) -> Action:
        if action.kind == "menu" and action.target not in menus:
            raise IVRConfigError(key, f"unknown menu {action.target!r}")
        if action.kind == "ticket" and action.target not in tickets:
            raise IVRConfigError(key, f"unknown ticket {action.target!r}")
        return action

    for menu in menus.values():
        for digit, action in menu.options.items():
            check(action, f"ivr.menus.{menu.name}.options.{digit}")
    dids = {}
    for number, value in _table(t.get("dids", {}), "ivr.dids").items():
        start = _start(value, f"ivr.dids.{number}")
        check(start.action, f"ivr.dids.{number}")
        dids[str(number)] = start
    lines = {}
    for line, value in _table(t.get("lines", {}), "ivr.lines").items():
        start = _start(value, f"ivr.lines.{line}")
        check(start.action, f"ivr.lines.{line}")
        lines[str(line)] = start
    return IVRSettings(
        enabled=enabled,
        timeout_ms=_int(t.get("timeout_ms", 5000), "ivr.timeout_ms", 500, 60_000),
        retries=_int(t.get("retries", 2), "ivr.retries", 0, 5),
        language_key=language_key,
        operator=operator,
        vip_tiers=tuple(tiers),
        booking_slots=_int(t.get("booking_slots", 3), "ivr.booking_slots", 1, 9),
        booking_after_minutes=_int(t.get("booking_after_minutes", 60), "ivr.booking_after_minutes", 0, 7 * 24 * 60),
        dids=dids, lines=lines, menus=menus, tickets=tickets, prompts=extra_prompts,
    )
