"""The wallboard snapshot: what every wallboard shows, built from the live views (pure: plain data in, plain
data out; ccserver/wallboard/source.py gathers the inputs).

Per queue a tile: waiting callers (tier, wait, VIP flag), the longest wait, agents signed in / free, today's
offered / answered / abandoned, the service level and its **status** against the target — ``ok`` (at or above),
``warn`` (within 10 points), ``bad`` (below), ``none`` (nothing offered yet) — which the page shows as colour
*and* as an icon and a word. The VIP alert lists callers of ``vip_tiers`` (or flagged VIP) waiting now. The agent
grid: state and since when (the page counts the seconds itself). Ticket SLA alarms: the latest, newest first.
Times are epoch seconds so a client can count on without a new snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

WARN_BAND = 10.0  # percentage points under the target that are "warn", not yet "bad"
MAX_CALLERS = 12  # callers listed per tile (the count is always complete)
MAX_ALARMS = 8


def sl_status(service_level: float | None, target: float) -> str:
    if service_level is None:
        return "none"
    if service_level >= target:
        return "ok"
    if service_level >= target - WARN_BAND:
        return "warn"
    return "bad"


def _since(now: float, seconds: Any) -> float | None:
    """The epoch second something began, from how long it has lasted (None when unknown)."""
    return None if seconds is None else round(now - float(seconds), 1)


def build_snapshot(queues: Sequence[dict[str, Any]], agents: Sequence[dict[str, Any]],
                   alarms: Iterable[dict[str, Any]], *, now: float, target: float, vip_tiers: Iterable[str],
                   version: int = 0) -> dict[str, Any]:
    vip = set(vip_tiers)
    tiles = []
    vip_waiting = []
    for q in queues:
        today = q.get("today") or {}
        callers = sorted(q.get("callers") or [], key=lambda c: -float(c.get("wait") or 0.0))
        listed = []
        for c in callers:
            is_vip = (c.get("tier") in vip) or bool(c.get("vip"))
            entry = {"uniqueid": c.get("uniqueid"), "tier": c.get("tier"), "vip": is_vip,
                     "wait": c.get("wait"), "joined": _since(now, c.get("wait")),
                     "name": c.get("caller_name"), "priority": c.get("priority"), "ringing": bool(c.get("ringing"))}
            listed.append(entry)
            if is_vip:
                vip_waiting.append({**entry, "queue": q["queue"]})
        sl = today.get("service_level")
        tiles.append({
            "queue": q["queue"], "server": q.get("server"), "waiting": len(callers),
            "longest_wait": q.get("longest_wait") or 0.0,
            "oldest_joined": listed[0]["joined"] if listed else None,
            "logged_in": q.get("logged_in", 0), "available": q.get("available", 0),
            "offered": today.get("offered", 0), "answered": today.get("answered", 0),
            "abandoned": today.get("abandoned", 0), "service_level": sl, "sl_status": sl_status(sl, target),
            "sl_threshold": q.get("sl_threshold"), "asa": today.get("asa"),
            "callers": listed[:MAX_CALLERS],
        })
    tiles.sort(key=lambda t: (-t["waiting"], t["queue"]))
    grid = [{"name": a.get("name") or a.get("interface"), "interface": a.get("interface"), "state": a.get("state"),
             "reason": a.get("paused_reason") or "", "since": _since(now, a.get("in_state")),
             "handled": (a.get("today") or {}).get("handled", 0)}
            for a in agents if a.get("state") != "logged_out"]
    grid.sort(key=lambda a: (_STATE_ORDER.get(a["state"] or "", 9), a["name"] or ""))
    vip_waiting.sort(key=lambda c: -float(c.get("wait") or 0.0))
    waits = [t["longest_wait"] for t in tiles]
    totals = {
        "waiting": sum(t["waiting"] for t in tiles), "longest_wait": max(waits, default=0.0),
        "available": sum(1 for a in grid if a["state"] == "idle"), "agents": len(grid),
        "offered": sum(t["offered"] for t in tiles), "answered": sum(t["answered"] for t in tiles),
        "abandoned": sum(t["abandoned"] for t in tiles),
    }
    return {"version": version, "at": round(now, 3), "target": target, "totals": totals, "queues": tiles,
            "vip_waiting": vip_waiting, "agents": grid, "alarms": list(alarms)[:MAX_ALARMS], "charts": {}}


_STATE_ORDER = {"talking": 0, "ringing": 1, "wrapup": 2, "idle": 3, "paused": 4}


def for_queues(snapshot: dict[str, Any], visible: set[str]) -> dict[str, Any]:
    """A store manager's view of a snapshot: only their queues (tiles, VIP callers); totals recounted."""
    tiles = [t for t in snapshot["queues"] if t["queue"] in visible]
    totals = {**snapshot["totals"], "waiting": sum(t["waiting"] for t in tiles),
              "longest_wait": max((t["longest_wait"] for t in tiles), default=0.0),
              "offered": sum(t["offered"] for t in tiles), "answered": sum(t["answered"] for t in tiles),
              "abandoned": sum(t["abandoned"] for t in tiles)}
    return {**snapshot, "queues": tiles, "totals": totals,
            "vip_waiting": [c for c in snapshot["vip_waiting"] if c["queue"] in visible]}
