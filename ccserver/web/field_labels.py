"""The labels the pages' forms show their fields under, for an error message read on a page: a message naming a
:class:`ccserver.texts.Field` ("{field} must be a phone number") reads "号码 必须是电话号码", not the API's
``number`` inside a Chinese sentence. Scripts and API clients (no language asked) keep the field names."""

from __future__ import annotations

from collections.abc import Callable

from ccserver.texts import T, Text

# field name -> the label its form shows (the same English text as the template's _("…"), so one translation)
LABELS: dict[str, Text] = {
    "queue": T("Queue"), "number": T("Number"), "store": T("Store"), "from": T("From"), "to": T("To"),
    "interval": T("Interval"), "phone": T("Phone"), "name": T("Name"),
}


def field_labels(gettext: Callable[[str], str] | None) -> dict[str, str] | None:
    """The labels in ``gettext``'s language; None (field names stay) for a reader who asked for no language."""
    return None if gettext is None else {name: label.translated(gettext) for name, label in LABELS.items()}
