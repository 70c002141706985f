"""Agent desktop, supervisor and campaign pages: Jinja2 templates and static assets (no business rules)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import jinja2


def template_environment() -> jinja2.Environment:
    """Autoescaping on for every template: caller-controlled text (names, caller ID) is always escaped."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("agents_ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def static_dir() -> Path:
    return Path(str(resources.files("agents_ui").joinpath("static")))
