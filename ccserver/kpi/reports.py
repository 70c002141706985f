"""Reports from interval rows (pure): summed per queue or agent and per 15-minute interval or local day, with the
derived figures; and their CSV form, safe to open in a spreadsheet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from ccserver.kpi.counts import AgentCounts, QueueCounts, agent_figures, queue_figures
from ccserver.kpi.intervals import iso_local

__all__ = ["AGENT_COLUMNS", "QUEUE_COLUMNS", "agent_report", "queue_report", "to_csv"]

INTERVALS = ("15m", "day")

QUEUE_COLUMNS = (
    "period", "server", "queue", "offered", "answered", "abandoned", "short_abandoned", "unanswered",
    "answered_in_sl", "sl_threshold", "service_level", "abandon_rate", "asa", "aht", "max_wait", "handled", "talk",
    "wrapup", "transfers", "callbacks",
)
AGENT_COLUMNS = (
    "period", "server", "interface", "name", "handled", "aht", "talk", "transfers", "missed", "occupancy",
    "signed_in", "available", "ringing", "talking", "wrapup", "paused", "paused_by_reason", "queues",
)


def _period(row: dict[str, Any], interval: str, tz: str) -> str:
    return row["day"] if interval == "day" else iso_local(row["interval_start"], tz)


def queue_report(rows: Iterable[dict[str, Any]], interval: str, tz: str) -> list[dict[str, Any]]:
    """Queue rows summed per (period, server, queue), in period order."""
    sums: dict[tuple[str, str, str], tuple[QueueCounts, float]] = {}
    for row in rows:
        key = (_period(row, interval, tz), row["server"], row["queue"])
        counts, threshold = sums.get(key, (QueueCounts(), 0.0))
        counts.add(QueueCounts.from_dict(row))
        sums[key] = (counts, max(threshold, float(row.get("sl_threshold") or 0)))
    return [{"period": period, "server": server, "queue": queue, "sl_threshold": threshold, **queue_figures(counts)}
            for (period, server, queue), (counts, threshold) in sorted(sums.items())]


def agent_report(rows: Iterable[dict[str, Any]], interval: str, tz: str) -> list[dict[str, Any]]:
    """Agent rows summed per (period, server, interface), in period order."""
    sums: dict[tuple[str, str, str], tuple[AgentCounts, str]] = {}
    for row in rows:
        key = (_period(row, interval, tz), row["server"], row["interface"])
        counts, _name = sums.get(key, (AgentCounts(), ""))
        counts.add(AgentCounts.from_dict(row))
        sums[key] = (counts, row.get("name") or row["interface"])  # rows come in time order: the latest name
    return [{"period": period, "server": server, "interface": interface, "name": name, **agent_figures(counts)}
            for (period, server, interface), (counts, name) in sorted(sums.items())]


# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): =, +, -, @, and tab / CR that some
# spreadsheets strip before looking.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict):
        value = "; ".join(f"{k or '(none)'}={v}" for k, v in sorted(value.items()))
    elif isinstance(value, list | tuple | set):
        value = " ".join(sorted(str(v) for v in value))
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # shown as text, never evaluated
    return value


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> bytes:
    """UTF-8 with a byte-order mark (so spreadsheets read Chinese names right), one header line, CRLF lines."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
