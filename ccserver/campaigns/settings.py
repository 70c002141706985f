"""The ``[campaigns]`` settings as one typed object (validated at start; errors name the key)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ccserver.campaigns.compliance import MARKETING_TYPES, RetryPolicy
from ccserver.campaigns.windows import CallingWindow, WindowError, parse_window
from ccserver.db.models import CAMPAIGN_TYPES
from ccserver.dialer.pacing import PacingSettings
from ccserver.texts import T

__all__ = ["CampaignSettings", "CampaignSettingsError"]


class CampaignSettingsError(ValueError):
    pass


@dataclass(frozen=True)
class CampaignSettings:
    window: CallingWindow = field(default_factory=CallingWindow)  # global: every campaign's window lies inside it
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    pacing: PacingSettings = field(default_factory=PacingSettings)
    abandon_window_seconds: float = 3600.0
    abandon_after_seconds: float = 2.0
    marketing_types: frozenset[str] = MARKETING_TYPES
    outbound_context: str = "ccserver-outbound"
    dial: str = "PJSIP/{number}@trunk"
    amd: bool = False
    lease_ttl_seconds: float = 15.0
    originate_timeout_seconds: float = 30.0
    preview_hold_seconds: float = 600.0
    preview_scripts: Mapping[str, str] = field(default_factory=dict)  # by campaign type
    refresh_hour: int = 6  # local hour the due-date campaigns take the newly due customers
    preview_disposition_seconds: float = 300.0  # a preview call ended this long without a disposition: released
    prewrite_seconds: float = 1.0  # the dialer writes about this much of its lines ahead (0: each before its send)
    servers: tuple[str, ...] = ()  # Asterisk servers the dialer uses (empty: every configured one)
    store_servers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # store code -> its servers

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CampaignSettings:
        def key(name: str, default: Any) -> Any:
            return values.get(name, default)

        try:
            holidays = frozenset(date.fromisoformat(str(d)) for d in key("holidays", []))
        except ValueError:
            raise CampaignSettingsError(T("campaigns.holidays: expected dates such as 2026-10-01")) from None
        try:
            window = parse_window({"start": key("window_start", "09:00"), "end": key("window_end", "20:00")},
                                  holidays)
        except WindowError as exc:
            raise CampaignSettingsError(T("campaigns.{value}", value=str(exc).replace('window.', 'window_'))) from None
        spacing = key("retry_spacing", None)
        try:
            policy = RetryPolicy(int(key("max_attempts", 3)),
                                 {k: float(v) for k, v in spacing.items()} if spacing else RetryPolicy().spacing)
        except (ValueError, TypeError, AttributeError) as exc:
            raise CampaignSettingsError(T("campaigns.retry_spacing / max_attempts: {exc}", exc=exc)) from None
        try:
            pacing = PacingSettings(abandon_cap=float(key("abandon_cap", 0.03)))
        except ValueError as exc:
            raise CampaignSettingsError(T("campaigns.abandon_cap: {exc}", exc=exc)) from None
        marketing = frozenset(key("marketing_types", sorted(MARKETING_TYPES)))
        unknown = marketing - set(CAMPAIGN_TYPES)
        if unknown:
            raise CampaignSettingsError(T("campaigns.marketing_types: unknown type(s) {unknown}",
                                          unknown=sorted(unknown)))
        return cls(window, policy, pacing, float(key("abandon_window_seconds", 3600.0)),
                   float(key("abandon_after_seconds", 2.0)), marketing,
                   str(key("outbound_context", "ccserver-outbound")), _dial(key("dial", "PJSIP/{number}@trunk")),
                   bool(key("amd", False)),
                   float(key("lease_ttl_seconds", 15.0)), float(key("originate_timeout_seconds", 30.0)),
                   float(key("preview_hold_seconds", 600.0)), _scripts(key("preview_scripts", {})),
                   int(key("refresh_hour", 6)), float(key("preview_disposition_seconds", 300.0)),
                   _seconds(key("prewrite_seconds", 1.0), "prewrite_seconds"),
                   _names(key("servers", []), "servers"), _store_servers(key("store_servers", {})))

    def check_servers(self, configured: list[str]) -> None:
        """Every server named here must be configured (``[asterisk.<name>]``)."""
        named = set(self.servers).union(*self.store_servers.values()) if self.store_servers else set(self.servers)
        unknown = sorted(named - set(configured))
        if unknown:
            raise CampaignSettingsError(T("campaigns.servers / store_servers: unknown Asterisk server(s) {unknown}",
                                          unknown=unknown))

    @classmethod
    def from_config(cls, config: Any) -> CampaignSettings:
        return cls.from_dict(config.section("campaigns"))


def _seconds(value: Any, name: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise CampaignSettingsError(T("campaigns.{name}: a number of seconds", name=name)) from None
    if not 0 <= seconds <= 10:
        raise CampaignSettingsError(T("campaigns.{name}: between 0 and 10 seconds", name=name))
    return seconds


def _names(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise CampaignSettingsError(T("campaigns.{name}: a list of Asterisk server names", name=name))
    return tuple(value)


def _store_servers(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise CampaignSettingsError(T("campaigns.store_servers: a table of store code = server name(s)"))
    return {str(k): _names(v, f"store_servers.{k}") for k, v in value.items()}


def _dial(value: Any) -> str:
    text = str(value).strip()
    if "{number}" not in text or any(ch in text for ch in "\r\n\0,\"'\\ ") or "/" not in text:
        raise CampaignSettingsError(T("campaigns.dial: a dial string with {number}, e.g. PJSIP/{number}@trunk"))
    return text


def _scripts(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise CampaignSettingsError(T("campaigns.preview_scripts: a table of campaign type = script text"))
    unknown = set(value) - set(CAMPAIGN_TYPES)
    if unknown:
        raise CampaignSettingsError(T("campaigns.preview_scripts: unknown type(s) {unknown}", unknown=sorted(unknown)))
    return {str(k): str(v) for k, v in value.items()}
