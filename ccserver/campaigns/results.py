"""A campaign's results per day and its attempts as CSV rows — pure: attempt rows in, figures / SVG out.

A day is the local date (``zone``) the attempt was dialled. ``reached``: an answered attempt whose outcome is
``reached`` or ``refused`` (a conversation happened); ``booked``: disposition ``booked`` (an appointment ticket).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ccserver.wallboard.charts import Series, line_chart

__all__ = ["EXPORT_COLUMNS", "SERIES", "daily", "daily_chart", "export_rows"]

SERIES = ("dialed", "answered", "reached", "booked", "refused")
EXPORT_COLUMNS = ("attempt_id", "target_id", "customer_id", "number", "originated_at", "answered_at", "ended_at",
                  "outcome", "disposition", "ticket_id", "agent_interface")


def daily(attempts: Iterable[dict[str, Any]], zone: str) -> list[dict[str, Any]]:
    """``{"day", "dialed", "answered", "reached", "booked", "refused"}`` per local day with attempts, by day."""
    tz = ZoneInfo(zone)
    days: dict[str, dict[str, Any]] = {}
    for a in attempts:
        at: datetime = a["originated_at"]
        day = at.astimezone(tz).date().isoformat()
        row = days.setdefault(day, {"day": day, **{name: 0 for name in SERIES}})
        row["dialed"] += 1
        if a.get("answered_at") is not None:
            row["answered"] += 1
        if a.get("outcome") in ("reached", "refused"):
            row["reached"] += 1
        if a.get("disposition") == "booked":
            row["booked"] += 1
        if a.get("outcome") == "refused" or a.get("disposition") == "refused":
            row["refused"] += 1
    return [days[d] for d in sorted(days)]


def daily_chart(days: Sequence[dict[str, Any]], *, title: str = "") -> str:
    """One line per figure of :data:`SERIES` over the days (the page draws the legend in its own language;
    series ``s0``…``s4`` in that order)."""
    labels = [d["day"][5:] for d in days]  # MM-DD
    series = [Series("", [float(d[name]) for d in days], f"s{k}") for k, name in enumerate(SERIES)]
    top = max((float(d["dialed"]) for d in days), default=0.0)
    return line_chart(series, labels, title=title, y_max=max(top, 4.0), unit="",
                      label_every=max(1, len(days) // 14))


def export_rows(attempts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The CSV rows (times in ISO 8601 UTC)."""
    out = []
    for a in attempts:
        row = {name: a.get(name) for name in EXPORT_COLUMNS}
        for name in ("originated_at", "answered_at", "ended_at"):
            value = row[name]
            if isinstance(value, datetime):
                row[name] = value.isoformat()
        out.append(row)
    return out
