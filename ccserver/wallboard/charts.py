"""SVG charts drawn on the server (pure functions: figures in, SVG text out; no script, every label escaped).

Used by the wallboard (service level and abandon rate by 15 minutes, today against yesterday) and the reports
page (a figure per period, per queue or agent). Colour is never the only signal: each series also has its own
dash pattern and point marker, and a legend names it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from markupsafe import Markup

from ccserver.kpi.counts import QueueCounts, queue_figures

SLOTS_PER_DAY = 96  # 15-minute intervals
MARKERS = ("circle", "square", "diamond", "triangle")
# five patterns: a campaign's results chart draws five series, and its fifth (refused) was solid like its first
DASHES = ("", "8 5", "3 4", "12 4 3 4", "1 3 1 3 7 3")


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    values: Sequence[float | None]  # one per x position; None = no data (a gap in the line)
    css: str = "s0"  # class for colour (app.css); the dash and marker follow the series' position



def chart_markup(svg: str) -> Markup:
    """A chart drawn here, for a template: every label these functions draw is html.escape()d, so it is marked
    safe in this one place and no template needs ``|safe`` (tests/test_http_security_matrix.py scans for it)."""
    return Markup(svg)  # noqa: S704 - built by this module's chart functions

def day_slots(rows: Iterable[dict[str, Any]], day_start: float) -> list[dict[str, Any] | None]:
    """Queue interval rows of one local day summed per 15-minute slot (every queue together): each slot's
    figures (``service_level``, ``abandon_rate``, ``offered`` …) or None where nothing was counted."""
    sums: list[QueueCounts | None] = [None] * SLOTS_PER_DAY
    for row in rows:
        slot = int((float(row["interval_start"]) - day_start) // 900)
        if 0 <= slot < SLOTS_PER_DAY:
            counts = sums[slot]
            if counts is None:
                counts = sums[slot] = QueueCounts()
            counts.add(QueueCounts.from_dict(row))
    return [queue_figures(c) if c is not None and not c.empty() else None for c in sums]


def figure(slots: Sequence[dict[str, Any] | None], name: str) -> list[float | None]:
    return [None if s is None or s.get(name) is None else float(s[name]) for s in slots]


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _marker(kind: str, x: float, y: float) -> str:
    if kind == "circle":
        return f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="3.5"/>'
    if kind == "square":
        return f'<rect x="{_fmt(x - 3)}" y="{_fmt(y - 3)}" width="6" height="6"/>'
    if kind == "diamond":
        return (f'<path d="M{_fmt(x)} {_fmt(y - 4)}L{_fmt(x + 4)} {_fmt(y)}L{_fmt(x)} {_fmt(y + 4)}'
                f'L{_fmt(x - 4)} {_fmt(y)}Z"/>')
    return f'<path d="M{_fmt(x)} {_fmt(y - 4)}L{_fmt(x + 4)} {_fmt(y + 3)}L{_fmt(x - 4)} {_fmt(y + 3)}Z"/>'


def line_chart(series: Sequence[Series], x_labels: Sequence[str], *, title: str, y_max: float = 100.0,
               unit: str = "%", width: int = 960, height: int = 300, label_every: int = 1,
               target: float | None = None, target_label: str = "") -> str:
    """A line chart: one line per series over the x positions (``x_labels``, every ``label_every``-th shown),
    y from 0 to ``y_max`` with gridlines, an optional dashed target line, a legend. Returns SVG text."""
    n = max(len(x_labels), max((len(s.values) for s in series), default=0), 1)
    left, right, top, bottom = 56, 16, 36, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max(y_max, max((v for s in series for v in s.values if v is not None), default=0.0)) or 1.0

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / n)

    def y(v: float) -> float:
        return top + plot_h * (1 - min(max(v, 0.0), top_value) / top_value)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="{escape(title)}">', f"<title>{escape(title)}</title>" if title else ""]
    for k in range(5):  # gridlines at 0, 25, 50, 75, 100 % of the scale
        v = top_value * k / 4
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{_fmt(y(v))}" y2="{_fmt(y(v))}"/>')
        out.append(f'<text class="axis" x="{left - 6}" y="{_fmt(y(v) + 4)}" text-anchor="end">'
                   f"{escape(_fmt(v))}{escape(unit)}</text>")
    for i, label in enumerate(x_labels):
        if i % max(1, label_every) == 0:
            out.append(f'<text class="axis" x="{_fmt(x(i))}" y="{height - bottom + 18}" text-anchor="middle">'
                       f"{escape(label)}</text>")
    if target is not None:
        out.append(f'<line class="target" x1="{left}" x2="{width - right}" y1="{_fmt(y(target))}" '
                   f'y2="{_fmt(y(target))}" stroke-dasharray="2 6"/>')
        if target_label:
            out.append(f'<text class="axis target-label" x="{width - right}" y="{_fmt(y(target) - 5)}" '
                       f'text-anchor="end">{escape(target_label)}</text>')
    legend_x = left
    for k, s in enumerate(series):
        dash, marker = DASHES[k % len(DASHES)], MARKERS[k % len(MARKERS)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        runs: list[list[tuple[float, float]]] = [[]]
        for i, value in enumerate(s.values):
            if value is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append((x(i), y(value)))
        out.append(f'<g class="series {escape(s.css)}">')
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{_fmt(px)},{_fmt(py)}" for px, py in run)
                out.append(f'<polyline points="{points}" fill="none"{dash_attr}/>')
            # Markers tell the series apart without colour; on a dense day every hour's is enough.
            for j, (px, py) in enumerate(run):
                if len(run) == 1 or n <= 48 or j % 4 == 0:
                    out.append(_marker(marker, px, py))
        out.append("</g>")
        if not s.label:
            continue  # the page draws this series' legend itself (in its own language)
        out.append(f'<g class="legend {escape(s.css)}"><line x1="{legend_x}" x2="{legend_x + 28}" y1="16" y2="16"'
                   f'{dash_attr}/>{_marker(marker, legend_x + 14, 16)}'
                   f'<text x="{legend_x + 34}" y="21">{escape(s.label)}</text></g>')
        legend_x += 44 + 11 * len(s.label)
    out.append("</svg>")
    return "".join(out)


def bar_chart(labels: Sequence[str], values: Sequence[float | None], *, title: str, unit: str = "",
              width: int = 960, height: int = 300, css: str = "s0") -> str:
    """Vertical bars, one per label, each with its value written above it (the figure is readable without
    the colour or the bar's height). Labels wider than their bar's slot (twenty agents' names, say) are slanted,
    and the longest shortened with "…" (the whole label stays in the bar's tooltip), so none overlaps another."""
    n = max(len(labels), 1)
    left, right, top, bottom = 56, 16, 24, 56
    slot = (width - left - right) / n
    slanted = any(_label_width(label) > slot * 0.9 for label in labels)
    if slanted:
        shown = [_shorten(label, _SLANTED_MAX) for label in labels]
        bottom = 24 + int(max(_label_width(label) for label in shown) * _SIN_SLANT)
        height += bottom - 56  # the plot keeps its height; the labels get room below it
        # The first labels reach left of their bars: the margin grows so they are not cut off at the edge.
        reach = max(_label_width(label) * _COS_SLANT - slot * (i + 0.5) for i, label in enumerate(shown))
        if reach + 8 > left:
            left = int(reach) + 8
            slot = (width - left - right) / n
    else:
        shown = list(labels)
    plot_h = height - top - bottom
    top_value = max((v for v in values if v is not None), default=0.0) or 1.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="{escape(title)}">', f"<title>{escape(title)}</title>",
           f'<line class="grid" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>']
    for i, (label, v) in enumerate(zip(labels, values, strict=False)):
        cx = left + slot * (i + 0.5)
        if v is not None:
            h = plot_h * v / top_value
            out.append(f'<rect class="bar {escape(css)}" x="{_fmt(cx - slot * 0.35)}" y="{_fmt(top + plot_h - h)}" '
                       f'width="{_fmt(slot * 0.7)}" height="{_fmt(h)}"><title>{escape(label)}</title></rect>')
            out.append(f'<text class="value" x="{_fmt(cx)}" y="{_fmt(top + plot_h - h - 4)}" text-anchor="middle">'
                       f"{escape(_fmt(v))}{escape(unit)}</text>")
        if slanted:  # anchored at its end under the bar, rising to the left
            y = top + plot_h + 14
            out.append(f'<text class="axis" x="{_fmt(cx + 4)}" y="{y}" text-anchor="end" '
                       f'transform="rotate(-{_SLANT} {_fmt(cx + 4)} {y})">{escape(shown[i])}</text>')
        else:
            out.append(f'<text class="axis" x="{_fmt(cx)}" y="{top + plot_h + 18}" text-anchor="middle">'
                       f"{escape(label)}</text>")
    out.append("</svg>")
    return "".join(out)


_SLANT = 35  # degrees
_SIN_SLANT = math.sin(math.radians(_SLANT))
_COS_SLANT = math.cos(math.radians(_SLANT))
_SLANTED_MAX = 18.0 * 13  # px: the longest slanted label, about 18 Latin letters (13 px axis text)


def _label_width(label: str, size: float = 13.0) -> float:
    """About how wide ``label`` is drawn at ``size`` px: a CJK character an em, anything else 0.6 of one."""
    return sum(size if ord(ch) >= 0x2E80 else size * 0.6 for ch in label)


def _shorten(label: str, limit: float) -> str:
    if _label_width(label) <= limit:
        return label
    while label and _label_width(label + "…") > limit:
        label = label[:-1]
    return label.rstrip() + "…"


def hour_labels() -> list[str]:
    """x labels of a day by 15 minutes: "00:00" … "23:45"."""
    return [f"{i // 4:02d}:{(i % 4) * 15:02d}" for i in range(SLOTS_PER_DAY)]
