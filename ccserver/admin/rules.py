"""The routing rules and the IVR menus as an admin edits them: validated in full before they are stored, stored
in SQL (``admin_settings["routing"]``, ``admin_settings["ivr"]``), overriding the config file's ``[routing]`` and
``[ivr]`` tables, applied on every node.

Refused with the reason: anything ``routing.rules.RoutingRules.from_dict`` or ``ivr.settings.IVRSettings.from_dict``
refuses (the dotted key names the bad value: an unknown menu, line, ticket or prompt), a queue named by the rules'
``queues``, ``overflow``, ``after_hours`` or ``fallback_queue`` that is not in the ``queues`` table, and a prompt
(routing ``announce``, IVR menus and tickets) with no sound file in ``prompts.sound_dir`` (when it is set).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccserver.admin.users import Actor, AdminError, audit
from ccserver.db.models import AdminSetting, Queue
from ccserver.texts import T, message_of
from routing.rules import RoutingRules, RulesError

KEY = "routing"


IVR_KEY = "ivr"


def stored(sf: Callable[[], Session], key: str = KEY) -> dict[str, Any] | None:
    """The admin's rules (or IVR table), or None (the file's apply)."""
    with sf() as session:
        row = session.get(AdminSetting, key)
        return dict(row.value) if row is not None else None


def effective(sf: Callable[[], Session], file_rules: dict[str, Any] | None) -> RoutingRules:
    """What routing uses: the admin's rules when there are any, else the file's."""
    override = stored(sf)
    return RoutingRules.from_dict(override if override is not None else (file_rules or None))


def named_queues(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, queue name) for every queue the rules name."""
    named: list[tuple[str, str]] = []
    for line, tiers in (data.get("queues") or {}).items():
        for tier, queue in (tiers or {}).items():
            named.append((f"routing.queues.{line}.{tier}", queue))
    for source, target in (data.get("overflow") or {}).items():
        named += [(f"routing.overflow.{source}", source), (f"routing.overflow.{source}", target)]
    for line, queue in (data.get("after_hours") or {}).items():
        named.append((f"routing.after_hours.{line}", queue))
    if data.get("fallback_queue"):
        named.append(("routing.fallback_queue", data["fallback_queue"]))
    return named


def validate(sf: Callable[[], Session], data: Any, sound_dir: str = "") -> RoutingRules:
    if not isinstance(data, dict):
        raise AdminError(T("the rules must be an object in the [routing] schema"))
    try:
        rules = RoutingRules.from_dict(data)
    except RulesError as exc:
        raise AdminError(T("{key}: {message}", key=exc.key, message=exc.message)) from None
    with sf() as session:
        known = set(session.scalars(select(Queue.name)))
    for where, queue in named_queues(data):
        if str(queue) not in known:
            raise AdminError(T("{where}: unknown queue {queue} (create it first; known: {known})", where=where,
                               queue=repr(queue), known=", ".join(sorted(known)) or "-"))
    if sound_dir:
        from ccserver.asterisk.prompts import LANGUAGES, missing_prompts

        prompts = [p for p in (data.get("announce") or {}).values() if p]
        missing = missing_prompts(sound_dir, prompts, LANGUAGES)
        if missing:
            raise AdminError(T("routing.announce: no sound file for {prompts} in {sound_dir} (`ccserver prompts "
                               "build`, or record it)", prompts=", ".join(missing), sound_dir=sound_dir))
    return rules


def save(sf: Callable[[], Session], actor: Actor, data: Any, file_rules: dict[str, Any] | None,
         sound_dir: str = "") -> dict[str, Any]:
    rules = validate(sf, data, sound_dir)
    before = stored(sf)
    with sf() as session, session.begin():
        row = session.get(AdminSetting, KEY)
        if row is None:
            row = AdminSetting(key=KEY)
            session.add(row)
        row.value = rules.to_dict()
        row.updated_at = dt.datetime.now(dt.UTC)
        row.updated_by = actor.name[:64]
        audit(session, actor, "routing_rules.updated", "setting:routing",
              before if before is not None else {"from": "file"}, row.value)
    return rules.to_dict()


def reset(sf: Callable[[], Session], actor: Actor, file_rules: dict[str, Any] | None) -> dict[str, Any]:
    """Back to the config file's rules."""
    _drop(sf, actor, KEY, "routing_rules.reset")
    return RoutingRules.from_dict(file_rules or None).to_dict()


def _drop(sf: Callable[[], Session], actor: Actor, key: str, action: str) -> None:
    with sf() as session, session.begin():
        row = session.get(AdminSetting, key)
        if row is None:
            raise AdminError(T("the {key} settings are the config file's already", key=key), 409)
        before = dict(row.value)
        session.delete(row)
        audit(session, actor, action, f"setting:{key}", before, {"from": "file"})


# --- the IVR ------------------------------------------------------------------------------------------------


def effective_ivr(sf: Callable[[], Session], file_ivr: dict[str, Any] | None) -> Any:
    from ivr.settings import IVRSettings

    override = stored(sf, IVR_KEY)
    return IVRSettings.from_dict(override if override is not None else (file_ivr or None))


def save_ivr(sf: Callable[[], Session], actor: Actor, table: Any, sound_dir: str = "") -> dict[str, Any]:
    """The ``[ivr]`` table (over the built-in menus, as in the config file), validated as a whole."""
    from ivr.settings import IVRConfigError, IVRSettings

    if not isinstance(table, dict):
        raise AdminError(T("the IVR settings must be an object in the [ivr] schema"))
    try:
        settings = IVRSettings.from_dict(table)
    except IVRConfigError as exc:
        raise AdminError(message_of(exc)) from None
    if sound_dir and settings.enabled:
        from ccserver.asterisk.prompts import LANGUAGES, missing_prompts

        prompts = {name for menu in settings.menus.values() for name in (*menu.intro, *menu.prompts)}
        prompts |= {ticket.prompt for ticket in settings.tickets.values()}
        missing = missing_prompts(sound_dir, sorted(prompts), LANGUAGES)
        if missing:
            raise AdminError(T("ivr: no sound file for {prompts} in {sound_dir} (`ccserver prompts build`, or "
                               "record it)", prompts=", ".join(missing[:8]), sound_dir=sound_dir))
    before = stored(sf, IVR_KEY)
    with sf() as session, session.begin():
        row = session.get(AdminSetting, IVR_KEY)
        if row is None:
            row = AdminSetting(key=IVR_KEY)
            session.add(row)
        row.value = dict(table)
        row.updated_at = dt.datetime.now(dt.UTC)
        row.updated_by = actor.name[:64]
        audit(session, actor, "ivr.updated", "setting:ivr", before if before is not None else {"from": "file"},
              row.value)
    return dict(table)


def reset_ivr(sf: Callable[[], Session], actor: Actor) -> None:
    _drop(sf, actor, IVR_KEY, "ivr.reset")
