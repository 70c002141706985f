"""The agent desktop's pause codes and disposition codes as an admin edits them: validated as a whole, stored in
SQL (``admin_settings["desktop_codes"]``), overriding the config file's ``[desktop]`` ``pause_codes`` and
``dispositions``, applied on every node (ccserver/admin/live.py).

Refused with the reason (the same checks as the config file's, ccserver/desktop/settings.py): a list that is
missing or empty, a code given twice, a code that is not a plain identifier (lower-case letters, digits, ``_``,
``-``; at most 40), a label missing in Chinese or English, and ``wrapup`` as a pause code (forced wrap-up's own
reason, which the KPIs count as wrap-up).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from ccserver.admin.rules import _drop, stored
from ccserver.admin.users import Actor, AdminError, audit
from ccserver.db.models import AdminSetting
from ccserver.desktop.settings import DesktopSettings, DesktopSettingsError
from ccserver.texts import T, message_of

KEY = "desktop_codes"
LISTS = ("pause_codes", "dispositions")


def as_json(settings: DesktopSettings) -> dict[str, list[dict[str, str]]]:
    return {"pause_codes": [c.json() for c in settings.pause_codes],
            "dispositions": [c.json() for c in settings.dispositions]}


def effective(sf: Callable[[], Session], file_desktop: dict[str, Any] | None) -> DesktopSettings:
    """What the desktop uses: the file's ``[desktop]`` with the admin's code lists over it, when there are any."""
    override = stored(sf, KEY) or {}
    return DesktopSettings.from_dict({**(file_desktop or {}), **{k: override[k] for k in LISTS if k in override}})


def validate(data: Any) -> dict[str, list[dict[str, str]]]:
    if not isinstance(data, dict) or set(data) != set(LISTS):
        raise AdminError(T("the codes must be an object with exactly pause_codes and dispositions, each a list of "
                           "{code, label_zh, label_en}"))
    try:
        return as_json(DesktopSettings.from_dict(data))
    except DesktopSettingsError as exc:
        raise AdminError(message_of(exc)) from None


def save(sf: Callable[[], Session], actor: Actor, data: Any, file_desktop: dict[str, Any] | None) -> dict[str, Any]:
    codes = validate(data)
    before = stored(sf, KEY)
    if before is None:
        before_audit: Any = {"from": "file", **as_json(DesktopSettings.from_dict(file_desktop or {}))}
    else:
        before_audit = before
    with sf() as session, session.begin():
        row = session.get(AdminSetting, KEY)
        if row is None:
            row = AdminSetting(key=KEY)
            session.add(row)
        row.value = codes
        row.updated_at = dt.datetime.now(dt.UTC)
        row.updated_by = actor.name[:64]
        audit(session, actor, "desktop_codes.updated", f"setting:{KEY}", before_audit, codes)
    return codes


def reset(sf: Callable[[], Session], actor: Actor, file_desktop: dict[str, Any] | None) -> dict[str, Any]:
    """Back to the config file's codes."""
    _drop(sf, actor, KEY, "desktop_codes.reset")
    return as_json(DesktopSettings.from_dict(file_desktop or {}))
