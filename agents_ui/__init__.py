"""Agent desktop, supervisor and campaign pages: Jinja2 templates and static assets (no business rules).

Pages are rendered in the viewer's language (:mod:`agents_ui.i18n`: zh-CN by default, en) with Jinja2's i18n
extension over gettext catalogues: ``{{ _("Log in") }}`` in a template, new-style (``_("Hello %(name)s",
name=x)``, escaped like any other value). Autoescaping is on for every template: caller-controlled text (names,
caller ID) is always escaped. Pages load their JavaScript as ES modules from ``/static`` — no inline script, so the
Content-Security-Policy forbids it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from agents_ui.i18n import DEFAULT, LANGUAGES, translations
from ccserver.texts import RoleName

__all__ = ["Pages", "static_dir", "template_environment"]


@cache
def template_environment(lang: str = DEFAULT) -> jinja2.Environment:
    """The template environment of one page language (cached: one per language)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("agents_ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = lang
    env.globals["languages"] = list(LANGUAGES)
    env.globals["role_names"] = RoleName.NAMES  # _roles.html: a role's name for people, one list with the API's
    return env


class Pages:
    """Renders a template in a page language: ``pages.render("inbox.html", "en", tickets=…)``."""

    def render(self, name: str, lang: str = DEFAULT, **context: Any) -> str:
        return template_environment(lang if lang in LANGUAGES else DEFAULT).get_template(name).render(**context)

    def get_template(self, name: str, lang: str = DEFAULT) -> jinja2.Template:
        return template_environment(lang if lang in LANGUAGES else DEFAULT).get_template(name)


def static_dir() -> Path:
    return Path(str(resources.files("agents_ui").joinpath("static")))
