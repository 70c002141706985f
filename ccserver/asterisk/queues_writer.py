"""``ccserver asterisk queues > queues_ccserver.conf``: Asterisk's queues file, written from ccserver's database.

Every queue of the ``queues`` table (its ``strategy``), every queue the configuration names that the table lacks
(``agi.default_variables`` CC_QUEUE, ``callrouting.unknown_did_queue``, the routing rules' queues, overflow,
after-hours and fallback queues) and the dialplan's own ``default``, plus one personal queue per user with an
extension (``routing.preferred_agent.queue_template``, ``agent-{ext}``: the name routing and agent sign-in use),
all built on the shipped templates below. The
shipped ``config/asterisk/queues_ccserver.conf`` is this output for the demo data of ``make run``.

Why each queue writes its own ``strategy``: app_queue reads ``strategy`` with the FIRST match in the category,
and a template's lines come first, so a template's strategy would beat every queue's own. The templates
therefore carry no strategy (``ccserver asterisk lint`` reports the mistake).

Site tuning that is not in the database (a queue's ``weight``, ``servicelevel`` ...) goes in
``queues_ccserver_custom.conf`` as ``[vip](+)`` blocks; the written file ``#tryinclude``s it, so regenerating
never loses it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from routing.decision import personal_queue
from routing.rules import RoutingRules, RulesError

__all__ = ["AgentRow", "QueueRow", "QueuesError", "configured_queues", "queues_main", "read_database",
           "render_queues"]

# app_queue's strategies (strat2int in app_queue.c; "roundrobin" is its old name for rrmemory).
STRATEGIES = frozenset({"ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "roundrobin", "linear",
                        "wrandom", "rrordered"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")  # as routing.rules.SAFE_NAME: safe in MSet and Queue()
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")

HEADER = """\
; ccserver's queues for Asterisk 13.8+, written by `ccserver asterisk queues` from ccserver's database
; (config/asterisk/queues_ccserver.conf is this output for the demo data of `make run`). Regenerate it after
; adding queues or agents: `ccserver asterisk queues > /etc/asterisk/queues_ccserver.conf`, then
; `asterisk -rx "queue reload all"` (a queue changed TO strategy linear needs an Asterisk restart).
; Stock Asterisk: `#include queues_ccserver.conf` at the end of /etc/asterisk/queues.conf. FreePBX manages
; queues itself: create queues with these names in the Queues module (or paste into queues_custom.conf).
; Check with `ccserver asterisk lint`.
;
; Members are DYNAMIC only: agents sign in and out with AMI QueueAdd / QueueRemove (and pause with
; QueuePause), which work on dynamic members only. No `member =>` lines here.
; Skills are penalties (see routing/rules.py): 0-4 primary skill, 5-9 secondary, 10+ backup; the dialplan sets
; QUEUE_MAX_PENALTY from CC_MAX_PENALTY.
; Each queue names its own `strategy`: app_queue takes the FIRST strategy line of a category, and a template's
; lines come first, so a strategy in the template would win over every queue's own.
"""

TEMPLATES = """\
; Added to queues.conf's own [general] (app_queue reads only the first [general], and there the FIRST line of
; each setting: a setting your [general] already has keeps your value). Include this file after [general].
[general](+)
persistentmembers = yes          ; dynamic members survive an Asterisk restart (ccserver resyncs anyway)
shared_lastcall = yes            ; an agent in several queues gets wrap-up once, not per queue
autofill = yes

; Common settings of every ccserver queue (no strategy here: see above).
[ccserver-queue](!)
timeout = 15                     ; ring a member this long
retry = 2
wrapuptime = 0                   ; ccserver's desktop does wrap-up (a pause, desktop.wrapup_seconds): never both
ringinuse = no                   ; never ring an agent already on a call
joinempty = yes                  ; ccserver decides about empty queues (overflow, callback) before Queue()
leavewhenempty = no
setinterfacevar = yes            ; MEMBERINTERFACE on the caller's channel: the dialplan's "answered" test
autopause = all                  ; a member who lets a call ring out is paused in EVERY queue (QueueMemberPause,
                                 ; Reason: Auto-Pause) until they unpause: calls never ring an empty desk
announce-frequency = 60
announce-holdtime = once
periodic-announce = cc-queue-callback-hint   ; "press 1 to be called back instead" (ccserver prompts build)
periodic-announce-frequency = 60
context = ccserver-queue-exit    ; a single key leaves the queue to this dialplan context: 1 = callback, turn kept
reportholdtime = no
servicelevel = 20
musicclass = default

; Personal queues: one per agent, named agent-<extension> (routing.preferred_agent.queue_template), with that
; agent as the only dynamic member (added at sign-in). The caller never waits here: if the agent is not free
; the call leaves at once and goes on to CC_QUEUE. No autopause: the preferred agent's ring is short
; (CC_AGENT_TIMEOUT); a ring-out here is not a sign the desk is empty.
[ccserver-personal](!)
strategy = ringall
timeout = 15
retry = 0
ringinuse = no
setinterfacevar = yes
autopause = no
joinempty = paused,penalty,inuse,ringing,unavailable,invalid,unknown,wrapup
leavewhenempty = paused,penalty,inuse,ringing,unavailable,invalid,unknown,wrapup
announce-frequency = 0
periodic-announce-frequency = 0
"""

# The shipped dialplan queues here when ccserver cannot be reached, whatever the database says.
DEFAULT_QUEUE = "default"
_DEFAULT_QUEUE_LINES = (
    "; The dialplan's fallback when ccserver cannot be reached: staff it with every agent (penalty 10, backup).",
    "; No autopause: while ccserver is down nobody could unpause.",
)

FOOTER = """\

; Site tuning kept across regenerations, e.g.  [vip](+)  weight = 10  (a missing file is fine).
#tryinclude queues_ccserver_custom.conf
"""


class QueuesError(ValueError):
    """A queue or agent that cannot be written safely; nothing is written."""


@dataclass(frozen=True)
class QueueRow:
    name: str
    strategy: str
    description: str | None = None


@dataclass(frozen=True)
class AgentRow:
    extension: str


def configured_queues(config: Any) -> dict[str, str]:
    """Queue names the configuration sends calls to, each with where it is named."""
    from ccserver.callrouting import RoutingSettings

    settings = RoutingSettings.from_config(config)
    rules = settings.routing_rules()
    named: dict[str, str] = {}

    def add(name: object, where: str) -> None:
        if isinstance(name, str) and name:
            named.setdefault(name, where)

    add(config.agi.default_variables.get("CC_QUEUE"), "agi.default_variables")
    add(settings.unknown_did_queue, "callrouting.unknown_did_queue")
    for line, table in rules.queues.items():
        for tier, queue in table.items():
            add(queue, f"routing.queues.{line}.{tier}")
    for source, target in rules.overflow.items():
        add(target, f"routing.overflow.{source}")
    for line, queue in rules.after_hours.items():
        add(queue, f"routing.after_hours.{line}")
    add(rules.fallback_queue, "routing.fallback_queue")
    return named


def read_database(session_factory: Callable[[], Any]) -> tuple[list[QueueRow], list[AgentRow]]:
    """The ``queues`` table (in id order) and every user with an extension."""
    from sqlalchemy import select

    from ccserver.db.models import Queue, User

    with session_factory() as session:
        rows = session.scalars(select(Queue).order_by(Queue.id))
        queues = [QueueRow(q.name, q.strategy, q.description) for q in rows]
        agents = [AgentRow(u.extension)
                  for u in session.scalars(select(User).where(User.extension.is_not(None)).order_by(User.id))
                  if u.extension and u.extension.strip()]
    return queues, agents


def render_queues(queues: Sequence[QueueRow], agents: Sequence[AgentRow], *,
                  configured: Mapping[str, str] | None = None, rules: RoutingRules | None = None) -> str:
    """The queues file. Raises :class:`QueuesError` naming every row that cannot be written (an unsafe name, a
    strategy Asterisk does not know); then nothing is written."""
    errors: list[str] = []
    lines = [HEADER, TEMPLATES]
    seen: set[str] = set()
    for q in queues:
        strategy = (q.strategy or "").strip().lower()
        if not _NAME.match(q.name):
            errors.append(f"queue {q.name!r}: not a usable queue name (letters, digits, _ . -)")
            continue
        if strategy not in STRATEGIES:
            errors.append(f"queue {q.name!r}: strategy {q.strategy!r} is not one Asterisk knows "
                          f"({', '.join(sorted(STRATEGIES))})")
            continue
        if q.name in seen:
            continue
        seen.add(q.name)
        if q.name == DEFAULT_QUEUE:
            lines += [*_DEFAULT_QUEUE_LINES]
        lines.append(_section(q.name, "ccserver-queue", q.description))
        lines.append(f"strategy = {strategy}")
        if q.name == DEFAULT_QUEUE:
            lines.append("autopause = no")
        lines.append("")
    extra = dict(configured or {})
    extra.setdefault(DEFAULT_QUEUE, "the shipped dialplan's fallback")
    missing = [(name, where) for name, where in extra.items() if name not in seen]
    if missing:
        lines.append("; Named by the configuration or the dialplan, not in the queues table.")
    for name, where in missing:
        if not _NAME.match(name):
            errors.append(f"queue {name!r} ({where}): not a usable queue name")
            continue
        seen.add(name)
        if name == DEFAULT_QUEUE:
            lines += [*_DEFAULT_QUEUE_LINES, _section(name, "ccserver-queue", None), "strategy = ringall",
                      "autopause = no", ""]
        else:
            lines += [_section(name, "ccserver-queue", f"named by {where}"), "strategy = leastrecent", ""]
    personal = _personal_queues(agents, rules if rules is not None else RoutingRules(), errors)
    if personal:
        lines.append("; One personal queue per user with an extension.")
    for name, agent in personal:
        if name in seen:
            errors.append(f"personal queue {name!r} (extension {agent.extension}) clashes with a queue of that name")
            continue
        seen.add(name)
        lines.append(_section(name, "ccserver-personal", None))
    if errors:
        raise QueuesError("; ".join(errors))
    return "\n".join(lines).rstrip("\n") + "\n" + FOOTER


def _personal_queues(agents: Iterable[AgentRow], rules: RoutingRules,
                     errors: list[str]) -> list[tuple[str, AgentRow]]:
    out: dict[str, AgentRow] = {}
    for agent in agents:
        ext = agent.extension.strip()
        name = personal_queue(rules, ext)  # routing's and sign-in's own name for it; "" when unusable
        if not name:
            errors.append(f"extension {ext!r}: personal queue name "
                          f"{rules.agent_queue_template.format(ext=ext)!r} is not usable")
            continue
        out.setdefault(name, agent)
    return sorted(out.items(), key=lambda kv: _natural(kv[1].extension.strip()))


def _natural(ext: str) -> tuple[int, int, str]:
    return (0, int(ext), ext) if ext.isdigit() else (1, 0, ext)


def _section(name: str, template: str, note: str | None) -> str:
    head = f"[{name}]({template})"
    if note:
        # A note is free text from the database: one line, no control characters, in a comment.
        head += "    ; " + _UNPRINTABLE.sub(" ", note).strip()
    return head


def queues_main(config: Any, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Write the file to ``out`` (stdout); on a bad row or a database error say so on ``err`` (stderr) and write
    nothing (exit 1)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    from ccserver.callrouting import RoutingSettings
    from ccserver.db.engine import make_engine, session_factory

    try:
        configured = configured_queues(config)
        rules = RoutingSettings.from_config(config).routing_rules()
    except (RulesError, ValueError) as exc:
        print(f"ccserver asterisk queues: configuration: {exc}", file=err)
        return 1
    engine = make_engine(config.database_url)
    try:
        queues, agents = read_database(session_factory(engine))
    except Exception as exc:  # noqa: BLE001 - one clear line, no traceback
        print(f"ccserver asterisk queues: database error: {exc.__class__.__name__}: {exc}", file=err)
        return 1
    finally:
        engine.dispose()
    try:
        text = render_queues(queues, agents, configured=configured, rules=rules)
    except QueuesError as exc:
        print(f"ccserver asterisk queues: nothing written: {exc}", file=err)
        return 1
    out.write(text)
    print(f"ccserver asterisk queues: {len(queues)} queue(s) from the database, "
          f"{len(agents)} user(s) with an extension", file=err)
    return 0
