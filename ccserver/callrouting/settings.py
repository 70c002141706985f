"""Settings of the routing service: a plain dataclass with defaults, read from the config when it has them.

Proposed config (the lead owns ``ccserver/config.py`` / ``defaults.toml``)::

    [callrouting]                      # CCSERVER_CALLROUTING_<KEY>
    deadline_seconds = 1.5             # the dialplan variables are answered within this, SQL/Redis or not
    margin_seconds = 0.1               # kept back from the deadline for decide() + the MSet round trip
    unknown_did_line = "hotline"       # a DID not in the table routes as this line ...
    unknown_did_queue = "hotline"      # ... to this queue
    default_area_code = ""             # area code for local caller numbers on group-wide DIDs ("" = none)
    default_language = "zh"            # CC_LANGUAGE when neither customer nor DID says
    server = "default"                 # AMI server name of the Asterisk running the dialplan (?server= overrides)
    refresh_seconds = 60.0             # reload DIDs / hours / holidays from SQL this often
    max_pending_lookups = 8            # SQL customer lookups at once; beyond: they wait for a slot ...
    max_waiting_lookups = 256          # ... this many at most, each within its deadline; beyond: no lookup
    survey_prompt = "cc-survey"        # "rate us 1 to 5"
    survey_invalid_prompt = "cc-survey-invalid"
    survey_thanks_prompt = "cc-survey-thanks"
    survey_timeout_ms = 5000
    survey_retries = 1

    [routing]                          # the routing rules: RoutingRules.from_dict schema (routing/rules.py)

``phone.default_region`` and ``server.time_zone`` are read from their existing sections.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from routing.rules import RoutingRules

__all__ = ["RoutingSettings"]


@dataclass(frozen=True)
class RoutingSettings:
    rules: Mapping[str, Any] = field(default_factory=dict)  # the [routing] table
    deadline_seconds: float = 1.5
    margin_seconds: float = 0.1
    default_region: str = "CN"
    default_area_code: str | None = None
    default_language: str = "zh"
    time_zone: str = "Asia/Shanghai"
    unknown_did_line: str = "hotline"
    unknown_did_queue: str = "hotline"
    server: str = "default"
    refresh_seconds: float = 60.0
    max_pending_lookups: int = 8
    max_waiting_lookups: int = 256
    survey_prompt: str = "cc-survey"
    survey_invalid_prompt: str = "cc-survey-invalid"
    survey_thanks_prompt: str = "cc-survey-thanks"
    survey_timeout_ms: int = 5000
    survey_retries: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.deadline_seconds <= 10:
            raise ValueError("callrouting.deadline_seconds must be in (0, 10]")
        if not 0 <= self.margin_seconds < self.deadline_seconds:
            raise ValueError("callrouting.margin_seconds must be >= 0 and below deadline_seconds")
        if self.max_pending_lookups < 1:
            raise ValueError("callrouting.max_pending_lookups must be >= 1")
        if self.max_waiting_lookups < 0:
            raise ValueError("callrouting.max_waiting_lookups must be >= 0")
        if self.survey_retries < 0 or self.survey_timeout_ms < 0:
            raise ValueError("callrouting.survey_retries / survey_timeout_ms must be >= 0")

    def routing_rules(self) -> RoutingRules:
        """The rules of the ``[routing]`` table (raises ``routing.rules.RulesError`` naming a bad key)."""
        return RoutingRules.from_dict(self.rules or None)

    @classmethod
    def from_config(cls, config: Any) -> RoutingSettings:
        """Settings from a loaded ``ccserver.config.Config``; sections it does not have yet keep the defaults."""
        known = {f.name for f in dataclasses.fields(cls)} - {"rules"}
        kw: dict[str, Any] = {k: v for k, v in config.section("callrouting").items() if k in known}
        if kw.get("default_area_code") == "":
            kw["default_area_code"] = None
        kw["rules"] = config.section("routing")
        kw["default_region"] = config.get("phone", "default_region")
        kw["time_zone"] = config.get("server", "time_zone")
        return cls(**kw)
