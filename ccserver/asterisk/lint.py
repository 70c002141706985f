"""``ccserver asterisk lint FILE…``: check Asterisk config files against ccserver's contract.

Files are classified by name (``extensions*``, ``queues*``, ``manager*``), else by content. Checks:

dialplan
  - a context runs the FastAGI ``incoming`` script (``AGI(agi://…/incoming…)``)               error
  - that context tests ``AGISTATUS`` (fallback when ccserver is unreachable)                    error
  - it queues on ``${CC_QUEUE}`` and sets ``QUEUE_PRIO``                                        warning
  - it passes ``${CC_CAMPAIGN_ID}`` to the script; no lab-only names (CC_PRIO, CC_TIMEOUT)      warning
  - every literal queue it names (``Queue(default,…)``) exists in the queues files given      error
queues
  - static ``member =>`` lines (QueueAdd/QueueRemove only work on dynamic members)              warning
  - ``ringinuse`` not ``no``; no ``setinterfacevar = yes`` (the survey's "answered" test)         warning
manager
  - ``read`` includes ``system`` (FullyBooted starts the resync)                                 error
  - ``write`` has none of ``command``, ``config``, ``system``                                   error
  - ``permit`` is set                                                                           error
  - ``channelvars`` includes ``CC_DECISION_ID``                                                  warning
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from ccserver.asterisk.conf import ConfFile, Problem, Section, parse_conf

__all__ = ["Problem", "lint", "lint_main"]

_AGI_INCOMING = re.compile(r"AGI\(\s*agi://[^/,)]*/incoming\b([^)]*)\)", re.IGNORECASE)
_QUEUE_APP = re.compile(r"\bQueue\(([^,)]*)", re.IGNORECASE)
_LAB_NAMES = re.compile(r"\$\{(CC_PRIO|CC_TIMEOUT)\}")
_DIALPLAN_OBJECTS = {"exten", "same", "include", "switch", "ignorepat"}
_QUEUE_KEYS = {"strategy", "member", "timeout", "ringinuse", "joinempty", "leavewhenempty", "wrapuptime", "retry"}
_MANAGER_KEYS = {"secret", "read", "write", "permit", "deny"}


def _kind(path: str, conf: ConfFile) -> str:
    name = Path(path).name.lower()
    for kind in ("extensions", "queues", "manager"):
        if name.startswith(kind) or f"_{kind}" in name or f"-{kind}" in name:
            return kind
    names = {i.name.lower() for s in conf.sections for i in s.items}
    if names & {"exten", "same"}:
        return "extensions"
    if names & _QUEUE_KEYS and "secret" not in names:
        return "queues"
    if names & _MANAGER_KEYS:
        return "manager"
    return "unknown"


def lint(paths: Sequence[str | Path]) -> list[Problem]:
    """Problems found in ``paths`` (checked together: queues named by a dialplan are looked up in the queues
    files given alongside). Never raises for bad input files."""
    problems: list[Problem] = []
    parsed: dict[str, list[ConfFile]] = {"extensions": [], "queues": [], "manager": []}
    for path in paths:
        conf, errors = parse_conf(path)
        problems += errors
        if conf is None:
            continue
        for item in conf.orphans:
            problems.append(Problem(conf.path, item.line, "error", f"'{item.name}' outside any [section]"))
        kind = _kind(str(path), conf)
        if kind == "unknown":
            problems.append(Problem(conf.path, None, "warning",
                                    "not recognised as a dialplan, queues or manager file: nothing checked"))
            continue
        parsed[kind].append(conf)
    queues_known = {s.name for conf in parsed["queues"] for s in conf.sections if not s.template}
    for conf in parsed["extensions"]:
        problems += _lint_dialplan(conf, queues_known if parsed["queues"] else None)
    for conf in parsed["queues"]:
        problems += _lint_queues(conf)
    for conf in parsed["manager"]:
        problems += _lint_manager(conf)
    return problems


def _lint_dialplan(conf: ConfFile, queues_known: set[str] | None) -> list[Problem]:
    out: list[Problem] = []
    inbound = [s for s in conf.sections if any(_AGI_INCOMING.search(i.value) for i in s.items)]
    if not inbound:
        out.append(Problem(conf.path, None, "error",
                           "no context runs the FastAGI incoming script (AGI(agi://127.0.0.1:4573/incoming,…))"))
    for section in inbound:
        values = [i.value for i in section.items]
        text = "\n".join(values)
        first = next(i for i in section.items if _AGI_INCOMING.search(i.value))
        if "AGISTATUS" not in text:
            out.append(Problem(conf.path, first.line, "error", f"[{section.name}] never tests AGISTATUS: when "
                               "ccserver is unreachable the caller gets no queue (fall back to queue 'default')"))
        match = _AGI_INCOMING.search(first.value)
        if match is not None and "CC_CAMPAIGN_ID" not in match.group(1):
            out.append(Problem(conf.path, first.line, "warning", f"[{section.name}] does not pass "
                               "${CC_CAMPAIGN_ID} to the incoming script: campaign legs may become prospects"))
        if not re.search(r"Queue\(\s*\$\{CC_QUEUE\}", text):
            out.append(Problem(conf.path, section.line, "warning", f"[{section.name}] never runs Queue(${{CC_QUEUE}})"))
        if "QUEUE_PRIO" not in text:
            out.append(Problem(conf.path, section.line, "warning",
                               f"[{section.name}] never sets QUEUE_PRIO from CC_PRIORITY"))
        for item in section.items:
            lab = _LAB_NAMES.search(item.value)
            if lab:
                out.append(Problem(conf.path, item.line, "warning", f"${{{lab.group(1)}}} is the recording lab's "
                                   "name; ccserver sets CC_PRIORITY / CC_QUEUE_TIMEOUT"))
    if queues_known is not None:
        for section in conf.sections:
            for item in section.items:
                for m in _QUEUE_APP.finditer(item.value):
                    name = m.group(1).strip()
                    if name and "$" not in name and name not in queues_known:
                        out.append(Problem(conf.path, item.line, "error",
                                           f"queue '{name}' is not defined in the queues file(s) given"))
    return out


def _lint_queues(conf: ConfFile) -> list[Problem]:
    out: list[Problem] = []
    for section in _concrete(conf.sections):
        if section.name == "general":
            continue
        for item in conf.resolved(section):
            if item.name.lower() == "member":
                out.append(Problem(conf.path, item.line, "warning", f"[{section.name}] static member "
                                   f"'{item.value.split(',')[0]}': ccserver logs agents in with QueueAdd/QueueRemove, "
                                   "which only work on dynamic members"))
        ringinuse = (conf.resolved_get(section, "ringinuse") or "yes").strip().lower()
        if ringinuse not in ("no", "false", "0", "off"):
            out.append(Problem(conf.path, section.line, "warning",
                               f"[{section.name}] ringinuse is not 'no': agents on a call would be rung"))
        if (conf.resolved_get(section, "setinterfacevar") or "no").strip().lower() not in ("yes", "true", "1", "on"):
            out.append(Problem(conf.path, section.line, "warning", f"[{section.name}] lacks setinterfacevar = yes: "
                               "the shipped dialplan cannot tell an answered call (no post-call survey)"))
        if conf.resolved_get(section, "strategy") is None:
            out.append(Problem(conf.path, section.line, "warning",
                               f"[{section.name}] has no strategy (Asterisk's default: ringall)"))
    return out


def _lint_manager(conf: ConfFile) -> list[Problem]:
    out: list[Problem] = []
    for section in _concrete(conf.sections):
        if section.name == "general":
            enabled = (section.get("enabled") or "no").strip().lower()
            if enabled not in ("yes", "true", "1", "on"):
                out.append(Problem(conf.path, section.line, "warning", "[general] enabled is not 'yes': AMI is off"))
            continue
        items = conf.resolved(section)
        read = _classes(i.value for i in items if i.name.lower() == "read")
        write = _classes(i.value for i in items if i.name.lower() == "write")
        if "system" not in read and "all" not in read:
            out.append(Problem(conf.path, section.line, "error", f"[{section.name}] read lacks 'system': ccserver "
                               "never sees FullyBooted and cannot resync after Asterisk restarts"))
        bad = sorted(write & {"command", "config", "system", "all"})
        if bad:
            out.append(Problem(conf.path, section.line, "error", f"[{section.name}] write grants {', '.join(bad)}: "
                               "ccserver needs only call, agent, originate, reporting"))
        if not any(i.name.lower() == "permit" for i in items):
            out.append(Problem(conf.path, section.line, "error",
                               f"[{section.name}] has no permit: restrict the AMI user to the ccserver host"))
        channelvars = _classes(i.value for i in items if i.name.lower() == "channelvars")
        if "cc_decision_id" not in channelvars:
            out.append(Problem(conf.path, section.line, "warning", f"[{section.name}] channelvars lacks "
                               "CC_DECISION_ID: queue events cannot be tied to routing decisions"))
    return out


def _concrete(sections: Iterable[Section]) -> list[Section]:
    return [s for s in sections if not s.template]


def _classes(values: Iterable[str]) -> set[str]:
    return {c.strip().lower() for v in values for c in v.split(",") if c.strip()}


def lint_main(paths: Sequence[str]) -> int:
    """Print the problems, one per line, then a count. Exit code 0: no errors; 1: errors; 2: no files."""
    if not paths:
        print("ccserver asterisk lint: give one or more .conf files")
        return 2
    problems = lint(paths)
    for problem in problems:
        print(problem)
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    print(f"{len(paths)} file(s): {errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0
