"""A CSV of campaign targets, checked row by row — pure: text in, good rows and a report of the bad ones out.

Columns (a header row names them; without one the first column is the number): ``number`` (or ``phone``, ``号码``,
``电话``) required; ``due`` (or ``due_date``, ``到期日``: an ISO date, which orders the targets) optional. A bad row
is reported with its row number, the value and why; it never stops the others.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ccserver.phonetext import number_reason
from ccserver.texts import T
from routing.numbers import normalize

__all__ = ["MAX_ROWS", "ParsedTargets", "parse_targets_csv"]

NUMBER_NAMES = ("number", "phone", "号码", "电话")
DUE_NAMES = ("due", "due_date", "到期日")
MAX_ROWS = 100_000


@dataclass
class ParsedTargets:
    rows: int = 0
    good: list[tuple[int, str, datetime | None]] = field(default_factory=list)  # (row, e164, order)
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def parse_targets_csv(text: str, region: str) -> ParsedTargets:
    out = ParsedTargets()
    table = list(csv.reader(io.StringIO(text)))
    number_col, due_col, start = 0, None, 0
    if table:
        header = [cell.strip().lower() for cell in table[0]]
        if any(name in NUMBER_NAMES for name in header):
            number_col = next(i for i, name in enumerate(header) if name in NUMBER_NAMES)
            due_col = next((i for i, name in enumerate(header) if name in DUE_NAMES), None)
            start = 1
    seen: set[str] = set()
    for index, row in enumerate(table[start:], start=start + 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        out.rows += 1
        if out.rows > MAX_ROWS:
            out.errors.append({"row": index, "value": "", "error": T("more than {max_rows} rows: the rest ignored",
                                                                     max_rows=MAX_ROWS)})
            break
        raw = row[number_col].strip() if number_col < len(row) else ""
        result = normalize(raw, region=region)
        if result.e164 is None:
            out.errors.append({"row": index, "value": raw[:40], "error": T("not a phone number ({reason})",
                                                                              reason=number_reason(result.reason))})
            continue
        order = None
        if due_col is not None and due_col < len(row) and row[due_col].strip():
            try:
                due = date.fromisoformat(row[due_col].strip())
            except ValueError:
                out.errors.append({"row": index, "value": row[due_col].strip()[:40],
                                   "error": T("due must be a date such as 2026-12-01")})
                continue
            order = datetime(due.year, due.month, due.day, tzinfo=UTC)
        if result.e164 in seen:
            out.duplicates += 1
            continue
        seen.add(result.e164)
        out.good.append((index, result.e164, order))
    return out
