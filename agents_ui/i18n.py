"""Page languages: zh-CN (the default) and en, through gettext catalogues (Babel), never a hand-made dict.

The catalogues are ``agents_ui/locale/<zh_CN|en>/LC_MESSAGES/messages.po`` — plain text in the repository, compiled
in memory the first time a language is used (no generated binaries to keep in step). ``make i18n`` extracts the
messages of the templates and the Python code (``babel.cfg``) and updates both catalogues; a test fails when a
message has no Chinese translation.

Which language a page is in: the ``ccserver_lang`` cookie (set by the language switch on every page), else the
browser's ``Accept-Language``, else zh-CN. The page's ``<html lang>`` always names the language shown.
"""

from __future__ import annotations

import io
from functools import cache
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

DEFAULT = "zh-CN"
COOKIE = "ccserver_lang"
# page language (BCP 47, as in <html lang>) -> catalogue folder
LANGUAGES: dict[str, str] = {"zh-CN": "zh_CN", "en": "en"}


@cache
def translations(lang: str) -> Translations:
    """The compiled catalogue of ``lang`` (a key of :data:`LANGUAGES`)."""
    folder = LANGUAGES[lang]
    source = resources.files("agents_ui").joinpath("locale", folder, "LC_MESSAGES", "messages.po")
    with source.open("rb") as fh:
        catalog = read_po(fh, locale=folder)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The page language for a request: the cookie's choice, else the best ``Accept-Language`` match, else zh-CN."""
    if cookie in LANGUAGES:
        return cookie  # type: ignore[return-value]
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, index, tag.strip().lower()))
    for _q, _i, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT
