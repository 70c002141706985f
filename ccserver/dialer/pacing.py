"""How many lines to dial now — the pure pacing model, no I/O, no clock of its own.

- ``preview``: the dialer never dials by itself (the agent dials or skips from the card): 0.
- ``progressive``: one line per free agent, counting the lines already ringing: ``free - in_flight``.
- ``predictive``: choose the total number of lines in flight ``L`` (ringing now + new) as large as possible such
  that the *expected abandon ratio* of the next ring cycle stays under a target:

      answered X ~ Binomial(L, p)          p = the live answer rate
      agents   A = free + Σ Bernoulli(q_i)  q_i = P(busy agent i is done within the ring time | done e_i so far),
                                           from the recent handle times (an empirical distribution)
      ratio    = E[max(0, X − A)] / E[X]   (abandoned / answered, the TSR definition)

  The target follows the rolling abandon rate: it aims at ``aim × cap`` — ``target = 2·aim·cap − observed``,
  clipped to ``[0, cap]`` — so a campaign running hot pulls back on its own, and at or above the cap the target
  is 0, which allows no line beyond the agents certainly free (progressive). Until ``min_samples`` results are
  in (and as many finished calls), predictive dials progressively.

:class:`LiveStats` keeps the rolling figures from plain events (the caller passes the time).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MODES", "LiveStats", "PacingInput", "PacingSettings", "expected_abandon_ratio", "lines_to_dial"]

MODES = ("preview", "progressive", "predictive")


@dataclass(frozen=True)
class PacingSettings:
    abandon_cap: float = 0.03  # US TSR 16 CFR 310.4(b)(4)(i): ≤ 3 % of live-answered calls
    aim: float = 0.5  # aim at this fraction of the cap, leaving room for chance
    min_samples: int = 30  # results needed before the answer rate is trusted
    max_lines_per_agent: float = 6.0  # hard ceiling on lines in flight per signed-in agent

    def __post_init__(self) -> None:
        if not 0.0 <= self.abandon_cap < 1.0 or not 0.0 < self.aim <= 1.0:
            raise ValueError("abandon_cap must be in [0, 1) and aim in (0, 1]")
        if self.min_samples < 0 or self.max_lines_per_agent < 1.0:
            raise ValueError("min_samples must be ≥ 0 and max_lines_per_agent ≥ 1")


@dataclass(frozen=True)
class PacingInput:
    """A snapshot of one campaign's floor, as plain data."""

    mode: str
    free_agents: int
    in_flight: int  # Originated, not answered or failed yet
    busy_elapsed: Sequence[float] = ()  # for each busy agent: seconds into the current call (talk + wrap-up)
    answer_rate: float | None = None  # live; None: not known yet
    samples: int = 0  # results behind answer_rate
    ring_time: float = 20.0  # mean seconds from Originate to answer
    handle_times: Sequence[float] = ()  # recent handle times, SORTED ascending
    abandon_rate: float = 0.0  # rolling

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if self.free_agents < 0 or self.in_flight < 0:
            raise ValueError("free_agents and in_flight must be ≥ 0")


def _done_within(handle_sorted: Sequence[float], elapsed: float, horizon: float) -> float:
    """P(H ≤ elapsed + horizon | H > elapsed) from the empirical distribution of H."""
    n = len(handle_sorted)
    if n == 0:
        return 0.0
    beyond = n - bisect.bisect_right(handle_sorted, elapsed)
    if beyond == 0:  # longer than anything seen: assume it ends within the horizon no likelier than average
        return min(1.0, horizon / max(1e-9, sum(handle_sorted) / n))
    within = bisect.bisect_right(handle_sorted, elapsed + horizon) - (n - beyond)
    return within / beyond


def _agents_pmf(free: int, probs: Sequence[float]) -> list[float]:
    """Distribution of free + Σ Bernoulli(probs) (Poisson binomial), indexed by the agent count."""
    pmf = [1.0]
    for q in probs:
        if q <= 0.0:
            continue
        nxt = [0.0] * (len(pmf) + 1)
        for k, mass in enumerate(pmf):
            nxt[k] += mass * (1.0 - q)
            nxt[k + 1] += mass * q
        pmf = nxt
    return [0.0] * free + pmf


def _binomial_pmf(n: int, p: float) -> list[float]:
    if p <= 0.0:
        return [1.0] + [0.0] * n
    if p >= 1.0:
        return [0.0] * n + [1.0]
    pmf = [0.0] * (n + 1)
    pmf[0] = math.exp(n * math.log1p(-p))
    ratio = p / (1.0 - p)
    for k in range(1, n + 1):
        pmf[k] = pmf[k - 1] * (n - k + 1) / k * ratio
    if pmf[0] == 0.0:  # underflow for large n: fall back to exact logs
        pmf = [math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                        + k * math.log(p) + (n - k) * math.log1p(-p)) for k in range(n + 1)]
    return pmf


def _shortfall(agents_pmf: Sequence[float], up_to: int) -> list[float]:
    """g[x] = E[max(0, x − A)] for x = 0 … up_to."""
    g = [0.0] * (up_to + 1)
    below = 0.0  # P(A < x)
    for x in range(1, up_to + 1):
        below += agents_pmf[x - 1] if x - 1 < len(agents_pmf) else 0.0
        g[x] = g[x - 1] + below
    return g


def expected_abandon_ratio(lines: int, p: float, agents_pmf: Sequence[float],
                           shortfall: Sequence[float] | None = None) -> float:
    """E[max(0, X − A)] / E[X] for X ~ Binomial(lines, p)."""
    if lines <= 0 or p <= 0.0:
        return 0.0
    g = shortfall if shortfall is not None and len(shortfall) > lines else _shortfall(agents_pmf, lines)
    pmf = _binomial_pmf(lines, p)
    return sum(pmf[x] * g[x] for x in range(lines + 1)) / (lines * p)


def target_ratio(observed: float, settings: PacingSettings) -> float:
    aim = settings.aim * settings.abandon_cap
    return min(settings.abandon_cap, max(0.0, 2.0 * aim - observed))


def lines_to_dial(state: PacingInput, settings: PacingSettings = PacingSettings()) -> int:
    """New Originates to send now for this campaign (≥ 0)."""
    if state.mode == "preview":
        return 0
    progressive = max(0, state.free_agents - state.in_flight)
    if state.mode == "progressive":
        return progressive
    p = state.answer_rate
    # Too few results, or too few finished calls (early on only the short ones have finished: the model would
    # think every busy agent is about to be free) — dial progressively until both are known.
    if p is None or p <= 0.0 or min(state.samples, len(state.handle_times)) < settings.min_samples:
        return progressive
    agents_total = state.free_agents + len(state.busy_elapsed)
    ceiling = max(state.in_flight, math.floor(settings.max_lines_per_agent * agents_total))
    probs = [_done_within(state.handle_times, e, state.ring_time) for e in state.busy_elapsed]
    pmf = _agents_pmf(state.free_agents, probs)
    target = target_ratio(state.abandon_rate, settings)
    g = _shortfall(pmf, ceiling)
    # The ratio grows with the lines: binary search the largest total within the target.
    lo, hi = state.in_flight, ceiling
    if expected_abandon_ratio(lo, p, pmf, g) > target:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if expected_abandon_ratio(mid, p, pmf, g) <= target:
            lo = mid
        else:
            hi = mid - 1
    return max(0, lo - state.in_flight)


class LiveStats:
    """Rolling figures of one campaign from plain events; the caller passes the time (epoch or monotonic s).

    - answer rate: over the last ``results`` Originate results (answered or not);
    - ring time: mean seconds to answer over the same answered results;
    - handle times: the last ``handles`` calls' talk + wrap-up seconds (kept sorted for the model);
    - abandon rate: abandoned / answered over the last ``window`` seconds.
    """

    def __init__(self, *, results: int = 300, handles: int = 300, window: float = 3600.0,
                 default_ring: float = 20.0) -> None:
        self.window = window
        self.default_ring = default_ring
        self._results: deque[tuple[bool, float]] = deque(maxlen=results)
        self._handles: deque[float] = deque(maxlen=handles)
        self._sorted: list[float] = []
        self._answers: deque[tuple[float, bool]] = deque()  # (at, abandoned)
        self._abandoned = 0

    def result(self, answered: bool, ring_seconds: float) -> None:
        self._results.append((answered, ring_seconds))

    def handled(self, seconds: float) -> None:
        if len(self._handles) == self._handles.maxlen:
            old = self._handles[0]
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        self._handles.append(seconds)
        bisect.insort(self._sorted, seconds)

    def answered(self, at: float, abandoned: bool) -> None:
        self._answers.append((at, abandoned))
        self._abandoned += abandoned
        self._expire(at)

    def _expire(self, now: float) -> None:
        while self._answers and self._answers[0][0] <= now - self.window:
            _, was = self._answers.popleft()
            self._abandoned -= was

    @property
    def samples(self) -> int:
        return len(self._results)

    @property
    def answer_rate(self) -> float | None:
        if not self._results:
            return None
        return sum(1 for a, _ in self._results if a) / len(self._results)

    @property
    def ring_time(self) -> float:
        rings = [r for a, r in self._results if a]
        return sum(rings) / len(rings) if rings else self.default_ring

    @property
    def handle_times(self) -> list[float]:
        return self._sorted

    def abandon_rate(self, now: float) -> float:
        self._expire(now)
        return self._abandoned / len(self._answers) if self._answers else 0.0

    def snapshot(self, mode: str, free_agents: int, in_flight: int, busy_elapsed: Sequence[float],
                 now: float) -> PacingInput:
        return PacingInput(mode, free_agents, in_flight, tuple(busy_elapsed), self.answer_rate, self.samples,
                           self.ring_time, self._sorted, self.abandon_rate(now))
