"""The KPI counters of one queue or one agent over one period (an interval, a day), and the figures derived from
them. Plain data: summed across intervals and servers by adding, stored as one SQL row per interval.

Definitions (README "KPIs and reports" says the same):

- a caller's **queue visit** is counted once, when it ends: ``answered`` (an agent took it), ``abandoned`` (the
  caller hung up while waiting), or ``unanswered`` (left the queue otherwise: the queue's timeout, leave-empty,
  lost in an Asterisk restart). ``offered`` = answered + abandoned + unanswered. Callers still waiting are live
  figures (``waiting``), not yet offered;
- ``short_abandoned``: abandoned within ``kpi.short_abandon_seconds`` (included in ``abandoned``);
- ``answered_in_sl``: answered within the queue's service-level threshold;
- **service level** = answered_in_sl / (offered − short_abandoned), in percent;
- **ASA** = answered callers' wait / answered; **AHT** = (talk + wrap-up) / handled, where a call is *handled*
  when its talk ends;
- **occupancy** (agents) = (talking + wrap-up) / (available + ringing + talking + wrap-up): the share of the time
  signed in and not paused that went to calls;
- **wrap-up** is app_queue's own (``wrapuptime``) *and* the desktop's forced wrap-up, which is a queue pause with
  the reason ``wrapup`` (ccserver/desktop): time paused with that reason counts as wrap-up (in AHT, occupancy and
  the queue's wrap-up), never as paused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["WRAPUP_PAUSE", "AgentCounts", "QueueCounts", "agent_figures", "counted_state", "queue_figures"]

WRAPUP_PAUSE = "wrapup"  # the pause reason of the desktop's forced wrap-up (ccserver.desktop.settings.WRAPUP_REASON)


def counted_state(state: str, reason: str = "") -> tuple[str, str]:
    """The (state, reason) an agent's time counts in: idle is available; paused for forced wrap-up is wrap-up."""
    if state == "idle":
        return "available", reason
    if state == "paused" and reason == WRAPUP_PAUSE:
        return "wrapup", ""
    return state, reason


@dataclass(slots=True)
class QueueCounts:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    unanswered: int = 0
    answered_in_sl: int = 0
    wait_answered: float = 0.0  # seconds, summed over the answered callers
    wait_abandoned: float = 0.0
    max_wait: float = 0.0  # the longest wait of a visit that ended in the period
    handled: int = 0
    talk: float = 0.0
    wrapup: float = 0.0
    transfers: int = 0
    callbacks: int = 0

    def add(self, other: QueueCounts) -> None:
        for f in fields(self):
            name = f.name
            if name == "max_wait":
                self.max_wait = max(self.max_wait, other.max_wait)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def empty(self) -> bool:
        return self == QueueCounts()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueueCounts:
        return cls(**{f.name: data[f.name] for f in fields(cls) if data.get(f.name) is not None})


AGENT_STATES = ("available", "ringing", "talking", "wrapup", "paused")


@dataclass(slots=True)
class AgentCounts:
    handled: int = 0
    talk: float = 0.0  # talk time of the calls handled (answer to the end of the agent's part)
    transfers: int = 0
    missed: int = 0  # rings the agent let ring out (AgentRingNoAnswer)
    available: float = 0.0  # seconds in each state
    ringing: float = 0.0
    talking: float = 0.0
    wrapup: float = 0.0
    paused: float = 0.0
    paused_by_reason: dict[str, float] = field(default_factory=dict)  # "" = paused without a reason
    queues: set[str] = field(default_factory=set)  # queues the agent was a member of or took calls from

    def add(self, other: AgentCounts) -> None:
        for name in ("handled", "talk", "transfers", "missed", *AGENT_STATES):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, seconds in other.paused_by_reason.items():
            self.paused_by_reason[reason] = self.paused_by_reason.get(reason, 0.0) + seconds
        self.queues |= other.queues

    def spend(self, state: str, seconds: float, reason: str = "") -> None:
        """Time spent in an agent state (``AgentStateChanged.state``), counted as :func:`counted_state` says."""
        if seconds <= 0:
            return
        name, reason = counted_state(state, reason)
        if name not in AGENT_STATES:
            return  # logged out: not the agent's time
        setattr(self, name, getattr(self, name) + seconds)
        if name == "paused":
            self.paused_by_reason[reason] = self.paused_by_reason.get(reason, 0.0) + seconds

    def empty(self) -> bool:
        return self.handled == self.transfers == self.missed == 0 and not any(
            getattr(self, s) > 0 for s in AGENT_STATES)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["queues"] = sorted(self.queues)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentCounts:
        out = cls(**{f.name: data[f.name] for f in fields(cls)
                     if f.name not in ("paused_by_reason", "queues") and data.get(f.name) is not None})
        out.paused_by_reason = {str(k): float(v) for k, v in (data.get("paused_by_reason") or {}).items()}
        out.queues = set(data.get("queues") or ())
        return out


def _rounded(data: dict[str, Any]) -> dict[str, Any]:
    """Seconds to a tenth, for reading (the sums themselves stay exact)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, float):
            value = round(value, 1)
        elif isinstance(value, dict):
            value = _rounded(value)
        out[key] = value
    return out


def _ratio(part: float, whole: float, scale: float = 1.0, digits: int = 1) -> float | None:
    return round(scale * part / whole, digits) if whole > 0 else None


def queue_figures(c: QueueCounts) -> dict[str, Any]:
    """The counts with the derived figures (None where the period has nothing to divide by)."""
    return {
        **_rounded(c.to_dict()),
        "service_level": _ratio(c.answered_in_sl, c.offered - c.short_abandoned, 100.0),
        "abandon_rate": _ratio(c.abandoned, c.offered, 100.0),
        "asa": _ratio(c.wait_answered, c.answered),
        "aht": _ratio(c.talk + c.wrapup, c.handled),
    }


def agent_figures(c: AgentCounts) -> dict[str, Any]:
    busy = c.talking + c.wrapup
    return {
        **_rounded(c.to_dict()),
        "aht": _ratio(c.talk + c.wrapup, c.handled),
        "occupancy": _ratio(busy, c.available + c.ringing + busy, 100.0),
        "signed_in": round(c.available + c.ringing + busy + c.paused, 1),
    }
