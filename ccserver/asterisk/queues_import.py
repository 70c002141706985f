"""``ccserver asterisk import-queues queues.conf``: make ccserver's ``queues`` table know Asterisk's queues.

Every concrete queue (not ``[general]``, not a ``(!)`` template) is created in ``queues`` or, when it exists,
has its strategy updated; nothing is deleted (call history keeps queue names). A queue named after a line
(sales, service, complaints, insurance, hotline) gets that line when it is new. Static members are reported:
ccserver manages membership dynamically.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccserver.asterisk.conf import Problem, load_conf

__all__ = ["import_queues", "import_queues_main"]


def import_queues(path: str | Path, session_factory: Callable[[], Any]) -> dict[str, Any]:
    """Returns ``{"created": [...], "updated": [...], "unchanged": [...], "static_members": {queue: n},
    "problems": [Problem, ...]}``; when the file cannot be parsed nothing is written."""
    from sqlalchemy import select

    from ccserver.db.models import LINES, Queue

    summary: dict[str, Any] = {"created": [], "updated": [], "unchanged": [], "static_members": {}, "problems": []}
    conf, problems = load_conf(path)
    summary["problems"] = problems
    if conf is None:
        return summary
    wanted: dict[str, str] = {}
    for section in conf.sections:
        if section.template or section.name == "general" or section.append:
            continue
        name = section.name
        if not name or len(name) > 80 or any(c in name for c in " ,;$\"'"):
            summary["problems"].append(Problem(conf.path, section.line, "warning",
                                               f"queue name {name!r} skipped: not usable in the dialplan"))
            continue
        # The strategy Asterisk runs: app_queue reads the first strategy line (a template's comes first).
        first = conf.resolved_first(section, "strategy")
        wanted[name] = (first.value if first is not None else "ringall").strip()[:32]
        members = sum(1 for i in conf.resolved(section) if i.name.lower() == "member")
        if members:
            summary["static_members"][name] = members
    with session_factory() as session:
        existing = {q.name: q for q in session.scalars(select(Queue).where(Queue.name.in_(list(wanted))))}
        for name, strategy in wanted.items():
            row = existing.get(name)
            if row is None:
                session.add(Queue(name=name, strategy=strategy, line=name if name in LINES else None,
                                  description="imported from queues.conf"))
                summary["created"].append(name)
            elif row.strategy != strategy:
                row.strategy = strategy
                summary["updated"].append(name)
            else:
                summary["unchanged"].append(name)
        session.commit()
    return summary


def import_queues_main(path: str, database_url: str) -> int:
    """Print what was imported; exit code 0, or 1 when the file could not be read/parsed or SQL failed."""
    from ccserver.db.engine import make_engine, session_factory

    engine = make_engine(database_url)
    try:
        summary = import_queues(path, session_factory(engine))
    except Exception as exc:  # noqa: BLE001 - one clear line, no traceback
        print(f"import-queues: database error: {exc.__class__.__name__}: {exc}")
        return 1
    finally:
        engine.dispose()
    for problem in summary["problems"]:
        print(problem)
    if any(p.severity == "error" for p in summary["problems"]):
        print("import-queues: nothing imported")
        return 1
    for key in ("created", "updated", "unchanged"):
        if summary[key]:
            print(f"{key}: {', '.join(summary[key])}")
    for name, n in summary["static_members"].items():
        print(f"note: [{name}] has {n} static member(s); ccserver manages members dynamically (QueueAdd)")
    print(f"{len(summary['created'])} created, {len(summary['updated'])} updated, "
          f"{len(summary['unchanged'])} unchanged")
    return 0
