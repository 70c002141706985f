"""What the reports page shows, from the report rows (pure: rows in, tables and SVG charts out).

- by queue: a line chart of the service level per period (one line per queue, the busiest six), the table;
- by agent: a bar chart of calls handled per agent over the range, the table;
- by store (the dealer group's view): every store's queues summed, side by side — a bar chart of their service
  levels and the table. Queues without a store are grouped under ``None`` (the page names it "no store").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ccserver.kpi.counts import AgentCounts, QueueCounts, agent_figures, queue_figures
from ccserver.wallboard.charts import Series, bar_chart, line_chart

MAX_LINES = 6


def queue_chart(report: list[dict[str, Any]]) -> str:
    periods = sorted({r["period"] for r in report})
    by_queue: dict[str, dict[str, Any]] = {}
    offered: dict[str, int] = {}
    for r in report:
        by_queue.setdefault(r["queue"], {})[r["period"]] = r["service_level"]
        offered[r["queue"]] = offered.get(r["queue"], 0) + int(r["offered"] or 0)
    busiest = sorted(by_queue, key=lambda q: (-offered[q], q))[:MAX_LINES]
    series = [Series(q, [by_queue[q].get(p) for p in periods], f"s{k}") for k, q in enumerate(busiest)]
    labels = [p[5:16].replace("T", " ") if len(p) > 10 else p[5:] for p in periods]
    return line_chart(series, labels, title="", label_every=max(1, len(periods) // 12))


def agent_totals(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Agent rows as stored summed over the whole range, busiest first. The stored rows, not a report's: its
    figures are rounded to a tenth, and adding them up again would add up the roundings (32,400.1 s signed in)."""
    sums: dict[str, tuple[AgentCounts, str]] = {}
    for r in rows:
        counts, _name = sums.get(r["interface"], (AgentCounts(), ""))
        counts.add(AgentCounts.from_dict(r))
        sums[r["interface"]] = (counts, r.get("name") or r["interface"])
    rows = [{"interface": i, "name": n, **agent_figures(c)} for i, (c, n) in sums.items()]
    return sorted(rows, key=lambda r: (-r["handled"], r["name"]))


def agent_chart(totals: list[dict[str, Any]]) -> str:
    top = totals[:20]
    return bar_chart([r["name"] for r in top], [float(r["handled"]) for r in top], title="")


def store_totals(rows: Iterable[dict[str, Any]], store_of: Mapping[str, int | None],
                 names: Mapping[int, str]) -> list[dict[str, Any]]:
    """Queue interval rows summed per store (``store_of``: queue → store id), stores in name order."""
    sums: dict[int | None, QueueCounts] = {}
    for r in rows:
        store = store_of.get(r["queue"])
        counts = sums.get(store)
        if counts is None:
            counts = sums[store] = QueueCounts()
        counts.add(QueueCounts.from_dict(r))
    out = [{"store_id": s, "store": names.get(s, "") if s is not None else None, **queue_figures(c)}
           for s, c in sums.items()]
    return sorted(out, key=lambda r: (r["store"] is None, r["store"] or ""))


def store_chart(totals: list[dict[str, Any]], no_store: str) -> str:
    return bar_chart([r["store"] or no_store for r in totals], [r["service_level"] for r in totals], title="",
                     unit="%")
