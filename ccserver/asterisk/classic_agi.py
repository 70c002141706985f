"""``ccserver-agi``: classic (stdin/stdout) AGI for sites that cannot open a FastAGI port.

Dialplan: ``AGI(ccserver-agi,incoming,${CC_CAMPAIGN_ID})`` (the program on Asterisk's PATH or in its
agi-bin; arguments after the script name reach the handler as ``session.args``), ``AGI(ccserver-agi,survey,
${CC_DECISION_ID})``. It runs the **same handlers** as the FastAGI server (``RoutingService.incoming`` /
``survey``) in a short-lived process (~40 ms of CPU and ~20 MiB per call, against well under 1 ms for
FastAGI — see DESIGN.md):

1. pyst2's ``asterisk.agi.AGI`` reads the ``agi_*`` block from stdin (it also installs a SIGHUP handler: a
   hangup then surfaces as ``CallerHungUp`` on the next command);
2. Twisted's asyncio reactor is installed, the config loaded (``CCSERVER_CONFIG`` names a TOML file; the
   usual ``CCSERVER_*`` variables apply), the routing data read from SQL once, the SQL customer directory
   built; no AMI here, so the live view is empty;
3. the handler runs on a :class:`PystSession` — an ``AGISession`` whose commands are blocking pyst2 calls,
   each returned as an already-completed request, so handler code is unchanged;
4. stdout is closed as soon as the handler is done (Asterisk continues the dialplan on EOF), and only then
   is the decision record written to SQL.

A handler failure still leaves the call routable: ``agi.default_variables`` are written, as FastAGI does.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, cast

from ccserver.agi.errors import AGICommandFailed, AGIInvalidCommand, AGIUsageError, CallerHungUp
from ccserver.agi.request import AGIRequest
from ccserver.agi.results import AGIResult
from ccserver.agi.session import MINUS_ONE_HANGS_UP, MINUS_TWO_FAILS, AGISession
from ccserver.logs import EscapingFormatter, log_text

__all__ = ["PystSession", "PystTransport", "main"]

log = logging.getLogger("ccserver.agi.classic")
# This program's own variables; not server settings, so they are kept out of the config's CCSERVER_* layer
# (which refuses names it does not know).
LOG_LEVEL_ENV = "CCSERVER_AGI_LOG_LEVEL"
CONFIG_ENV = "CCSERVER_CONFIG"

USAGE = """\
usage: ccserver-agi [SCRIPT [ARG ...]]

Classic AGI for ccserver: Asterisk runs this program and speaks AGI over its stdin/stdout. It runs the same
handlers as the FastAGI server and reads the same settings (CCSERVER_CONFIG names a TOML file; CCSERVER_*).

  SCRIPT   incoming (default) or survey
  ARG      handed to the script, e.g. the campaign id or the decision id

Dialplan:  AGI(ccserver-agi,incoming,${CC_CAMPAIGN_ID})
           AGI(ccserver-agi,survey,${CC_DECISION_ID})
Logging:   CCSERVER_AGI_LOG_LEVEL (default WARNING), on stderr (Asterisk's verbose log)
"""


class PystTransport:
    """What ``AGISession`` needs of its protocol, over pyst2's blocking ``AGI.execute``."""

    def __init__(self, agi: Any) -> None:
        self.agi = agi
        self.dead = False
        self.use_mset = True
        self.command_timeout = 0.0  # unused: over stdin each command blocks until Asterisk answers

    def mset_unavailable(self) -> None:
        self.use_mset = False

    def send(self, data: bytes, flags: int, timeout: float | None = None) -> AGIRequest:
        if self.dead:
            return AGIRequest.failed(CallerHungUp("the channel is gone; command not sent"))
        request = AGIRequest(data, flags)
        try:
            result = self._execute(data.decode("utf-8").rstrip("\n"), flags)
        except CallerHungUp as exc:
            self.dead = True
            request.fail(exc)
        except (AGIInvalidCommand, AGIUsageError, AGICommandFailed) as exc:
            request.fail(exc)
        else:
            request.complete(result)
        return request

    def _execute(self, line: str, flags: int) -> AGIResult:
        from asterisk import agi as pyst

        try:
            answer = self.agi.execute(line)
        except pyst.AGIHangup as exc:  # SIGHUP, SIGPIPE, "(hangup)" in the answer
            raise CallerHungUp(str(exc)) from None
        except pyst.AGIAppError:  # "200 result=-1"
            if flags & MINUS_ONE_HANGS_UP:
                raise CallerHungUp("200 result=-1") from None
            return AGIResult(200, "-1", line="200 result=-1")
        except pyst.AGIInvalidCommand as exc:
            raise AGIInvalidCommand(str(exc)) from None
        except pyst.AGIUsageError as exc:
            raise AGIUsageError(str(exc)) from None
        except pyst.AGIUnknownError as exc:  # 511 (dead channel) and any other code
            if exc.args and exc.args[0] == 511:
                raise CallerHungUp("511 dead channel") from None
            raise AGICommandFailed(f"unexpected answer code {exc.args[0] if exc.args else '?'}") from None
        except (OSError, ValueError) as exc:  # broken pipe; an unsolicited "HANGUP" line pyst2 cannot parse
            raise CallerHungUp(f"AGI pipe: {exc}") from None
        value, data = answer.get("result", ("", ""))
        extras = {k: v for k, (v, _d) in answer.items() if k != "result"}
        result = AGIResult(200, value, data or None, extras or None, line=f"200 result={value}")
        if flags & MINUS_TWO_FAILS and result.result == -2:
            raise AGICommandFailed("no such application", result)
        return result


class PystSession(AGISession):
    """An ``AGISession`` over pyst2: same environment accessors, same commands, same errors."""

    __slots__ = ()

    def __init__(self, agi: Any, script: str, args: Sequence[str]) -> None:
        env = {k[4:] if k.startswith("agi_") else k: v for k, v in agi.env.items() if not k.startswith("agi_arg_")}
        env["network_script"] = script
        for i, value in enumerate(args, start=1):
            env[f"arg_{i}"] = value
        raw = "".join(f"agi_{k}: {v}\n" for k, v in env.items()).encode("utf-8")
        super().__init__(cast(Any, PystTransport(agi)), raw, script)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    script = argv[0] if argv else "incoming"
    # No script name starts with "-": an option here is someone at a shell, not Asterisk. Answer it, run nothing.
    if script in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if script.startswith("-"):
        sys.stderr.write(USAGE + f"ccserver-agi: error: unknown option {script!r}\n")
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter("ccserver-agi: %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=os.environ.get(LOG_LEVEL_ENV, "WARNING"), handlers=[handler])
    from asterisk.agi import AGI

    with open(os.devnull, "w") as quiet:  # pyst2 traces every line on stderr; Asterisk would log it all
        agi = AGI(stdin=sys.stdin, stdout=sys.stdout, stderr=quiet)
        session = PystSession(agi, script, argv[1:])
        records: list[dict[str, Any]] = []
        defaults: dict[str, str] = {}
        try:
            sessions, engine, service, defaults = _build(records)
        except Exception as exc:  # noqa: BLE001 - bad config / no database: keep the call routable
            log.error("cannot start: %s", exc)
            _write_defaults(session, defaults or {"CC_QUEUE": "default"})
            return 1
        handler = service.handlers().get(script)
        if handler is None:
            log.warning("unknown script %s: default variables", log_text(script, 64))
            _write_defaults(session, defaults)
        else:
            _run(handler, session, defaults)
        sys.stdout.flush()
        sys.stdout.close()  # EOF: Asterisk continues the dialplan now, before the records are written
    if records:
        from ccserver.callrouting.records import routing_record_sink

        try:
            routing_record_sink(sessions)(records)
        except Exception as exc:  # noqa: BLE001
            log.warning("routing record not written: %s", exc)
    engine.dispose()
    return 0


def _build(records: list[dict[str, Any]]) -> tuple[Any, Any, Any, dict[str, str]]:
    from functools import partial

    from twisted.internet.threads import deferToThreadPool

    from ccserver.callrouting.directory_data import RoutingData
    from ccserver.callrouting.service import RoutingService
    from ccserver.callrouting.settings import RoutingSettings
    from ccserver.callrouting.wiring import make_directory
    from ccserver.config import load_config
    from ccserver.db.engine import make_engine, session_factory
    from ccserver.server import install_reactor

    reactor = install_reactor()
    environ = {k: v for k, v in os.environ.items() if k not in (LOG_LEVEL_ENV, CONFIG_ENV)}
    config = load_config(os.environ.get(CONFIG_ENV) or None, environ=environ)
    defaults = dict(config.agi.default_variables)
    settings = RoutingSettings.from_config(config)
    rules = settings.routing_rules()
    engine = make_engine(config.database_url)
    sessions = session_factory(engine)
    try:
        data = RoutingData.load(sessions, region=settings.default_region, default_time_zone=settings.time_zone,
                                default_area_code=settings.default_area_code,
                                default_language=settings.default_language)
    except Exception as exc:  # noqa: BLE001 - SQL down: unknown-DID route for everyone
        log.warning("routing data not loaded (%s): fallback routes", exc)
        data = RoutingData.empty(settings.default_region)
    run_blocking = partial(deferToThreadPool, reactor, reactor.getThreadPool())
    service = RoutingService(data, make_directory(sessions, rules), None, None, rules, settings, run_blocking,
                             reactor, records.append)
    return sessions, engine, service, defaults


def _run(handler: Any, session: PystSession, defaults: dict[str, str]) -> None:
    from twisted.internet import reactor as _reactor
    from twisted.internet.defer import Deferred

    reactor: Any = _reactor

    async def call() -> None:
        try:
            await handler(session)
        except CallerHungUp:
            pass
        except Exception:  # noqa: BLE001 - like the FastAGI server: log, then leave the call routable
            log.exception("handler %s failed (uniqueid=%s)", log_text(session.script, 64),
                          log_text(session.uniqueid, 64))
            if session.alive:
                _write_defaults(session, defaults)

    def start() -> None:
        Deferred.fromCoroutine(call()).addBoth(lambda _: reactor.stop())

    reactor.callLater(0, start)
    reactor.run(installSignalHandlers=False)


def _write_defaults(session: PystSession, defaults: dict[str, str]) -> None:
    if not defaults:
        return
    coro = session.set_variables(defaults)
    try:
        coro.send(None)  # every command completes synchronously here: one send runs the coroutine to its end
    except StopIteration:
        return
    except Exception as exc:  # noqa: BLE001
        log.warning("default variables not written: %s", exc)
    finally:
        coro.close()


if __name__ == "__main__":
    sys.exit(main())
