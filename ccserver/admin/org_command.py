"""``ccserver stores delete CODE`` and ``ccserver queues delete NAME``: the web admin's removals from a shell.

The same functions as ``DELETE /api/admin/stores|queues/{id}`` (ccserver/admin/org.py), so the same refusals:
a store or queue that something still uses is kept, and the reason names what (exit 1, as an unknown code or
name). A removal is audited as ``cli:<os user>``; then the running servers are told over Redis to reload their
routing data, as after a change on the page (without Redis they catch up at their periodic refresh).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ccserver.config import Config


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    stores = sub.add_parser("stores", help="stores: delete one nothing uses any more")
    stores_sub = stores.add_subparsers(dest="stores_command", required=True)
    store = stores_sub.add_parser("delete", parents=[common],
                                  help="delete a store (refused while users, queues, DIDs, customers… name it)")
    store.add_argument("code", metavar="CODE", help="the store's code, e.g. bj-volvo")
    queues = sub.add_parser("queues", help="queues: delete one nothing routes to any more")
    queues_sub = queues.add_subparsers(dest="queues_command", required=True)
    queue = queues_sub.add_parser("delete", parents=[common],
                                  help="delete a queue (refused while a DID, the routing rules or a campaign use it)")
    queue.add_argument("name", metavar="NAME", help="the queue's name (the Asterisk queue's)")


def run(args: argparse.Namespace, config: Config) -> int:
    from ccserver.admin import org
    from ccserver.admin import rules as admin_rules
    from ccserver.admin.users import AdminError, shell_actor
    from ccserver.db.engine import make_engine, session_factory

    engine = make_engine(config.database_url)
    sessions = session_factory(engine)
    actor = shell_actor()
    try:
        if args.command == "stores":
            org.delete_store(sessions, actor, org.store_id_by_code(sessions, args.code))
            done, what = f"store {args.code!r} deleted", "store"
        else:
            # the rules routing uses (the admin's, else the file's), as the web reads them: a queue they name stays
            rules = admin_rules.effective(sessions, config.section("routing")).to_dict()
            org.delete_queue(sessions, actor, org.queue_id_by_name(sessions, args.name), rules=rules)
            done, what = f"queue {args.name!r} deleted", "queue"
    except AdminError as exc:
        print(f"ccserver {args.command}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(done)
    _tell_servers(config, what)
    return 0


def _tell_servers(config: Config, what: str) -> None:
    """Every running node reloads its routing data now (ccserver/admin/reload.py), as after a page's change."""
    if not config.redis.url:
        return
    import asyncio

    import redis.asyncio as aioredis

    from ccserver.admin.reload import ConfigReloads

    async def publish() -> bool:
        client = aioredis.Redis.from_url(config.redis.url, socket_timeout=5.0, socket_connect_timeout=5.0)
        try:
            return await ConfigReloads(client).publish(what)
        finally:
            await client.aclose()

    if not asyncio.run(publish()):
        print("ccserver: warning: could not tell the running servers over Redis; they see the change at their "
              "next periodic refresh "
              "(callrouting.refresh_seconds)", file=sys.stderr)
