"""A discrete-event simulation of one campaign through the real pacing code (``ccserver dialer simulate``).

Simulated time only (no sleeping, no sockets): every second the pacer is asked how many lines to dial
(:func:`ccserver.dialer.pacing.lines_to_dial`, fed by :class:`~ccserver.dialer.pacing.LiveStats` exactly as the
dialer feeds it); each Originate rings, is answered with probability ``answer_rate`` after a ring time, or fails;
an answered callee gets a free agent at once or within the 2 s limit, otherwise the call is abandoned (the
message is played and the line released). Handle time (talk + wrap-up) is lognormal — right-skewed like real
talk times — with ``handle_mean`` seconds and a coefficient of variation ``handle_cv``.

Occupancy = agent-seconds on calls / (agents × duration). Abandon rate = abandoned / answered.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from dataclasses import dataclass

from ccserver.dialer.pacing import LiveStats, PacingSettings, lines_to_dial

__all__ = ["SimulationResult", "simulate"]

ABANDON_AFTER = 2.0  # seconds an answered callee may wait for an agent


@dataclass(frozen=True)
class SimulationResult:
    mode: str
    agents: int
    hours: float
    dialed: int
    answered: int
    abandoned: int
    connected: int
    occupancy: float
    abandon_rate: float
    max_hourly_abandon_rate: float

    def line(self) -> str:
        return (f"{self.mode:<12} agents={self.agents} hours={self.hours:g} dialed={self.dialed} "
                f"answered={self.answered} connected={self.connected} abandoned={self.abandoned} "
                f"occupancy={self.occupancy:.1%} abandon_rate={self.abandon_rate:.2%} "
                f"worst_hour={self.max_hourly_abandon_rate:.2%}")


def _lognormal(rng: random.Random, mean: float, cv: float) -> float:
    sigma2 = math.log1p(cv * cv)
    return rng.lognormvariate(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2))


def simulate(*, agents: int = 20, answer_rate: float = 0.3, hours: float = 8.0, mode: str = "predictive",
             seed: int = 1, handle_mean: float = 240.0, handle_cv: float = 0.8,
             settings: PacingSettings | None = None, tick: float = 1.0) -> SimulationResult:
    if agents < 1 or not 0.0 < answer_rate <= 1.0 or hours <= 0:
        raise ValueError("agents ≥ 1, 0 < answer_rate ≤ 1 and hours > 0 are required")
    settings = settings or PacingSettings()
    rng = random.Random(seed)
    stats = LiveStats()
    end = hours * 3600.0
    seq = itertools.count()
    events: list[tuple[float, int, str, float]] = []  # (at, order, kind, value)
    free = agents
    busy_since: dict[int, float] = {}  # agent-call id -> start
    waiting: list[float] = []  # answered callees waiting for an agent: their deadline
    in_flight = 0
    dialed = answered = abandoned = connected = 0
    busy_seconds = 0.0
    hourly: dict[int, list[int]] = {}

    def push(at: float, kind: str, value: float = 0.0) -> None:
        heapq.heappush(events, (at, next(seq), kind, value))

    def connect(now: float) -> None:
        nonlocal free, connected, busy_seconds
        free -= 1
        connected += 1
        call = next(seq)
        busy_since[call] = now
        handle = _lognormal(rng, handle_mean, handle_cv)
        busy_seconds += max(0.0, min(end, now + handle) - now)
        push(now + handle, "done", float(call))

    push(0.0, "tick")
    while events:
        now, _, kind, value = heapq.heappop(events)
        if now >= end:
            break
        if kind == "tick":
            snap = stats.snapshot(mode, free - len(waiting) if free > len(waiting) else 0, in_flight,
                                  [now - s for s in busy_since.values()], now)
            for _ in range(lines_to_dial(snap, settings)):
                dialed += 1
                in_flight += 1
                if rng.random() < answer_rate:
                    ring = rng.uniform(4.0, 25.0)
                    push(now + ring, "answer", ring)
                else:
                    push(now + rng.choice((3.0, 30.0, 30.0, 30.0)), "noanswer")
            push(now + tick, "tick")
        elif kind == "noanswer":
            in_flight -= 1
            stats.result(False, 0.0)
        elif kind == "answer":
            in_flight -= 1
            answered += 1
            stats.result(True, value)
            if free > len(waiting):
                stats.answered(now, False)
                hourly.setdefault(int(now // 3600), [0, 0])[0] += 1
                connect(now)
            else:
                waiting.append(now + ABANDON_AFTER)
                push(now + ABANDON_AFTER, "giveup", now + ABANDON_AFTER)
        elif kind == "giveup":
            if value in waiting:
                waiting.remove(value)
                abandoned += 1
                stats.answered(now, True)
                bucket = hourly.setdefault(int(now // 3600), [0, 0])
                bucket[0] += 1
                bucket[1] += 1
        elif kind == "done":
            start = busy_since.pop(int(value))
            stats.handled(now - start)
            free += 1
            if waiting:  # the longest-waiting answered callee takes the agent just freed
                waiting.pop(0)
                stats.answered(now, False)
                hourly.setdefault(int(now // 3600), [0, 0])[0] += 1
                connect(now)
    worst = max((a / n for n, a in hourly.values() if n >= 20), default=0.0)
    return SimulationResult(mode, agents, hours, dialed, answered, abandoned, connected,
                            busy_seconds / (agents * end), abandoned / answered if answered else 0.0, worst)
