"""``ccserver agents login|logout|pause|unpause|list``: agent sign-in from a shell, for scripts and first tests.

The command connects to the configured Asterisk itself (the same AMI user as the server), runs the same
:class:`~ccserver.agents.AgentService` operation as the API, prints the result as JSON and exits. The running
server sees the members change through AMI like any other change, and restores these sign-ins after every
resync. A command-line sign-in has no web login, so it lasts until ``ccserver agents logout``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from typing import Any

from ccserver.config import Config

CONNECT_TIMEOUT = 10.0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    agents = sub.add_parser("agents", help="sign agents in to queues, out, pause and resume (AMI)")
    agents_sub = agents.add_subparsers(dest="agents_command", required=True)
    login = agents_sub.add_parser("login", parents=[common], help="sign EXT in to queues (and its personal queue)")
    login.add_argument("extension", metavar="EXT")
    login.add_argument("--queues", required=True, help="comma-separated queue names, e.g. sales,vip ('' for none)")
    login.add_argument("--interface", help="the phone to ring, e.g. PJSIP/8001 (default: the user's own)")
    login.add_argument("--state-interface", help="device whose state app_queue watches (default: the interface)")
    login.add_argument("--server", help="which Asterisk (an ami.servers name; default: callrouting.server)")
    login.add_argument("--force", action="store_true", help="take the phone over from another signed-in agent")
    logout = agents_sub.add_parser("logout", parents=[common], help="sign EXT out of every queue")
    logout.add_argument("extension", metavar="EXT")
    pause = agents_sub.add_parser("pause", parents=[common], help="pause EXT in every queue")
    pause.add_argument("extension", metavar="EXT")
    pause.add_argument("--reason", required=True, help="pause code, e.g. lunch")
    unpause = agents_sub.add_parser("unpause", parents=[common], help="resume EXT")
    unpause.add_argument("extension", metavar="EXT")
    agents_sub.add_parser("list", parents=[common], help="the agents signed in now")


def run(args: argparse.Namespace, config: Config) -> int:
    from ccserver.agents import AgentError

    try:
        result = asyncio.run(_run(args, config))
    except AgentError as exc:
        print(f"ccserver agents: {exc.message}", file=sys.stderr)
        return 1 if exc.status < 500 else 3
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


async def _run(args: argparse.Namespace, config: Config) -> Any:
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    from ccserver.admin import rules as admin_rules
    from ccserver.agents import Actor, AgentService
    from ccserver.agents.queue_actions import AMIQueueActions
    from ccserver.agents.store import AgentStore
    from ccserver.ami.client import AMIServerConfig
    from ccserver.ami.manager import AMIManager
    from ccserver.db.engine import make_engine, session_factory

    loop = asyncio.get_running_loop()
    reactor = AsyncioSelectorReactor(loop)
    engine = make_engine(config.database_url)
    store = AgentStore(session_factory(engine))
    servers = {s.name: AMIServerConfig(host=s.host, port=s.port, username=s.username, secret=s.secret,
                                       ping_interval=config.ami.ping_interval) for s in config.ami_servers()}
    ami = AMIManager(servers, reactor=reactor)

    async def in_thread(fn: Any, *a: Any, **kw: Any) -> Any:
        return await asyncio.to_thread(fn, *a, **kw)

    actions = AMIQueueActions(ami, loop, connect_timeout=CONNECT_TIMEOUT)
    # The admin's rules (SQL) when there are any, as the server uses them: the personal queue must be the same.
    rules = await in_thread(admin_rules.effective, session_factory(engine), config.section("routing"))
    service = AgentService(store, actions, rules=rules,
                           run_blocking=in_thread, servers=list(servers), default_server=config.callrouting.server)
    actor = Actor.system(f"cli:{_os_user()}")
    try:
        if args.agents_command == "list":
            return await service.signed_in()
        if args.agents_command == "login":
            queues = [q.strip() for q in args.queues.split(",") if q.strip()]
            return await service.login(actor, args.extension, queues, interface=args.interface,
                                       state_interface=args.state_interface, server=args.server, force=args.force)
        if args.agents_command == "logout":
            return await service.logout(actor, args.extension)
        if args.agents_command == "pause":
            return await service.pause(actor, args.extension, args.reason)
        return await service.unpause(actor, args.extension)
    finally:
        ami.stop()
        engine.dispose()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
