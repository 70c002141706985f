"""``ccserver check``: is this deployment ready? Database, Redis, AMI user and privileges, FastAGI, prompts.

Each check returns a :class:`Result` (``ok`` True/False, or None when it does not apply); the command prints one
line per check and exits 1 when any failed. The AMI check logs in as the configured user (MD5 challenge, the
secret never on the wire) and asks ``ListCommands``: Asterisk lists every action the user's ``write`` classes
reach (manager.c ``action_listcommands``, ``"%s: %s (Priv: %s)"``), so an action whose classes are all among
``system``, ``command`` and ``config`` proves the user may write one of them — more than ccserver needs (it
would let a stolen secret run shell commands or rewrite the configuration) — and the check fails.
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass
from typing import Any

from ccserver.config import Config

DANGEROUS = frozenset({"system", "command", "config"})
TIMEOUT = 5.0


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool | None  # None: not applicable here (skipped)
    detail: str

    def line(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[self.ok]
        return f"{mark} {self.name}: {self.detail}"


def check_database(config: Config) -> Result:
    from ccserver.db.migrate import current_revision, head_revision
    from ccserver.server import SchemaNotReady, check_schema

    try:
        check_schema(config.database_url)
    except SchemaNotReady as exc:
        return Result("database", False, str(exc))
    except Exception as exc:  # noqa: BLE001 - unreachable, bad credentials …: say which
        return Result("database", False, f"unreachable ({type(exc).__name__})")
    return Result("database", True, f"reachable, at revision {current_revision(config.database_url)} "
                                    f"(head {head_revision()})")


def check_redis(config: Config) -> Result:
    if not config.redis.url:
        return Result("redis", None, "not configured (one node only: sessions, budgets and reloads stay local)")
    import redis

    try:
        client = redis.Redis.from_url(config.redis.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001
        return Result("redis", False, f"unreachable ({type(exc).__name__})")
    return Result("redis", True, "reachable")


class AMIError(Exception):
    pass


def _safe(value: str, what: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise AMIError(f"the configured {what} contains a line break or NUL")
    return value


class _AMI:
    """A minimal blocking AMI conversation (the check runs once, from a shell)."""

    def __init__(self, host: str, port: int, timeout: float):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = self.sock.makefile("rb")
        self.counter = 0

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def banner(self) -> str:
        return self.reader.readline(256).decode("utf-8", "replace").strip()

    def action(self, name: str, **fields: str) -> tuple[dict[str, str], list[str]]:
        """Send an action; its response's headers and its other lines (ListCommands' list has no fixed keys)."""
        self.counter += 1
        aid = f"ccserver-check-{self.counter}"
        lines = [f"Action: {name}", f"ActionID: {aid}"] + [f"{k}: {_safe(v, k)}" for k, v in fields.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        while True:
            message = self._message()
            headers = dict(line.split(": ", 1) for line in message if ": " in line)
            if "Event" not in headers and headers.get("ActionID") == aid:
                return headers, message

    def _message(self) -> list[str]:
        lines: list[str] = []
        while True:
            raw = self.reader.readline(65536)
            if not raw:
                raise AMIError("Asterisk closed the connection")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                if lines:
                    return lines
                continue
            lines.append(line)


def dangerous_actions(listed: list[str]) -> list[str]:
    """From ListCommands' lines (``Name: synopsis (Priv: a,b,all)``): the actions whose classes are all among
    system/command/config (reachable only with one of those in the user's ``write``)."""
    found = []
    for line in listed:
        name, sep, rest = line.partition(": ")
        if not sep or "(Priv: " not in rest or name in ("Response", "ActionID", "Message"):
            continue
        classes = {c.strip() for c in rest.rsplit("(Priv: ", 1)[1].rstrip(")").split(",")} - {"all", "<none>", ""}
        if classes and classes <= DANGEROUS:
            found.append(f"{name} ({','.join(sorted(classes))})")
    return found


def ami_privileges(host: str, port: int, username: str, secret: str, timeout: float = TIMEOUT) -> list[str]:
    """Log in and return the dangerous actions the user may run (empty: the privileges are right)."""
    ami = _AMI(host, port, timeout)
    try:
        banner = ami.banner()
        if not banner.startswith("Asterisk Call Manager"):
            raise AMIError(f"not an Asterisk manager port (banner {banner[:40]!r})")
        challenge, _ = ami.action("Challenge", AuthType="MD5")
        if challenge.get("Response") == "Success" and challenge.get("Challenge"):
            key = hashlib.md5((challenge["Challenge"] + secret).encode(), usedforsecurity=False).hexdigest()
            login, _ = ami.action("Login", AuthType="MD5", Username=username, Key=key, Events="off")
        else:
            login, _ = ami.action("Login", Username=username, Secret=secret, Events="off")
        if login.get("Response") != "Success":
            raise AMIError(f"login as {username!r} refused: {login.get('Message', 'no reason given')}")
        listed, lines = ami.action("ListCommands")
        if listed.get("Response") != "Success":
            raise AMIError(f"ListCommands refused: {listed.get('Message', '')}")
        try:
            ami.action("Logoff")
        except (AMIError, OSError):
            pass
        return dangerous_actions(lines)
    finally:
        ami.close()


def check_ami(config: Config) -> list[Result]:
    servers = config.ami_servers()
    if not servers:
        return [Result("ami", None, "no Asterisk configured (ami.host / ami.servers)")]
    results = []
    for server in servers:
        name = f"ami {server.name} ({server.host}:{server.port}, user {server.username})"
        try:
            dangerous = ami_privileges(server.host, server.port, server.username, server.secret)
        except (OSError, AMIError) as exc:
            results.append(Result(name, False, str(exc) if isinstance(exc, AMIError) else
                                  f"unreachable ({type(exc).__name__}: {exc.strerror or exc})"))
            continue
        if dangerous:
            results.append(Result(name, False, "the manager user has too much privilege: it may write "
                                  f"system, command or config ({', '.join(dangerous[:6])}); remove those from "
                                  "`write =` in manager.conf (ccserver needs call,agent,user,originate,reporting)"))
        else:
            results.append(Result(name, True, "login accepted; no system, command or config write"))
    return results


def check_fastagi(config: Config) -> Result:
    host, port = config.agi.listen.host, config.agi.listen.port
    target = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a listen address, read here
    try:
        with socket.create_connection((target, port), timeout=TIMEOUT):
            pass
    except OSError as exc:
        return Result("fastagi", False, f"nothing answers on {target}:{port} ({exc.strerror or exc}): is "
                                        "`ccserver run` running?")
    return Result("fastagi", True, f"{target}:{port} accepts connections")


def check_prompts(config: Config) -> Result:
    from pathlib import Path

    from ccserver.asterisk.prompts import LANGUAGES, missing_prompts, played_prompts
    from ccserver.callrouting.settings import RoutingSettings
    from ivr.settings import IVRSettings

    sound_dir = config.prompts.sound_dir
    if not sound_dir:
        return Result("prompts", None, "prompts.sound_dir is not set: cannot check the sound files")
    if not Path(sound_dir).is_dir():
        return Result("prompts", False, f"prompts.sound_dir {sound_dir} is not a folder")
    played = played_prompts(RoutingSettings.from_config(config), IVRSettings.from_dict(config.section("ivr")))
    missing = missing_prompts(sound_dir, played, LANGUAGES)
    if missing:
        return Result("prompts", False, f"{len(missing)} of {len(played) * len(LANGUAGES)} missing in {sound_dir} "
                                        f"({', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}); "
                                        "`ccserver prompts build` renders them")
    return Result("prompts", True, f"all {len(played)} prompts present in zh and en")


def run_checks(config: Config) -> list[Result]:
    results: list[Result] = [check_database(config), check_redis(config)]
    results += check_ami(config)
    results += [check_fastagi(config), check_prompts(config)]
    return results


def main(config: Config, out: Any) -> int:
    results = run_checks(config)
    for result in results:
        print(result.line(), file=out)
    failed = [r for r in results if r.ok is False]
    print(f"{len(failed)} check(s) failed" if failed else "all checks passed", file=out)
    return 1 if failed else 0
