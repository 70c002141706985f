"""Why a phone number was refused, for a person: routing.numbers gives its reasons in English (a library with no
catalogue, read by logs and the routing rules); these are the same texts as :func:`ccserver.texts.T` messages, so
an import's row report reads them in the page's language."""

from __future__ import annotations

from ccserver.texts import T, Text

# Each reason routing.numbers may give an invalid or withheld number, written out so `make i18n` extracts it.
_REASONS: dict[str, Text] = {t.template: t for t in (
    T("not a number"), T("too short"), T("too long"), T("withheld"), T("not a valid +86 number"),
    T("unknown country code"), T("not a valid international number"), T("not a valid national number"),
    T("not a valid mobile number"), T("short code or extension"), T("local number without area code"),
    T("bad local area code"), T("not a valid local number"), T("national number without trunk prefix 0"),
    T("unparseable"), T("not a valid number"),
)}


def number_reason(reason: str) -> str:
    """routing.numbers' ``reason`` as a translatable text (as it is, in English, when this list lacks it)."""
    return _REASONS.get(reason, reason)
