"""The routing rules as an admin edits them: validated in full before they are stored, stored in SQL
(``admin_settings["routing"]``), overriding the config file's ``[routing]`` table, applied on every node.

Refused with the reason: anything ``routing.rules.RoutingRules.from_dict`` refuses (its dotted key names the bad
value), a queue named by ``queues``, ``overflow``, ``after_hours`` or ``fallback_queue`` that is not in the
``queues`` table, and an ``announce`` prompt with no sound file in ``prompts.sound_dir`` (when it is set).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccserver.admin.users import Actor, AdminError, audit
from ccserver.db.models import AdminSetting, Queue
from routing.rules import RoutingRules, RulesError

KEY = "routing"


def stored(sf: Callable[[], Session]) -> dict[str, Any] | None:
    """The admin's rules, or None (the file's apply)."""
    with sf() as session:
        row = session.get(AdminSetting, KEY)
        return dict(row.value) if row is not None else None


def effective(sf: Callable[[], Session], file_rules: dict[str, Any] | None) -> RoutingRules:
    """What routing uses: the admin's rules when there are any, else the file's."""
    override = stored(sf)
    return RoutingRules.from_dict(override if override is not None else (file_rules or None))


def _named_queues(data: dict[str, Any]) -> list[tuple[str, str]]:
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
        raise AdminError("the rules must be an object in the [routing] schema")
    try:
        rules = RoutingRules.from_dict(data)
    except RulesError as exc:
        raise AdminError(f"{exc.key}: {exc.message}") from None
    with sf() as session:
        known = set(session.scalars(select(Queue.name)))
    for where, queue in _named_queues(data):
        if str(queue) not in known:
            raise AdminError(f"{where}: unknown queue {queue!r} (create it first; known: "
                             f"{', '.join(sorted(known)) or 'none'})")
    if sound_dir:
        from ccserver.asterisk.prompts import LANGUAGES, missing_prompts

        prompts = [p for p in (data.get("announce") or {}).values() if p]
        missing = missing_prompts(sound_dir, prompts, LANGUAGES)
        if missing:
            raise AdminError(f"routing.announce: no sound file for {', '.join(missing)} in {sound_dir} "
                             "(`ccserver prompts build`, or record it)")
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
    with sf() as session, session.begin():
        row = session.get(AdminSetting, KEY)
        if row is None:
            raise AdminError("the rules are the config file's already", 409)
        before = dict(row.value)
        session.delete(row)
        audit(session, actor, "routing_rules.reset", "setting:routing", before, {"from": "file"})
    return RoutingRules.from_dict(file_rules or None).to_dict()
