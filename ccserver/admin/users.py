"""User accounts: create, reset a password, deactivate (reassigning the customers), list.

Blocking SQL (the CLI calls these directly, the web through ``run_blocking``). Every change writes an audit row
with who did it and the values before and after; password hashes never appear in it. Errors are
:class:`AdminError` with a message meant for the person at the keyboard.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from ccserver.db.models import LANGUAGES, ROLES, AuditLog, Customer, ServiceVisit, Store, Ticket, User
from ccserver.textcheck import CONTROLS
from ccserver.texts import T
from ccserver.tickets.store import known_departments

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
EXTENSION = re.compile(r"^[0-9*#]{2,20}$")
# TECH/resource, e.g. PJSIP/8001 or Local/8001@agent-phones/n: it goes into AMI actions, so no spaces or CR/LF.
INTERFACE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*/[A-Za-z0-9_.@/+:-]{1,74}$")
MIN_PASSWORD = 8
# Tickets still in someone's hands (a departed consultant's open tickets move with their customers).
OPEN_TICKETS = ("new", "assigned", "in_progress", "resolved")


class AdminError(Exception):
    """The change is refused; ``message`` says why (HTTP 400/404/409 from the API, exit 1 from the CLI);
    ``field``, when one is to blame, names it (the API answers it beside the error, so a page can point at it)."""

    def __init__(self, message: str, status: int = 400, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a logged-in user, or ``cli:<os user>`` from a shell."""

    user_id: int | None
    name: str
    ip: str = ""


def shell_actor() -> Actor:
    """The person running a ``ccserver`` command: ``cli:<os user>`` in the audit log."""
    import getpass

    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no login name and no user database entry (a bare container)
        name = "unknown"
    return Actor(None, f"cli:{name}")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AdminError(T("the password must have at least {min_password} characters", min_password=MIN_PASSWORD),
                         field="password")
    if len(password) > 1024:
        raise AdminError(T("the password is too long (at most 1024 characters)"), field="password")
    if any(ord(c) < 32 for c in password):
        raise AdminError(T("the password may not contain control characters"), field="password")


def audit(session: Session, actor: Actor, action: str, target: str, before: Any, after: Any) -> None:
    session.add(AuditLog(at=dt.datetime.now(dt.UTC), actor_id=actor.user_id, actor_name=actor.name[:64],
                         action=action, target=target[:200], ip=actor.ip[:45] or None,
                         detail={"before": before, "after": after}))


def describe(user: User, stores: dict[int, str] | None = None) -> dict[str, Any]:
    """The user as the API and ``users list`` show them (never the password hash)."""
    return {
        "id": user.id, "username": user.username, "display_name": user.display_name, "role": user.role,
        "active": bool(user.active), "store": (stores or {}).get(user.store_id) if user.store_id else None,
        "store_id": user.store_id, "department": user.department, "extension": user.extension,
        "interface": user.interface, "skills": list(user.skills or []), "languages": list(user.languages or []),
        "must_change_password": bool(user.must_change_password),
    }


def _store_codes(session: Session) -> dict[int, str]:
    return {int(i): str(c) for i, c in session.execute(select(Store.id, Store.code))}


def resolve_store(session: Session, store: str | int | None) -> int | None:
    """A store by code (or id); AdminError naming it when unknown."""
    if store is None or store == "":
        return None
    if isinstance(store, bool) or not isinstance(store, str | int):
        raise AdminError(T("store must be a store's code or id"), field="store")
    if isinstance(store, int) or (store.isascii() and store.isdigit()):
        number = int(store)  # an id beyond the column's range is no store (not a database error)
        found = session.get(Store, number) if 0 < number < 2**31 else None
    else:
        found = session.scalars(select(Store).where(Store.code == store)).one_or_none()
    if found is None:
        raise AdminError(T("unknown store {store}", store=repr(store)), 404, field="store")
    return found.id


def _get(session: Session, username: str, field: str = "username") -> User:
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        raise AdminError(T("no user named {username}", username=repr(username)), 404, field=field)
    return user


def validate_fields(fields: dict[str, Any]) -> None:
    """Check the editable fields a caller gives (only those present). Each refusal names its field (the admin
    page marks that input)."""
    if "role" in fields and fields["role"] not in ROLES:
        raise AdminError(T("unknown role {fields}; one of {roles}", fields=repr(fields['role']),
                           roles=', '.join(ROLES)), field="role")
    for key in ("extension", "interface"):
        if fields.get(key) is not None and not isinstance(fields[key], str):
            raise AdminError(T("{key} must be text", key=key), field=key)
    ext = fields.get("extension")
    if ext not in (None, "") and not EXTENSION.match(str(ext)):
        raise AdminError(T("extension {ext} is not a dial string of 2-20 digits", ext=repr(ext)), field="extension")
    iface = fields.get("interface")
    if iface not in (None, "") and not INTERFACE.match(str(iface)):
        raise AdminError(T("interface {iface} is not an Asterisk interface like PJSIP/8001", iface=repr(iface)),
                         field="interface")
    for key in ("skills", "languages"):
        value = fields.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) and v for v in value)):
            raise AdminError(T("{key} must be a list of names", key=key), field=key)
    for lang in fields.get("languages") or ():
        if lang not in LANGUAGES:
            raise AdminError(T("unknown language {lang}; one of {languages}", lang=repr(lang),
                               languages=', '.join(LANGUAGES)), field="languages")
    for key, limit in (("display_name", 120), ("department", 40)):
        value = fields.get(key)
        # one line: the display name is the queue member's name in AMI QueueAdd (CR/LF there is refused); no bidi
        # override either (a name that reads as another agent's on the wallboard)
        if value is not None and (not isinstance(value, str) or len(value) > limit
                                  or CONTROLS.search(value)):
            raise AdminError(T("{key} must be one line of text of at most {limit} characters", key=key, limit=limit),
                             field=key)


def _check_department(session: Session, department: str | None, configured: Collection[str] | None) -> None:
    if not department or configured is None:
        return
    known = known_departments(session, set(configured))
    if department not in known:
        raise AdminError(T("unknown department {department}; one of {departments}", department=repr(department),
                           departments=", ".join(sorted(known))), field="department")


def _as_list(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else value


def add_user(session_factory: Callable[[], Session], actor: Actor, username: str, role: str, password_hash: str, *,
             display_name: str | None = None, store: str | int | None = None, extension: str | None = None,
             interface: str | None = None, department: str | None = None, skills: Sequence[str] = (),
             languages: Sequence[str] = ("zh",), must_change_password: bool = True,
             departments: Collection[str] | None = None) -> dict[str, Any]:
    """``departments``: the ones the tickets settings route to (TicketSettings.configured_departments); given, the
    user's department must be a department tickets can be in (else nothing ever reaches their inbox)."""
    if not USERNAME.match(username):
        raise AdminError(T("{username} is not a valid user name (letters, digits, _ . @ -; at most 64)",
                           username=repr(username)), field="username")
    # (a list or tuple as a list; anything else, a string above all, is refused by the check rather than split
    # into letters)
    fields = {"role": role, "extension": extension, "interface": interface, "skills": _as_list(skills),
              "languages": _as_list(languages), "display_name": display_name, "department": department}
    validate_fields(fields)
    with session_factory() as session, session.begin():
        if session.scalars(select(User.id).where(User.username == username)).first() is not None:
            raise AdminError(T("a user named {username} exists already", username=repr(username)), 409,
                             field="username")
        if extension and session.scalars(select(User.username).where(
                User.extension == extension, User.active.is_(True))).first() is not None:
            raise AdminError(T("extension {extension} belongs to another active user", extension=extension), 409,
                             field="extension")
        _check_department(session, department, departments)
        user = User(username=username, display_name=display_name or username, role=role,
                    password_hash=password_hash, active=True, extension=extension or None,
                    interface=interface or None, skills=fields["skills"], languages=fields["languages"],
                    store_id=resolve_store(session, store), department=department or None,
                    must_change_password=must_change_password)
        session.add(user)
        session.flush()
        shown = describe(user, _store_codes(session))
        audit(session, actor, "user.created", f"user:{username}", None, shown)
    return shown


def set_password(session_factory: Callable[[], Session], actor: Actor, username: str, password_hash: str, *,
                 must_change: bool) -> dict[str, Any]:
    """A new password; ``must_change``: an admin's reset (the user picks their own at the next login)."""
    with session_factory() as session, session.begin():
        user = _get(session, username)
        before = bool(user.must_change_password)
        user.password_hash = password_hash
        user.must_change_password = must_change
        audit(session, actor, "user.password_changed" if not must_change else "user.password_reset",
              f"user:{username}", {"must_change_password": before}, {"must_change_password": must_change})
        return describe(user, _store_codes(session))


def change_own_password(session_factory: Callable[[], Session], user_id: int, password_hash: str, ip: str) -> None:
    """The user chose a new password (the forced change at first login, or any time)."""
    with session_factory() as session, session.begin():
        user = session.get(User, user_id)
        if user is None:
            raise AdminError(T("no such user"), 404)
        user.password_hash = password_hash
        was = bool(user.must_change_password)
        user.must_change_password = False
        audit(session, Actor(user.id, user.username, ip), "user.password_changed", f"user:{user.username}",
              {"must_change_password": was}, {"must_change_password": False})


def update_user(session_factory: Callable[[], Session], actor: Actor, username: str,
                fields: dict[str, Any], *, departments: Collection[str] | None = None) -> dict[str, Any]:
    """Edit role, store, department, skills, languages, extension, interface, display name (``departments``: as
    for :func:`add_user`)."""
    allowed = {"role", "store", "department", "skills", "languages", "extension", "interface", "display_name"}
    unknown = set(fields) - allowed
    if unknown:
        raise AdminError(T("cannot change {unknown}", unknown=', '.join(sorted(unknown))))
    validate_fields(fields)
    if "display_name" in fields and not fields["display_name"]:
        raise AdminError(T("display_name must be text of 1-120 characters"), field="display_name")
    with session_factory() as session, session.begin():
        user = _get(session, username)
        codes = _store_codes(session)
        before = describe(user, codes)
        if fields.get("department") not in (None, "", user.department):  # unchanged: not refused for its past
            _check_department(session, fields["department"], departments)
        for key, value in fields.items():
            if key == "store":
                user.store_id = resolve_store(session, value)
            elif key in ("extension", "interface", "department"):
                setattr(user, key, value or None)
            else:
                setattr(user, key, value)
        if user.extension and session.scalars(select(User.username).where(
                User.extension == user.extension, User.active.is_(True), User.id != user.id)).first():
            raise AdminError(T("extension {extension} belongs to another active user", extension=user.extension),
                             409, field="extension")
        session.flush()
        after = describe(user, codes)
        audit(session, actor, "user.updated", f"user:{username}", before, after)
        return after


def deactivate(session_factory: Callable[[], Session], actor: Actor, username: str,
               reassign_to: str | None = None) -> dict[str, Any]:
    """The user can no longer log in (their sessions end at the next request); their customers (as sales
    consultant or service advisor) and open tickets move to ``reassign_to`` in the same transaction, so a
    departed consultant's customers are never left without an owner by accident."""
    with session_factory() as session, session.begin():
        user = _get(session, username)
        if not user.active:
            raise AdminError(T("{username} is already deactivated", username=repr(username)), 409, field="username")
        heir: User | None = None
        if reassign_to is not None:
            heir = _get(session, reassign_to, field="reassign_to")
            if heir.id == user.id:
                raise AdminError(T("cannot reassign a user's customers to themselves"), field="reassign_to")
            if not heir.active:
                raise AdminError(T("{reassign_to} is deactivated; reassign to an active user",
                                   reassign_to=repr(reassign_to)), 409, field="reassign_to")
        new_id = heir.id if heir else None
        moved = {
            "sales_customers": _rows(session, update(Customer).where(Customer.sales_consultant_id == user.id)
                                     .values(sales_consultant_id=new_id)),
            "advised_customers": _rows(session, update(Customer).where(Customer.service_advisor_id == user.id)
                                       .values(service_advisor_id=new_id)),
            "open_tickets": _rows(session, update(Ticket).where(Ticket.assignee_id == user.id,
                                                                Ticket.status.in_(OPEN_TICKETS))
                                  .values(assignee_id=new_id)),
            "open_visits": _rows(session, update(ServiceVisit).where(
                ServiceVisit.advisor_id == user.id, ServiceVisit.status.notin_(("collected", "cancelled")))
                .values(advisor_id=new_id)),
        }
        user.active = False
        audit(session, actor, "user.deactivated", f"user:{username}", {"active": True},
              {"active": False, "reassigned_to": reassign_to, "moved": moved})
    return {"username": username, "active": False, "reassigned_to": reassign_to, **moved}


def _rows(session: Session, statement: Any) -> int:
    """How many rows an UPDATE changed."""
    return int(cast(CursorResult[Any], session.execute(statement)).rowcount)


def list_users(session_factory: Callable[[], Session], *, store_id: int | None = None,
               include_inactive: bool = True) -> list[dict[str, Any]]:
    with session_factory() as session:
        query = select(User).order_by(User.username)
        if store_id is not None:
            query = query.where(User.store_id == store_id)
        if not include_inactive:
            query = query.where(User.active.is_(True))
        codes = _store_codes(session)
        return [describe(u, codes) for u in session.scalars(query)]
