"""Reading Asterisk ``.conf`` files with pyst2's parser (``asterisk.config``), without tracebacks.

pyst2 parses the core syntax (``[category]``, ``name = value`` / ``name => value``, ``;`` comments). What it
does not know is handled around it, line numbers kept:

- ``#include`` / ``#tryinclude`` / ``#exec`` lines are recorded and hidden from pyst2; :func:`load_conf` follows
  the includes the way Asterisk's config loader does (see there);
- category options ``[name](!)`` (a template), ``[name](tpl1,tpl2)`` (inherit), ``[name](+)`` (add to an
  existing category) are split off the category line and recorded;
- ``\\;`` (an escaped semicolon, literal in Asterisk) survives pyst2's comment split;
- block comments ``;-- … --;`` (nestable, over several lines: the stock manager.conf has them) are removed.

Anything that still fails (unreadable file, bad encoding, pyst2 ``ParseError``) becomes a :class:`Problem`
naming the file, the line and the reason.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path

from asterisk import config as pyst_config

__all__ = ["ConfFile", "Include", "Item", "Problem", "Section", "load_conf", "parse_conf"]

_ESCAPED_SEMI = "\ue000"
_CATEGORY = re.compile(r"^\s*\[([^\]]*)\]\s*\(([^)]*)\)\s*(;.*)?$")
_DIRECTIVE = re.compile(r"^\s*#\s*(include|tryinclude|exec)\b\s*(.*)$", re.IGNORECASE)
_MAX_DEPTH = 20  # deeper than any real setup; a loop is caught before this anyway


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
    path: str = ""  # the file it was read from (an #include may bring items into another file's category)


@dataclass(frozen=True)
class Include:
    line: int
    kind: str  # "include" | "tryinclude" | "exec"
    target: str


@dataclass
class Section:
    name: str
    line: int
    template: bool = False
    parents: tuple[str, ...] = ()
    items: list[Item] = field(default_factory=list)
    path: str = ""
    append: bool = False  # written [name](+): adds to the category of that name defined earlier

    def get(self, name: str) -> str | None:
        """The last value of ``name`` (most settings: later lines win)."""
        for item in reversed(self.items):
            if item.name.lower() == name.lower():
                return item.value
        return None


@dataclass
class ConfFile:
    path: str
    sections: list[Section] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    orphans: list[Item] = field(default_factory=list)  # items before any [category]
    files: list[str] = field(default_factory=list)  # every file read into this one (itself first)

    def section(self, name: str) -> Section | None:
        """The first category of that name: the one Asterisk's ``ast_variable_browse`` reads."""
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def resolved(self, section: Section) -> list[Item]:
        """The section's items as Asterisk holds them: each template's items first (copied when the category is
        created, recursively), then the section's own. A cycle is cut."""
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
        """The last value of ``name`` with templates applied: what a module that reads every line gets."""
        for item in reversed(self.resolved(section)):
            if item.name.lower() == name.lower():
                return item.value
        return None

    def resolved_first(self, section: Section, name: str) -> Item | None:
        """The first ``name`` with templates applied: what ``ast_variable_retrieve`` returns. app_queue reads
        ``strategy`` this way, so a template's strategy beats the queue's own line."""
        for item in self.resolved(section):
            if item.name.lower() == name.lower():
                return item
        return None


class _PystConfig(pyst_config.Config):  # type: ignore[misc]
    """pyst2's Config reading pre-processed lines instead of opening the file itself."""

    def __init__(self, filename: str, lines: list[str]) -> None:
        self._prepared = lines
        super().__init__(filename)

    def load(self) -> None:
        self.raw_lines = self._prepared


def parse_conf(path: str | Path) -> tuple[ConfFile | None, list[Problem]]:
    """Parse one file, not following its includes; returns (None, problems) when it cannot be read or parsed."""
    name = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        return None, [Problem(name, None, "error", f"cannot read: {exc.strerror or exc}")]
    except UnicodeDecodeError as exc:
        return None, [Problem(name, text_line_of(exc.object, exc.start), "error", "not UTF-8 text")]
    conf = ConfFile(name, files=[name])
    options: dict[int, tuple[bool, bool, tuple[str, ...]]] = {}
    prepared: list[str] = []
    for number, line in enumerate(_without_block_comments(text.replace("\\;", _ESCAPED_SEMI).splitlines()), 1):
        directive = _DIRECTIVE.match(line)
        if directive:
            target = directive.group(2).split(";")[0].strip().strip('"<>')
            conf.includes.append(Include(number, directive.group(1).lower(), target))
            prepared.append(";" + line)
            continue
        m = _CATEGORY.match(line)
        if m:
            opts = tuple(o.strip() for o in m.group(2).split(",") if o.strip())
            options[number] = ("!" in opts, "+" in opts, tuple(o for o in opts if o not in ("!", "+")))
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
            template, append, parents = options.get(element.number, (False, False, ()))
            current = Section(element.name.strip(), element.number, template, parents, path=name, append=append)
            conf.sections.append(current)
        elif isinstance(element, pyst_config.Item):
            item = Item(element.name, element.value.strip().replace(_ESCAPED_SEMI, ";"), element.number,
                        element.style == ">", name)
            if current is None:
                conf.orphans.append(item)
            else:
                current.items.append(item)
    return conf, []


def _without_block_comments(lines: list[str]) -> list[str]:
    """Each line with ``;-- … --;`` block comments cut out, as Asterisk's loader does (``;---`` opens none; a
    plain ``;`` outside a block ends the line's text, and is kept for pyst2 to drop)."""
    depth = 0
    out: list[str] = []
    for line in lines:
        kept: list[str] = []
        i = 0
        while i < len(line):
            if line.startswith(";--", i) and not line.startswith(";---", i):
                depth += 1
                i += 3
            elif depth and line.startswith("--;", i):
                depth -= 1
                i += 3
            elif depth:
                i += 1
            elif line[i] == ";":
                kept.append(line[i:])
                break
            else:
                kept.append(line[i])
                i += 1
        out.append("".join(kept))
    return out


def load_conf(path: str | Path) -> tuple[ConfFile | None, list[Problem]]:
    """Parse ``path`` and every file it ``#include``s / ``#tryinclude``s, merged as Asterisk's loader merges them.

    - An included file continues the category open at the ``#include`` line: its lines before any
      ``[category]`` belong to that category, its own categories are added in place, and the including file
      goes on in the category it had open.
    - ``[name](+)`` adds to the first category of that name read so far (Asterisk refuses the file when there
      is none; in the file given itself this is not reported: such a file is a fragment meant to be included,
      like the shipped manager_ccserver_general.conf, and the lint merges it with the other files given).
    - A relative name is looked up beside the including file, then beside ``path`` (Asterisk takes relative
      names from its config folder, which is where the top file sits when you lint /etc/asterisk/*.conf);
      wildcards match as in Asterisk (glob, sorted). A missing ``#include`` is an error (Asterisk refuses the
      whole file), a missing ``#tryinclude`` is not. An include loop is reported and cut.
    - ``#exec`` is not run (a lint never runs programs): reported as a warning.

    Returns (None, problems) only when ``path`` itself cannot be read or parsed.
    """
    root = Path(path)
    problems: list[Problem] = []
    top, errors = parse_conf(root)
    if top is None:
        return None, errors
    merged = ConfFile(str(path))

    def visit(conf: ConfFile, current: Section | None, stack: tuple[Path, ...]) -> None:
        merged.files.append(conf.path)
        events: list[tuple[int, int, Section | Item | Include]] = []
        for s in conf.sections:
            events.append((s.line, 0, s))
            events.extend((i.line, 1, i) for i in s.items)
        events.extend((i.line, 1, i) for i in conf.orphans)
        events.extend((inc.line, 2, inc) for inc in conf.includes)
        events.sort(key=lambda e: (e[0], e[1]))
        for _, _, obj in events:
            if isinstance(obj, Section):
                current = _open_section(merged, obj, problems, fragment=len(stack) == 1)
            elif isinstance(obj, Item):
                (current.items if current is not None else merged.orphans).append(obj)
            else:
                _follow(obj, conf.path, current, stack)

    def _follow(inc: Include, where: str, current: Section | None, stack: tuple[Path, ...]) -> None:
        if inc.kind == "exec":
            problems.append(Problem(where, inc.line, "warning", f"#exec {inc.target} not run: its output is not "
                                    "checked"))
            return
        if not inc.target:
            problems.append(Problem(where, inc.line, "error", f"#{inc.kind} needs a file name"))
            return
        targets = _resolve(inc.target, Path(where).parent, root.parent)
        if not targets:
            if inc.kind == "include":
                problems.append(Problem(where, inc.line, "error", f"#include {inc.target}: no such file (Asterisk "
                                        "refuses to load this file when an #include is missing)"))
            return
        for target in targets:
            if any(_same(target, seen) for seen in stack):
                problems.append(Problem(where, inc.line, "error", f"#{inc.kind} {inc.target} includes itself "
                                        "(include loop): not followed"))
                continue
            if len(stack) >= _MAX_DEPTH:
                problems.append(Problem(where, inc.line, "error", f"#{inc.kind} {inc.target}: includes nested "
                                        f"deeper than {_MAX_DEPTH}: not followed"))
                continue
            conf, errs = parse_conf(target)
            problems.extend(errs)
            if conf is not None:
                visit(conf, current, (*stack, target))

    visit(top, None, (root,))
    return merged, problems


def _open_section(merged: ConfFile, section: Section, problems: list[Problem], *, fragment: bool) -> Section:
    if section.append:
        existing = merged.section(section.name)
        if existing is not None:
            return existing
        if not fragment:
                problems.append(Problem(section.path, section.line, "error", f"[{section.name}](+) adds to a category "
                                    "not defined before it: Asterisk refuses to load the file"))
    opened = Section(section.name, section.line, section.template, section.parents, [], section.path,
                     section.append)
    merged.sections.append(opened)
    return opened


def _resolve(target: str, here: Path, top: Path) -> list[Path]:
    candidates = [Path(target)] if Path(target).is_absolute() else [here / target, top / target]
    for candidate in candidates:
        found = sorted(Path(p) for p in glob.glob(str(candidate)) if Path(p).is_file())
        if found:
            return found
    return []


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def text_line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1
