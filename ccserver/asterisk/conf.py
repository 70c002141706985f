"""Reading Asterisk ``.conf`` files with pyst2's parser (``asterisk.config``), without tracebacks.

pyst2 parses the core syntax (``[category]``, ``name = value`` / ``name => value``, ``;`` comments). What it
does not know is handled around it, line numbers kept:

- ``#include`` / ``#tryinclude`` / ``#exec`` lines are recorded (not followed) and hidden from pyst2;
- template syntax ``[name](!)`` / ``[name](tpl1,tpl2)`` is split off the category line and recorded;
- ``\\;`` (an escaped semicolon, literal in Asterisk) survives pyst2's comment split.

Anything that still fails (unreadable file, bad encoding, pyst2 ``ParseError``) becomes a :class:`Problem`
naming the file, the line and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from asterisk import config as pyst_config

__all__ = ["ConfFile", "Item", "Problem", "Section", "parse_conf"]

_ESCAPED_SEMI = "\ue000"
_CATEGORY = re.compile(r"^\s*\[([^\]]*)\]\s*\(([^)]*)\)\s*(;.*)?$")
_DIRECTIVE = re.compile(r"^\s*#\s*(include|tryinclude|exec)\b\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    severity: str  # "error" | "warning"
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message}"


@dataclass(frozen=True)
class Item:
    name: str
    value: str
    line: int
    arrow: bool  # written "=>" (objects: exten, same, member)


@dataclass
class Section:
    name: str
    line: int
    template: bool = False
    parents: tuple[str, ...] = ()
    items: list[Item] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        """The last value of ``name`` (Asterisk: later settings win)."""
        for item in reversed(self.items):
            if item.name.lower() == name.lower():
                return item.value
        return None


@dataclass
class ConfFile:
    path: str
    sections: list[Section] = field(default_factory=list)
    includes: list[tuple[int, str]] = field(default_factory=list)
    orphans: list[Item] = field(default_factory=list)  # items before any [category]

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def resolved(self, section: Section) -> list[Item]:
        """The section's items with its templates' items first (one level of inheritance per parent, recursively;
        a cycle is cut)."""
        out: list[Item] = []
        seen: set[str] = set()

        def walk(s: Section) -> None:
            if s.name in seen:
                return
            seen.add(s.name)
            for parent in s.parents:
                p = self.section(parent)
                if p is not None:
                    walk(p)
            out.extend(s.items)

        walk(section)
        return out

    def resolved_get(self, section: Section, name: str) -> str | None:
        for item in reversed(self.resolved(section)):
            if item.name.lower() == name.lower():
                return item.value
        return None


class _PystConfig(pyst_config.Config):  # type: ignore[misc]
    """pyst2's Config reading pre-processed lines instead of opening the file itself."""

    def __init__(self, filename: str, lines: list[str]) -> None:
        self._prepared = lines
        super().__init__(filename)

    def load(self) -> None:
        self.raw_lines = self._prepared


def parse_conf(path: str | Path) -> tuple[ConfFile | None, list[Problem]]:
    """Parse one file; returns (None, problems) when it cannot be read or parsed."""
    name = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        return None, [Problem(name, None, "error", f"cannot read: {exc.strerror or exc}")]
    except UnicodeDecodeError as exc:
        return None, [Problem(name, text_line_of(exc.object, exc.start), "error", "not UTF-8 text")]
    conf = ConfFile(name)
    templates: dict[int, tuple[bool, tuple[str, ...]]] = {}
    prepared: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.replace("\\;", _ESCAPED_SEMI)
        directive = _DIRECTIVE.match(line)
        if directive:
            conf.includes.append((number, directive.group(2).strip().strip('"<>')))
            prepared.append(";" + line)
            continue
        m = _CATEGORY.match(line)
        if m:
            options = tuple(o.strip() for o in m.group(2).split(",") if o.strip())
            templates[number] = ("!" in options, tuple(o for o in options if o != "!"))
            line = f"[{m.group(1)}]" + (m.group(3) or "")
        prepared.append(line + "\n")
    try:
        parsed = _PystConfig(name, prepared)
    except pyst_config.ParseError as exc:
        line_no, reason = (exc.args + (None, None))[:2]
        return None, [Problem(name, line_no if isinstance(line_no, int) else None, "error",
                              f"cannot parse: {reason or exc}")]
    except Exception as exc:  # noqa: BLE001 - pyst2 raises bare Exceptions for odd lines; never a traceback
        return None, [Problem(name, None, "error", f"cannot parse: {exc}")]
    current: Section | None = None
    for element in parsed.lines:
        if isinstance(element, pyst_config.Category):
            template, parents = templates.get(element.number, (False, ()))
            current = Section(element.name.strip(), element.number, template, parents)
            conf.sections.append(current)
        elif isinstance(element, pyst_config.Item):
            item = Item(element.name, element.value.strip().replace(_ESCAPED_SEMI, ";"), element.number,
                        element.style == ">")
            if current is None:
                conf.orphans.append(item)
            else:
                current.items.append(item)
    return conf, []


def text_line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1
