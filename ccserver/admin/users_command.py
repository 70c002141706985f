"""``ccserver users add|passwd|deactivate|list``: accounts from a shell, for scripts and the very first login.

A password is never taken from the command line (it would sit in the shell history and in ``ps``): it is read
from ``--password-file`` (first line) or asked for twice with getpass. ``add`` and ``passwd`` by an admin mark
the account for a forced change at the next login (``--no-force-change`` for service accounts).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccserver.config import Config


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    users = sub.add_parser("users", help="user accounts: add, passwd, deactivate, list")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    # allow_abbrev=False: `--password secret` must be an error, not an abbreviation of --password-file.
    add = users_sub.add_parser("add", parents=[common], allow_abbrev=False,
                               help="create a user (asks for the password)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, help="agent, supervisor, department, campaign_manager or admin")
    add.add_argument("--password-file", metavar="F", help="read the password from the first line of F")
    add.add_argument("--display-name")
    add.add_argument("--store", metavar="S", help="store code (or id)")
    add.add_argument("--extension", metavar="E", help="the user's phone extension, e.g. 8001")
    add.add_argument("--interface", metavar="I", help="the Asterisk interface to ring, e.g. PJSIP/8001")
    add.add_argument("--department")
    add.add_argument("--skills", default="", help="comma-separated")
    add.add_argument("--languages", default="zh", help="comma-separated: zh,en")
    add.add_argument("--no-force-change", action="store_true",
                     help="do not ask for a new password at the first login")
    passwd = users_sub.add_parser("passwd", parents=[common], allow_abbrev=False,
                                  help="set a new password (asks for it)")
    passwd.add_argument("name", metavar="NAME")
    passwd.add_argument("--password-file", metavar="F")
    passwd.add_argument("--no-force-change", action="store_true",
                        help="do not ask for a new password at the next login")
    deactivate = users_sub.add_parser("deactivate", parents=[common],
                                      help="stop NAME from logging in; move their customers and open tickets")
    deactivate.add_argument("name", metavar="NAME")
    deactivate.add_argument("--reassign-to", metavar="USER", help="who takes over their customers and tickets")
    lst = users_sub.add_parser("list", parents=[common], help="every user, as JSON")
    lst.add_argument("--active", action="store_true", help="only active users")


def read_password(path: str | None, ask: Callable[[str], str] | None = None) -> str:
    """The new password: from a file, or typed twice (the two must match)."""
    from ccserver.admin.users import AdminError, check_password

    if path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise AdminError(f"cannot read the password file: {exc.strerror}") from None
        password = lines[0] if lines else ""
    else:
        ask = ask or getpass.getpass
        try:
            password = ask("New password: ")
            again = ask("Repeat it: ")
        except EOFError:  # no terminal and nothing on stdin (a script, a pipe): say how to give one
            raise AdminError("no password given: run it in a terminal, or give --password-file FILE") from None
        if again != password:
            raise AdminError("the two passwords differ")
    check_password(password)
    return password


def run(args: argparse.Namespace, config: Config, ask: Callable[[str], str] | None = None) -> int:
    from ccserver.admin import users as u
    from ccserver.db.engine import make_engine, session_factory
    from ccserver.passwords import hash_password
    from ccserver.tickets.settings import TicketSettings

    actor = u.shell_actor()
    engine = make_engine(config.database_url)
    sessions = session_factory(engine)
    try:
        result: Any
        if args.users_command == "list":
            result = u.list_users(sessions, include_inactive=not args.active)
        elif args.users_command == "add":
            hashed = hash_password(read_password(args.password_file, ask))
            result = u.add_user(
                sessions, actor, args.name, args.role, hashed, display_name=args.display_name, store=args.store,
                extension=args.extension, interface=args.interface, department=args.department,
                skills=_names(args.skills), languages=_names(args.languages),
                must_change_password=not args.no_force_change,
                departments=TicketSettings.from_config(config).configured_departments())
        elif args.users_command == "passwd":
            hashed = hash_password(read_password(args.password_file, ask))
            result = u.set_password(sessions, actor, args.name, hashed, must_change=not args.no_force_change)
        else:
            result = u.deactivate(sessions, actor, args.name, args.reassign_to)
    except u.AdminError as exc:
        print(f"ccserver users: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
