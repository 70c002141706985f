"""``ccserver asterisk lint FILE…``: check Asterisk config files against ccserver's contract.

Each file is read with the files it ``#include``s (see :func:`ccserver.asterisk.conf.load_conf`); a file given
on the command line that another given file includes is checked as part of that one, once. Files are
classified by name (``extensions*``, ``queues*``, ``manager*``), else by content. Checks:

dialplan
  - a context of the dialplan files given runs the FastAGI ``incoming`` script                error
  - that context tests ``AGISTATUS`` (fallback when ccserver is unreachable)                    error
  - it queues on ``${CC_QUEUE}`` and sets ``QUEUE_PRIO``                                        warning
  - it passes ``${CC_CAMPAIGN_ID}`` to the script; no lab-only names (CC_PRIO, CC_TIMEOUT)      warning
  - every literal queue it names (``Queue(default,…)``) exists in the queues files given      error
  - it sets ``CHANNEL(language)`` from ``${CC_LANGUAGE}`` (prompts in the caller's language)   warning
  - it passes ``${CC_ARRIVED}`` and ``${CC_LINE}`` to the ``callback`` script                    warning
  - ``Queue(${CC_QUEUE},…)`` has option ``t`` (the agent may transfer: desktop transfers)       warning
  - the desktop's contexts exist: ``ccserver-transfer`` and ``ccserver-dial`` (click-to-dial)    warning
  - a campaign answer context (names ``CC_CAMPAIGN_ID``, queues, no ``incoming`` script) bounds
    ``Queue()`` by ``${CC_ABANDON_AFTER}`` and plays the abandon message                      warning
queues
  - a ``[general]`` setting given twice with different values (app_queue reads the first)        warning
  - a ``strategy`` Asterisk ignores: app_queue takes the first one of the category, so a
    queue's own line after its template's is dead                                              error
  - static ``member =>`` lines (QueueAdd/QueueRemove only work on dynamic members)              warning
  - ``ringinuse`` not ``no``; no ``setinterfacevar = yes`` (the survey's "answered" test)         warning
  - no ``autopause`` (a ring-no-answer keeps ringing an empty desk); a value Asterisk reads as no warning
  - a queue's ``context`` (its single-digit exit) names a context the dialplan files given lack  error
  - ``wrapuptime`` above 0 (it would add to the desktop's forced wrap-up, a pause)               warning
features
  - ``[featuremap]`` sets ``atxfer`` (AMI Atxfer, the desktop's attended transfer, needs it)     error
  - ``[featuremap]`` sets ``blindxfer`` (the agent's own DTMF transfer with Queue option t)       warning
manager
  - ``[general]`` ``channelvars`` carries ``CC_DECISION_ID`` (Asterisk reads channelvars only
    there; the last line wins)                                                                 error
    … and the rest of :data:`CHANNELVARS`                                                      warning
  - ``channelvars`` in a user section (Asterisk ignores it there)                               warning
  - a second plain ``[general]`` (Asterisk reads only the first; use ``[general](+)``)           warning
  - the AMI user (``[ccserver]``, or ``--ami-user``) is defined; the checks below are on it      error
  - ``read`` includes ``system`` (FullyBooted starts the resync)                                 error
  - ``write`` has none of ``command``, ``config``, ``system``                                   error
  - ``permit`` is set                                                                           error
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from ccserver.asterisk.conf import ConfFile, Item, Problem, Section, load_conf
from ccserver.asterisk.queues_writer import STRATEGIES

__all__ = ["CHANNELVARS", "Problem", "lint", "lint_main"]

# What manager.conf [general] `channelvars` must list: every event about a channel then carries these as
# "ChanVariable: NAME=value" headers, so the tracker gets the decision, the customer and the priority even
# with VarSet filtered out. QUEUE_PRIO comes after CC_PRIORITY: the tracker takes the last, app_queue's own.
CHANNELVARS = ("CC_DECISION_ID", "CC_CUSTOMER_ID", "CC_DID", "CC_CAMPAIGN_ID", "CC_PRIORITY", "QUEUE_PRIO")

_AGI_INCOMING = re.compile(r"AGI\(\s*agi://[^/,)]*/incoming\b([^)]*)\)", re.IGNORECASE)
_QUEUE_APP = re.compile(r"\bQueue\(([^,)]*)", re.IGNORECASE)
_AGI_CALLBACK = re.compile(r"AGI\(\s*agi://[^/,)]*/callback\b([^)]*)\)", re.IGNORECASE)
_LANGUAGE_SET = re.compile(r"CHANNEL\(language\)\s*=\s*\$\{CC_LANGUAGE\}", re.IGNORECASE)
_QUEUE_OPTIONS = re.compile(r"Queue\(\s*\$\{CC_QUEUE\}\s*,([^,)]*)", re.IGNORECASE)
DESKTOP_CONTEXTS = ("ccserver-transfer", "ccserver-dial")  # desktop.transfer_context, desktop.dial_context
_LAB_NAMES = re.compile(r"\$\{(CC_PRIO|CC_TIMEOUT)\}")
_QUEUE_KEYS = {"strategy", "member", "timeout", "ringinuse", "joinempty", "leavewhenempty", "wrapuptime", "retry"}
_MANAGER_KEYS = {"secret", "read", "write", "permit", "deny"}
_TRUE = ("yes", "true", "y", "t", "1", "on")  # Asterisk's ast_true()
_AUTOPAUSE = (*_TRUE, "no", "all")  # app_queue autopause2int(); anything else silently means "no"


def _kind(path: str, conf: ConfFile) -> str:
    name = Path(path).name.lower()
    for kind in ("extensions", "queues", "manager", "features"):
        if name.startswith(kind) or f"_{kind}" in name or f"-{kind}" in name:
            return kind
    names = {i.name.lower() for s in conf.sections for i in s.items}
    if conf.section("featuremap") is not None:
        return "features"
    if names & {"exten", "same"}:
        return "extensions"
    if names & _QUEUE_KEYS and "secret" not in names:
        return "queues"
    if names & _MANAGER_KEYS or "channelvars" in {i.name.lower() for i in conf.orphans}:
        return "manager"
    return "unknown"


def lint(paths: Sequence[str | Path], ami_user: str = "ccserver") -> list[Problem]:
    """Problems found in ``paths`` (checked together: queues named by a dialplan are looked up in the queues
    files given alongside; the AMI user checked is ``ami_user``, other users are the site's own). Never raises
    for bad input files."""
    problems: list[Problem] = []
    loaded: list[tuple[str, ConfFile | None, list[Problem]]] = []
    for path in paths:
        conf, errors = load_conf(path)
        loaded.append((str(path), conf, errors))
    parsed: dict[str, list[ConfFile]] = {"extensions": [], "queues": [], "manager": [], "features": []}
    for index, (path, conf, errors) in enumerate(loaded):
        if _included_elsewhere(index, loaded):
            continue
        problems += errors
        if conf is None:
            continue
        for item in conf.orphans:
            problems.append(Problem(item.path or conf.path, item.line, "error",
                                    f"'{item.name}' outside any [section]"))
        kind = _kind(path, conf)
        if kind == "unknown":
            problems.append(Problem(conf.path, None, "warning",
                                    "not recognised as a dialplan, queues, manager or features file: nothing "
                                    "checked"))
            continue
        parsed[kind].append(conf)
    queues_known = {s.name for conf in parsed["queues"] for s in conf.sections if not s.template}
    dialplans = parsed["extensions"]
    if dialplans and not any(_inbound(conf) for conf in dialplans):
        # One dialplan is often several files (extensions.conf, extensions_minivm.conf, ...): one of them will do.
        problems.append(Problem(dialplans[0].path, None, "error", "no context runs the FastAGI incoming script "
                                "(AGI(agi://127.0.0.1:4573/incoming,…)): #include extensions_ccserver.conf"))
    for conf in dialplans:
        problems += _lint_dialplan(conf, queues_known if parsed["queues"] else None)
    if dialplans and any(_inbound(conf) for conf in dialplans):
        problems += _desktop_contexts(dialplans)
    for conf in parsed["features"]:
        problems += _lint_features(conf)
    contexts = {s.name for conf in dialplans for s in conf.sections} if dialplans else None
    for conf in parsed["queues"]:
        problems += _lint_queues(conf, contexts)
    if parsed["manager"]:
        problems += _lint_manager(parsed["manager"], ami_user)
    return problems


def _included_elsewhere(index: int, loaded: list[tuple[str, ConfFile | None, list[Problem]]]) -> bool:
    """Whether another given file reads this one through #include (then it is checked there). Of two files that
    include each other, the first given is kept."""
    me = _real(loaded[index][0])
    mine = loaded[index][1]
    for other_index, (other_path, other, _) in enumerate(loaded):
        if other_index == index or other is None or _real(other_path) == me:
            continue
        if me in {_real(f) for f in other.files[1:]}:
            mutual = mine is not None and _real(other_path) in {_real(f) for f in mine.files[1:]}
            if not mutual or other_index < index:
                return True
    return False


def _real(path: str) -> str:
    try:
        return str(Path(path).resolve())
    except OSError:
        return path


def _inbound(conf: ConfFile) -> list[Section]:
    return [s for s in conf.sections if any(_AGI_INCOMING.search(i.value) for i in s.items)]


def _lint_dialplan(conf: ConfFile, queues_known: set[str] | None) -> list[Problem]:
    out: list[Problem] = []
    for section in _inbound(conf):
        values = [i.value for i in section.items]
        text = "\n".join(values)
        first = next(i for i in section.items if _AGI_INCOMING.search(i.value))
        if "AGISTATUS" not in text:
            out.append(Problem(first.path, first.line, "error", f"[{section.name}] never tests AGISTATUS: when "
                               "ccserver is unreachable the caller gets no queue (fall back to queue 'default')"))
        match = _AGI_INCOMING.search(first.value)
        if match is not None and "CC_CAMPAIGN_ID" not in match.group(1):
            out.append(Problem(first.path, first.line, "warning", f"[{section.name}] does not pass "
                               "${CC_CAMPAIGN_ID} to the incoming script: campaign legs may become prospects"))
        if not re.search(r"Queue\(\s*\$\{CC_QUEUE\}", text):
            out.append(Problem(section.path, section.line, "warning",
                               f"[{section.name}] never runs Queue(${{CC_QUEUE}})"))
        options = _QUEUE_OPTIONS.search(text)
        if options is not None and "t" not in options.group(1):
            out.append(Problem(section.path, section.line, "warning", f"[{section.name}] Queue(${{CC_QUEUE}}) "
                               "lacks option t: the agent cannot transfer the caller (desktop transfers fail)"))
        if "QUEUE_PRIO" not in text:
            out.append(Problem(section.path, section.line, "warning",
                               f"[{section.name}] never sets QUEUE_PRIO from CC_PRIORITY"))
        if not _LANGUAGE_SET.search(text):
            out.append(Problem(section.path, section.line, "warning", f"[{section.name}] never sets "
                               "CHANNEL(language)=${CC_LANGUAGE}: prompts after routing play in the channel's "
                               "default language, not the caller's"))
        for item in section.items:
            lab = _LAB_NAMES.search(item.value)
            if lab:
                out.append(Problem(item.path, item.line, "warning", f"${{{lab.group(1)}}} is the recording lab's "
                                   "name; ccserver sets CC_PRIORITY / CC_QUEUE_TIMEOUT"))
    for section in conf.sections:
        for item in section.items:
            callback = _AGI_CALLBACK.search(item.value)
            if callback is not None and not all(v in callback.group(1) for v in ("CC_ARRIVED", "CC_LINE")):
                out.append(Problem(item.path, item.line, "warning", f"[{section.name}] does not pass ${{CC_ARRIVED}} "
                                   "and ${CC_LINE} to the callback script: a caller leaving a queue loses their "
                                   "turn, and an IVR caller's callback follows the number dialled, not their line"))
    inbound = {s.name for s in _inbound(conf)}
    for section in conf.sections:
        text = "\n".join(i.value for i in section.items)
        queue_lines = [i.value for i in section.items if _QUEUE_APP.search(i.value)]
        if section.name in inbound or "CC_CAMPAIGN_ID" not in text or not queue_lines:
            continue  # not a campaign's answer context
        if not any("CC_ABANDON_AFTER" in v for v in queue_lines):
            out.append(Problem(section.path, section.line, "warning", f"[{section.name}] does not bound Queue() by "
                               "${CC_ABANDON_AFTER}: an answered campaign callee may wait for an agent in silence"))
        if "cc-campaign-abandon" not in text:
            out.append(Problem(section.path, section.line, "warning", f"[{section.name}] never plays "
                               "cc-campaign-abandon: an abandoned campaign callee must hear who called"))
    if queues_known is not None:
        for section in conf.sections:
            for item in section.items:
                for m in _QUEUE_APP.finditer(item.value):
                    name = m.group(1).strip()
                    if name and "$" not in name and name not in queues_known:
                        out.append(Problem(item.path, item.line, "error",
                                           f"queue '{name}' is not defined in the queues file(s) given"))
    return out


def _desktop_contexts(dialplans: Sequence[ConfFile]) -> list[Problem]:
    """The agent desktop transfers to ``ccserver-transfer`` and dials out through ``ccserver-dial`` (the
    defaults of desktop.transfer_context / desktop.dial_context)."""
    have = {s.name for conf in dialplans for s in conf.sections}
    return [Problem(dialplans[0].path, None, "warning", f"no [{name}] context: the agent desktop's "
                    + ("transfers" if name == "ccserver-transfer" else "click-to-dial")
                    + " fail (shipped in extensions_ccserver.conf; or set desktop."
                    + ("transfer_context" if name == "ccserver-transfer" else "dial_context") + ")")
            for name in DESKTOP_CONTEXTS if name not in have]


def _lint_features(conf: ConfFile) -> list[Problem]:
    featuremap = conf.section("featuremap")
    if featuremap is None:
        return []
    values = {i.name.lower(): i.value.strip() for i in conf.resolved(featuremap)}
    out: list[Problem] = []
    if not values.get("atxfer"):
        out.append(Problem(featuremap.path, featuremap.line, "error", "[featuremap] has no atxfer code: AMI Atxfer "
                           "(the desktop's attended transfer) fails without it (e.g. atxfer => *2)"))
    if not values.get("blindxfer"):
        out.append(Problem(featuremap.path, featuremap.line, "warning", "[featuremap] has no blindxfer code: agents "
                           "cannot transfer from their phone (e.g. blindxfer => #1)"))
    return out


def _lint_queues(conf: ConfFile, contexts: set[str] | None = None) -> list[Problem]:
    """``contexts``: the dialplan contexts of the dialplan files given with the queues (None: none given)."""
    out: list[Problem] = []
    general = conf.section("general")
    if general is not None:  # app_queue reads [general] with ast_variable_retrieve(): the first line wins
        first: dict[str, Item] = {}
        for item in general.items:
            kept = first.setdefault(item.name.lower(), item)
            if kept is not item and kept.value.strip().lower() != item.value.strip().lower():
                out.append(Problem(item.path, item.line, "warning", f"[general] {item.name} = {item.value} is "
                                   f"ignored: app_queue reads the first one, '{kept.value}' ({kept.path}:{kept.line})"))
    for section in _concrete(conf.sections):
        if section.name == "general" or section.append:
            continue  # an [x](+) left on its own is a fragment given alone: its queue is defined elsewhere
        items = conf.resolved(section)
        for item in items:
            if item.name.lower() == "member":
                out.append(Problem(item.path, item.line, "warning", f"[{section.name}] static member "
                                   f"'{item.value.split(',')[0]}': ccserver logs agents in with QueueAdd/QueueRemove, "
                                   "which only work on dynamic members"))
        ringinuse = (conf.resolved_get(section, "ringinuse") or "yes").strip().lower()
        if ringinuse not in ("no", "false", "n", "f", "0", "off"):
            out.append(Problem(section.path, section.line, "warning",
                               f"[{section.name}] ringinuse is not 'no': agents on a call would be rung"))
        if (conf.resolved_get(section, "setinterfacevar") or "no").strip().lower() not in _TRUE:
            out.append(Problem(section.path, section.line, "warning", f"[{section.name}] lacks setinterfacevar = "
                               "yes: the shipped dialplan cannot tell an answered call (no post-call survey)"))
        out += _strategy_problems(section, items)
        exit_context = next((i for i in items if i.name.lower() == "context"), None)
        if contexts is not None and exit_context is not None and exit_context.value.strip() not in contexts:
            out.append(Problem(exit_context.path, exit_context.line, "error", f"[{section.name}] context = "
                               f"{exit_context.value.strip()}: no such context in the dialplan files given (a caller "
                               "pressing a key to leave the queue would be lost)"))
        wrapup = next((i for i in reversed(items) if i.name.lower() == "wrapuptime"), None)
        if wrapup is not None and wrapup.value.strip() not in ("", "0"):
            out.append(Problem(wrapup.path, wrapup.line, "warning", f"[{section.name}] wrapuptime = "
                               f"{wrapup.value.strip()}: it adds to the desktop's forced wrap-up (desktop."
                               "wrapup_seconds); set 0"))
        autopause = next((i for i in reversed(items) if i.name.lower() == "autopause"), None)
        if autopause is None:
            out.append(Problem(section.path, section.line, "warning", f"[{section.name}] has no autopause: a member "
                               "who does not answer keeps being rung (autopause = all pauses them, reason Auto-Pause)"))
        elif autopause.value.strip().lower() not in _AUTOPAUSE:
            out.append(Problem(autopause.path, autopause.line, "warning", f"[{section.name}] autopause = "
                               f"{autopause.value}: Asterisk knows yes, no and all, and reads anything else as no"))
    return out


def _strategy_problems(section: Section, items: list[Item]) -> list[Problem]:
    strategies = [i for i in items if i.name.lower() == "strategy"]
    if not strategies:
        return [Problem(section.path, section.line, "warning",
                        f"[{section.name}] has no strategy (Asterisk's default: ringall)")]
    used = strategies[0]  # app_queue: ast_variable_retrieve(), the first match; templates' lines come first
    out = []
    if used.value.strip().lower() not in STRATEGIES:
        out.append(Problem(used.path, used.line, "warning", f"[{section.name}] strategy = {used.value} is not one "
                           "Asterisk knows: it runs ringall"))
    where = "its template" if used not in section.items else "an earlier line"
    for item in strategies[1:]:
        if item.value.strip().lower() != used.value.strip().lower():
            out.append(Problem(item.path, item.line, "error", f"[{section.name}] strategy = {item.value} is ignored: "
                               f"app_queue takes the first strategy of the category, '{used.value}' from {where} "
                               f"(line {used.line}); set strategy in each queue, not in a template it also sets"))
    return out


def _lint_manager(confs: Sequence[ConfFile], ami_user: str) -> list[Problem]:
    out: list[Problem] = []
    users = 0
    general: Section | None = None
    general_items: list[Item] = []  # the first [general], plus fragments given alongside that add to it with (+)
    for conf in confs:
        for section in _concrete(conf.sections):
            if section.name == "general":
                if general is None:
                    general = section
                    general_items += section.items
                elif section.append:
                    general_items += section.items
                else:
                    out.append(Problem(section.path, section.line, "warning", "a second [general]: Asterisk reads "
                                       "only the first one; write [general](+) to add to it"))
                continue
            if section.append:
                continue  # an [x](+) left on its own is a fragment given alone
            out += _channelvars_in_user(conf, section)
            if section.name == ami_user:
                users += 1
                out += _lint_manager_user(conf, section)
    if users == 0:
        out.append(Problem(confs[0].path, None, "error", f"no AMI user [{ami_user}] in the manager files given "
                           "(include manager_ccserver.conf; --ami-user names another user)"))
    if general is None:
        first = confs[0]
        out.append(Problem(first.path, None, "error", "no [general] with channelvars: queue and channel events will "
                           "not carry the routing decision (add manager_ccserver_general.conf, or "
                           f"'channelvars = {','.join(CHANNELVARS)}' under [general] in manager.conf)"))
        return out
    enabled = next((i.value for i in reversed(general_items) if i.name.lower() == "enabled"), None)
    if general.append:
        pass  # only ccserver's fragment was given: the site's own [general] (and `enabled`) is not known here
    elif (enabled or "no").strip().lower() not in _TRUE:
        out.append(Problem(general.path, general.line, "warning", "[general] enabled is not 'yes': AMI is off"))
    lines = [i for i in general_items if i.name.lower() == "channelvars"]
    have = {v.strip().upper() for v in lines[-1].value.split(",")} if lines else set()
    where = (lines[-1].path, lines[-1].line) if lines else (general.path, general.line)
    if "CC_DECISION_ID" not in have:
        out.append(Problem(*where, "error", "[general] channelvars lacks CC_DECISION_ID (only the last channelvars "
                           "line counts): queue and channel events cannot be tied to routing decisions"))
    missing = [v for v in CHANNELVARS if v != "CC_DECISION_ID" and v not in have]
    if missing:
        out.append(Problem(*where, "warning", f"[general] channelvars lacks {', '.join(missing)}: with VarSet "
                           "filtered out ccserver does not see them"))
    return out


def _lint_manager_user(conf: ConfFile, section: Section) -> list[Problem]:
    out: list[Problem] = []
    items = conf.resolved(section)
    read = _classes(i.value for i in items if i.name.lower() == "read")
    write = _classes(i.value for i in items if i.name.lower() == "write")
    if "system" not in read and "all" not in read:
        out.append(Problem(section.path, section.line, "error", f"[{section.name}] read lacks 'system': ccserver "
                           "never sees FullyBooted and cannot resync after Asterisk restarts"))
    bad = sorted(write & {"command", "config", "system", "all"})
    if bad:
        out.append(Problem(section.path, section.line, "error", f"[{section.name}] write grants {', '.join(bad)}: "
                           "ccserver needs only call, agent, originate, reporting"))
    if not any(i.name.lower() == "permit" for i in items):
        out.append(Problem(section.path, section.line, "error",
                           f"[{section.name}] has no permit: restrict the AMI user to the ccserver host"))
    return out


def _channelvars_in_user(conf: ConfFile, section: Section) -> list[Problem]:
    out: list[Problem] = []
    for item in conf.resolved(section):
        if item.name.lower() == "channelvars":
            out.append(Problem(item.path, item.line, "warning", f"[{section.name}] channelvars does nothing in a "
                               "user section: Asterisk reads it only in [general]"))
    return out


def _concrete(sections: Iterable[Section]) -> list[Section]:
    return [s for s in sections if not s.template]


def _classes(values: Iterable[str]) -> set[str]:
    return {c.strip().lower() for v in values for c in v.split(",") if c.strip()}


def lint_main(paths: Sequence[str], ami_user: str = "ccserver") -> int:
    """Print the problems, one per line, then a count. Exit code 0: no errors; 1: errors; 2: no files."""
    if not paths:
        print("ccserver asterisk lint: give one or more .conf files")
        return 2
    problems = lint(paths, ami_user)
    for problem in problems:
        print(problem)
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = len(problems) - errors
    print(f"{len(paths)} file(s): {errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0
