"""Layered configuration: built-in defaults -> TOML file -> CCSERVER_<SECTION>_<KEY> env -> flags.

Every value is validated once at start-up. A bad value raises ConfigError with one line naming the
key and what is wrong; unknown keys are reported the same way so typos never pass silently.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import tomllib
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import phonenumbers

from ccserver.redact import mask_url
from ivr.settings import KEYS as IVR_KEYS

ENV_PREFIX = "CCSERVER_"
# Keys whose values are never printed (logs, `ccserver config show`).
SECRET_KEYS = {("server", "secret_key"), ("ami", "secret"), ("http", "metrics_token"), ("notify", "webhook_secret")}
# URLs that may carry a password: printed only through mask_url.
URL_KEYS = {("database", "url"), ("redis", "url"), ("ws", "public_url"), ("notify", "webhook_url")}


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid."""


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _parse_listen(value: Any) -> Listen:
    text = str(value).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError("expected host:port")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost" and not host.replace("-", "").replace(".", "").isalnum():
            raise ValueError(f"bad host {host!r}") from None
    port = int(port_text.strip())
    if not 0 <= port < 65536:  # 0: any free port (the startup banner says which)
        raise ValueError("port must be 0-65535")
    return Listen(host, port)


def _parse_port(value: Any) -> int:
    port = int(str(value).strip())
    if not 0 < port < 65536:
        raise ValueError("port must be 1-65535")
    return port


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


def _parse_positive_float(value: Any) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError("must be greater than 0")
    return number


def _parse_positive_int(value: Any) -> int:
    number = int(str(value).strip())
    if number <= 0:
        raise ValueError("must be greater than 0")
    return number


def _parse_region(value: Any) -> str:
    region = str(value).strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{region!r} is not a phone region code such as CN")
    return region


def _parse_time_zone(value: Any) -> str:
    name = str(value).strip()
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone such as Asia/Shanghai") from None
    return name


def _parse_log_level(value: Any) -> str:
    level = str(value).strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return level


def _parse_db_url(value: Any) -> str:
    from sqlalchemy.engine import make_url

    url = str(value).strip()
    if not url:
        return url
    expected = "expected a SQLAlchemy URL such as postgresql+psycopg://user@host/db"
    if "://" not in url:
        raise ValueError(expected)
    try:
        make_url(url)  # parsed here, so a bad port is a config error (SQLAlchemy's own message repeats the URL)
    except Exception:  # noqa: BLE001 - ArgumentError, or ValueError from a port that is not a number
        raise ValueError(f"{expected} (this one does not parse)") from None
    return url


def _parse_redis_url(value: Any) -> str:
    url = str(value).strip()
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("expected redis://host:port/db or empty")
    return url


@dataclass(frozen=True)
class AMIServer:
    name: str
    host: str
    port: int
    username: str
    secret: str = field(repr=False)


def _parse_ami_servers(value: Any) -> list[AMIServer]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON list of servers: {exc}") from None
    if not isinstance(value, list):
        raise ValueError("expected a list of {name, host, port, username, secret}")
    servers: list[AMIServer] = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ValueError(f"entry {index} is not a table")
        unknown = set(entry) - {"name", "host", "port", "username", "secret"}
        if unknown:
            raise ValueError(f"entry {index}: unknown key(s) {', '.join(sorted(unknown))}")
        name = str(entry.get("name", "")).strip()
        if not name or not all(ch.isalnum() or ch in "-_" for ch in name):
            raise ValueError(f"entry {index}: name must be letters, digits, '-' or '_'")
        if any(s.name == name for s in servers):
            raise ValueError(f"entry {index}: duplicate name {name!r}")
        host = _parse_str(entry.get("host", "")).strip()
        if not host:
            raise ValueError(f"entry {index} ({name}): host is required")
        servers.append(AMIServer(name, host, _parse_port(entry.get("port", 5038)),
                                 _parse_str(entry.get("username", "")), _parse_str(entry.get("secret", ""))))
    return servers


def _parse_dialplan_variables(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON object of NAME: value: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("expected a table of dialplan variable names to values")
    out: dict[str, str] = {}
    for name, raw in value.items():
        text = str(raw)
        if not name or not (name[0].isalpha() or name[0] == "_") or not all(c.isalnum() or c == "_" for c in name):
            raise ValueError(f"{name!r} is not a dialplan variable name")
        if any(ch in text for ch in "\r\n\0,\"\\") or text != text.strip():
            raise ValueError(f"{name}: value must be simple (no CR/LF/NUL, commas, quotes, backslashes)")
        out[name] = text
    return out


def _split_list(value: Any) -> list[str]:
    """A list setting: a TOML array, or from the environment a JSON array or a comma-separated string."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"expected a JSON array or comma-separated values: {exc}") from None
        else:
            value = [part for part in (p.strip() for p in text.split(",")) if part]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings (JSON array or comma-separated)")
    return [v.strip() for v in value if v.strip()]


def _parse_networks(value: Any) -> list[str]:
    """Addresses or CIDR blocks (``127.0.0.1``, ``10.1.0.0/16``, ``::1``), kept in their normalised text form."""
    networks: list[str] = []
    for item in _split_list(value):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR block") from None
    return networks


def _parse_origins(value: Any) -> list[str]:
    """Browser origins such as ``https://cc.example.com`` (scheme://host[:port], no path)."""
    origins: list[str] = []
    for item in _split_list(value):
        scheme, sep, rest = item.partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest.rstrip("/"):
            raise ValueError(f"{item!r} is not an origin such as https://cc.example.com")
        origins.append(f"{scheme}://{rest.rstrip('/').lower()}")
    return origins


def _parse_roles(value: Any) -> list[str]:
    """A list of user roles (ccserver.auth.ROLES)."""
    from ccserver.auth import ROLES

    roles = _split_list(value)
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
    return roles


def _parse_str(value: Any) -> str:
    text = str(value)
    if any(ch in text for ch in "\r\n\0"):
        raise ValueError("must not contain CR, LF or NUL")
    return text


def _parse_float_range(low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        number = float(value)
        if not low <= number <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")
        return number

    return parse


def _parse_int_range(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        number = int(str(value).strip())
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        return number

    return parse


def _parse_language(value: Any) -> str:
    language = str(value).strip().lower()
    if language not in {"zh", "en"}:
        raise ValueError("expected zh or en")
    return language


def _parse_name(value: Any) -> str:
    """A queue, prompt or server name: it ends up in the dialplan, so plain characters only."""
    text = str(value).strip()
    if text and not all(ch.isalnum() or ch in "-_./" for ch in text):
        raise ValueError("letters, digits, '-', '_', '.', '/' only")
    return text


def _parse_table_value(value: Any) -> Any:
    """A routing-rules value: TOML gives it typed; from the environment it is JSON (or a bare word)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _parse_clock_time(value: Any) -> str:
    text = str(value).strip()
    if not text:
        return ""
    hours, sep, minutes = text.partition(":")
    if not sep or not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise ValueError('expected HH:MM such as "03:00", or "" for off')
    return f"{int(hours):02d}:{int(minutes):02d}"


def _parse_tier_shares(value: Any) -> dict[str, float]:
    from routing.value import TierShares

    table = _parse_table_value(value)
    if not isinstance(table, dict) or set(table) - {"diamond", "gold", "silver"}:
        raise ValueError("expected a table of diamond, gold, silver shares")
    shares = TierShares(**{k: float(v) for k, v in table.items()})  # validates the ranges and the sum
    return {"diamond": shares.diamond, "gold": shares.gold, "silver": shares.silver}


def _parse_value_weights(value: Any) -> dict[str, Any]:
    import dataclasses

    from routing.value import ValueWeights

    table = _parse_table_value(value)
    if not isinstance(table, dict):
        raise ValueError("expected a table of ValueWeights fields")
    unknown = set(table) - {f.name for f in dataclasses.fields(ValueWeights)}
    if unknown:
        raise ValueError(f"unknown weight(s) {', '.join(sorted(unknown))}")
    ValueWeights(**table)  # validates budgets, references and half-lives
    return dict(table)


def _parse_webhook_url(value: Any) -> str:
    from urllib.parse import urlsplit

    url = _parse_str(value).strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL, or empty for no webhook")
    return url


def _parse_retry_delays(value: Any) -> list[float]:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else [float(p) for p in text.split(",") if p.strip()]
        except ValueError as exc:
            raise ValueError(f"expected a list of seconds: {exc}") from None
    if not isinstance(value, list) or not value or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 86_400 for v in value):
        raise ValueError("expected a non-empty list of seconds (each > 0 and ≤ 86400) between attempts")
    return [float(v) for v in value]


def _check_tickets(values: dict[str, Any], time_zone: str) -> None:
    """The [tickets] tables are validated as a whole (errors name the key, e.g. tickets.sla.complaint.normal)."""
    from ccserver.tickets.settings import TicketSettings, TicketSettingsError

    try:
        TicketSettings.from_dict({k: v for k, v in values.items() if v is not None}, time_zone)
    except TicketSettingsError as exc:
        raise ConfigError(f"[tickets] {exc}") from None
def _check_desktop(values: dict[str, Any]) -> None:
    """The [desktop] code lists are validated as a whole (errors name the key, e.g. desktop.pause_codes[2].code)."""
    from ccserver.desktop.settings import DesktopSettings, DesktopSettingsError

    try:
        DesktopSettings.from_dict({k: v for k, v in values.items() if v is not None})
    except DesktopSettingsError as exc:
        raise ConfigError(f"[desktop] {exc}") from None
    for key in ("dial_context", "transfer_context"):
        if not values[key]:
            raise ConfigError(f"desktop.{key}: a dialplan context name is required")


def _parse_service_levels(value: Any) -> dict[str, float]:
    """``kpi.service_level_by_queue``: queue name → seconds (TOML table, or JSON from the environment)."""
    table = _parse_table_value(value)
    if not isinstance(table, dict):
        raise ValueError('expected a table of queue = seconds, e.g. { vip = 10 }')
    out: dict[str, float] = {}
    for queue, seconds in table.items():
        name = _parse_name(queue)
        if not name:
            raise ValueError("a queue name may not be empty")
        try:
            number = float(seconds)
        except (TypeError, ValueError):
            raise ValueError(f"{queue}: expected a number of seconds") from None
        if not 1.0 <= number <= 3600.0:
            raise ValueError(f"{queue}: must be between 1 and 3600 seconds")
        out[name] = number
    return out


ROUTING_RULE_KEYS = ("vip_tiers", "max_priority", "callback_ewt_seconds", "default_aht_seconds", "priority",
                     "modifiers", "queue_timeout", "queues", "overflow", "preferred_agent", "penalty", "languages",
                     "announce", "after_hours", "fallback_queue")


def _check_routing(values: dict[str, Any]) -> None:
    """The [routing] table is validated as a whole by the rules themselves (errors name the key)."""
    from routing.rules import RoutingRules, RulesError

    try:
        RoutingRules.from_dict({k: v for k, v in values.items() if v is not None})
    except (RulesError, ValueError, TypeError) as exc:
        raise ConfigError(f"[routing]: {exc}") from None


def _check_campaigns(values: dict[str, Any]) -> None:
    """The [campaigns] section is validated as a whole (window, retry spacing, marketing types)."""
    from ccserver.campaigns.settings import CampaignSettings, CampaignSettingsError

    try:
        CampaignSettings.from_dict({k: v for k, v in values.items() if v is not None})
    except CampaignSettingsError as exc:
        raise ConfigError(f"[campaigns] {exc}") from None


def _check_ivr(values: dict[str, Any]) -> None:
    """The [ivr] table is validated as a whole over the built-in menu (errors name the key)."""
    from ivr.settings import IVRConfigError, IVRSettings

    try:
        IVRSettings.from_dict({k: v for k, v in values.items() if v is not None})
    except IVRConfigError as exc:
        raise ConfigError(f"[ivr] {exc}") from None


# section -> key -> parser. The defaults file must name exactly these keys (a parser that accepts None marks
# a key without a built-in default).
SCHEMA: dict[str, dict[str, Callable[[Any], Any]]] = {
    "server": {
        "data_dir": _parse_str,
        "time_zone": _parse_time_zone,
        "secret_key": _parse_str,
        "log_level": _parse_log_level,
        "log_json": _parse_bool,
        "log_pii": _parse_bool,
    },
    "database": {"url": _parse_db_url},
    "redis": {"url": _parse_redis_url, "max_connections": _parse_int_range(4, 10_000),
              "pool_timeout": _parse_float_range(0.1, 60.0)},
    "ami": {
        "host": _parse_str,
        "port": _parse_port,
        "username": _parse_str,
        "secret": _parse_str,
        "ping_interval": _parse_positive_float,
        "servers": _parse_ami_servers,
    },
    "agi": {
        "listen": _parse_listen,
        "default_variables": _parse_dialplan_variables,
        "allow": _parse_networks,
        "command_timeout": _parse_float_range(1.0, 3600.0),
    },
    "http": {
        "listen": _parse_listen,
        "cookie_secure": _parse_bool,
        "metrics_token": _parse_str,
        "metrics_public": _parse_bool,
        "trusted_proxies": _parse_networks,
        "allowed_origins": _parse_origins,
        "header_timeout": _parse_float_range(1.0, 600.0),
        "idle_timeout": _parse_float_range(1.0, 3600.0),
    },
    "ws": {"listen": _parse_listen, "public_url": _parse_str, "allowed_origins": _parse_origins},
    "screenpop": {"mask_roles": _parse_roles, "replay_frames": _parse_int_range(1, 10_000)},
    "prompts": {"sound_dir": _parse_str},
    "phone": {"default_region": _parse_region},
    "callrouting": {
        "deadline_seconds": _parse_float_range(0.1, 10.0),
        "margin_seconds": _parse_float_range(0.0, 5.0),
        "unknown_did_line": _parse_name,
        "unknown_did_queue": _parse_name,
        "default_area_code": _parse_name,
        "default_language": _parse_language,
        "server": _parse_name,
        "refresh_seconds": _parse_float_range(1.0, 86_400.0),
        "max_pending_lookups": _parse_int_range(1, 1000),
        "max_waiting_lookups": _parse_int_range(0, 100_000),
        "survey_prompt": _parse_name,
        "survey_invalid_prompt": _parse_name,
        "survey_thanks_prompt": _parse_name,
        "survey_timeout_ms": _parse_int_range(0, 60_000),
        "survey_retries": _parse_int_range(0, 5),
    },
    "routing": dict.fromkeys(ROUTING_RULE_KEYS, _parse_table_value),
    "ivr": dict.fromkeys(IVR_KEYS, _parse_table_value),
    "kpi": {
        "short_abandon_seconds": _parse_float_range(0.0, 600.0),
        "service_level_seconds": _parse_float_range(1.0, 3600.0),
        "service_level_by_queue": _parse_service_levels,
    },
    "recordings": {
        "queues": _split_list,
        "lines": _split_list,
        "dir": _parse_name,
        "retention_days": _parse_int_range(0, 3650),
        "notice_prompt": _parse_name,
    },
    "wallboard": {
        "max_updates_per_second": _parse_float_range(0.1, 10.0),
        "vip_tiers": _split_list,
        "service_level_target": _parse_float_range(1.0, 100.0),
    },
    "scores": {"nightly_at": _parse_clock_time, "tier_shares": _parse_tier_shares, "weights": _parse_value_weights},
    "tickets": {
        "categories": _parse_table_value,
        "departments": _parse_table_value,
        "routes": _parse_table_value,
        "sla": _parse_table_value,
        "slots": _parse_table_value,
        "sla_warning_minutes": _parse_float_range(0.0, 10_080.0),
        "sla_check_seconds": _parse_float_range(1.0, 3600.0),
        "resolution_callback": _parse_str,
        "abandoned_min_wait_seconds": _parse_float_range(-1.0, 3600.0),
    },
    "notify": {
        "webhook_url": _parse_webhook_url,
        "webhook_secret": _parse_str,
        "retry_delays": _parse_retry_delays,
        "timeout_seconds": _parse_float_range(1.0, 120.0),
    },
    "desktop": {
        "pause_codes": _parse_table_value,
        "dispositions": _parse_table_value,
        "wrapup_seconds": _parse_float_range(0.0, 3600.0),
        "dial_context": _parse_name,
        "transfer_context": _parse_name,
        "dial_timeout_seconds": _parse_float_range(5.0, 120.0),
    },
    "campaigns": {
        "window_start": _parse_clock_time,
        "window_end": _parse_clock_time,
        "holidays": _split_list,
        "max_attempts": _parse_int_range(1, 20),
        "retry_spacing": _parse_table_value,
        "abandon_cap": _parse_float_range(0.0, 0.5),
        "abandon_window_seconds": _parse_float_range(60.0, 30 * 86_400.0),
        "abandon_after_seconds": _parse_float_range(0.5, 10.0),
        "marketing_types": _split_list,
        "outbound_context": _parse_name,
        "dial": _parse_str,
        "amd": _parse_bool,
        "lease_ttl_seconds": _parse_float_range(3.0, 300.0),
        "originate_timeout_seconds": _parse_float_range(15.0, 120.0),  # the TSR: ring at least 15 s
        "preview_hold_seconds": _parse_float_range(30.0, 86_400.0),
        "preview_scripts": _parse_table_value,
        "refresh_hour": _parse_int_range(0, 23),
        "preview_disposition_seconds": _parse_float_range(30.0, 86_400.0),
        "prewrite_seconds": _parse_float_range(0.0, 10.0),
        "servers": _split_list,
        "store_servers": _parse_table_value,
    },
    "auth": {
        "token_lifetime_hours": _parse_positive_float,
        "login_attempts": _parse_positive_int,
        "address_login_attempts": _parse_positive_int,
        "login_window_seconds": _parse_positive_int,
        "user_cache_seconds": _parse_float_range(0.0, 300.0),
    },
}


class Config:
    """Validated settings, read as ``config.section.key`` or ``config.get("section", "key")``."""

    def __init__(self, values: dict[str, dict[str, Any]], sources: dict[tuple[str, str], str]):
        self._values = values
        self.sources = sources  # where each value came from: default / file / env / flag

    def get(self, section: str, key: str) -> Any:
        return self._values[section][key]

    def section(self, name: str) -> dict[str, Any]:
        """A copy of one section's values, keys without a value left out."""
        return {k: v for k, v in self._values[name].items() if v is not None}

    def __getattr__(self, section: str) -> Any:
        try:
            return _Section(self._values[section])
        except KeyError:
            raise AttributeError(section) from None

    def redacted(self) -> dict[str, dict[str, Any]]:
        """The settings with secrets masked, safe to log or print."""
        out: dict[str, dict[str, Any]] = {}
        for section, keys in self._values.items():
            out[section] = {}
            for key, value in keys.items():
                if (section, key) in SECRET_KEYS and value:
                    value = "********"
                elif (section, key) == ("database", "url"):
                    value = mask_url(self.database_url)  # the database in use (the SQLite file when empty)
                elif (section, key) in URL_KEYS:
                    value = mask_url(value)
                elif isinstance(value, list) and value and isinstance(value[0], AMIServer):
                    value = [{"name": s.name, "host": s.host, "port": s.port, "username": s.username,
                              "secret": "********" if s.secret else ""} for s in value]
                out[section][key] = str(value) if isinstance(value, Listen) else value
        return out

    def ami_servers(self) -> list[AMIServer]:
        """Every Asterisk to connect to: the single host shorthand (named "default") and the servers list."""
        servers: list[AMIServer] = list(self.get("ami", "servers"))
        if self.get("ami", "host"):
            if any(s.name == "default" for s in servers):
                raise ConfigError("ami.host is set and ami.servers also names a server 'default'")
            servers.insert(0, AMIServer("default", self.get("ami", "host"), self.get("ami", "port"),
                                        self.get("ami", "username"), self.get("ami", "secret")))
        return servers

    @property
    def data_dir(self) -> Path:
        return Path(self.get("server", "data_dir"))

    @property
    def database_url(self) -> str:
        url: str = self.get("database", "url")
        if url:
            return url
        return f"sqlite:///{(self.data_dir / 'ccserver.sqlite3').resolve()}"

    @property
    def secret_key_file(self) -> Path:
        """Where a secret key is generated (and then read) when none is configured."""
        return self.data_dir / "secret_key"

    def secret_key(self) -> bytes:
        """The configured secret, or one generated once and kept (0600) in the data folder."""
        configured: str = self.get("server", "secret_key")
        if configured:
            return configured.encode()
        path = self.secret_key_file
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text().strip().encode()


class _Section:
    def __init__(self, values: dict[str, Any]):
        self._values = values

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None


def _builtin_defaults() -> dict[str, dict[str, Any]]:
    text = resources.files("ccserver").joinpath("defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None


def _env_layer(environ: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """CCSERVER_<SECTION>_<KEY>: the section is the first word, the key the rest (lower-cased)."""
    layer: dict[tuple[str, str], str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section, _, key = rest.partition("_")
        if section not in SCHEMA or key not in SCHEMA[section]:
            raise ConfigError(
                f"{name}: unknown setting (expected CCSERVER_<SECTION>_<KEY>, e.g. CCSERVER_DATABASE_URL)"
            )
        layer[(section, key)] = value
    return layer


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[tuple[str, str], Any] | None = None,
) -> Config:
    """Build the validated Config from all four layers, most specific last."""
    environ = os.environ if environ is None else environ
    raw = _builtin_defaults()
    sources: dict[tuple[str, str], str] = {}
    values: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        values[section] = {}
        for key in keys:
            values[section][key] = raw.get(section, {}).get(key)
            sources[(section, key)] = "default"

    if path is not None:
        for section, table in _read_file(path).items():
            if section not in SCHEMA or not isinstance(table, dict):
                raise ConfigError(f"{path}: unknown section [{section}]")
            for key, value in table.items():
                if key not in SCHEMA[section]:
                    raise ConfigError(f"{path}: [{section}] {key}: unknown key")
                values[section][key] = value
                sources[(section, key)] = "file"

    for (section, key), value in _env_layer(environ).items():
        values[section][key] = value
        sources[(section, key)] = "env"

    for (section, key), value in (overrides or {}).items():
        if value is None:
            continue
        values[section][key] = value
        sources[(section, key)] = "flag"

    for section, keys in SCHEMA.items():
        for key, parse in keys.items():
            if values[section][key] is None and parse is _parse_table_value:
                continue  # optional, no built-in default
            try:
                values[section][key] = parse(values[section][key])
            except (ValueError, TypeError) as exc:
                origin = sources[(section, key)]
                hidden = (section, key) in SECRET_KEYS or (section, key) == ("ami", "servers")
                raw_value = values[section][key]
                if (section, key) in URL_KEYS:
                    raw_value = mask_url(str(raw_value))
                shown = "(hidden)" if hidden else repr(raw_value)
                env_name = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
                raise ConfigError(f"{section}.{key} ({env_name}, from {origin}) = {shown}: {exc}") from None
    _check_routing(values["routing"])
    _check_tickets(values["tickets"], values["server"]["time_zone"])
    _check_ivr(values["ivr"])
    _check_desktop(values["desktop"])
    _check_campaigns(values["campaigns"])
    if values["callrouting"]["margin_seconds"] >= values["callrouting"]["deadline_seconds"]:
        raise ConfigError("callrouting.margin_seconds must be below callrouting.deadline_seconds")
    return Config(values, sources)
