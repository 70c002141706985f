"""Routing benchmark: the pure functions on the per-call hot path, and the nightly tier cut-off job.

- ``normalize_miss_us`` / ``normalize_hit_us``: µs per ``routing.numbers.normalize`` on distinct real-world
  shapes (mobile, trunk + mobile, landline with area code, +86, 0086, local with the store's area code, 400)
  with the cache emptied first, and the same inputs again (LRU hits).
- ``decide_us``: µs per ``routing.decision.decide`` for a known gold customer with an open complaint, whose
  consultant is busy, on a live view of 6 queues with callers waiting (the full rule path: queue by tier,
  modifiers, language, overflow check, penalty band, preferred-agent check, EWT, callback decision);
  ``decide_unknown_us`` for an unidentified caller; ``to_dialplan_us`` for building the variables.
- ``score_us``: µs per ``routing.value.score`` (one customer).
- ``is_open_us``: µs per ``routing.calendar.is_open``.
- ``cutoffs_1m_ms`` / ``cutoffs_1m_us``: ``compute_cutoffs`` over 1,000,000 scores (best of 3).

    .venv/bin/python benchmarks/bench_routing.py
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from routing.calendar import OpeningHours, is_open  # noqa: E402
from routing.decision import (  # noqa: E402
    CallFacts,
    CustomerSummary,
    DidRoute,
    LiveView,
    QueueView,
    WaitingCaller,
    decide,
)
from routing.numbers import cache_clear, normalize  # noqa: E402
from routing.rules import RoutingRules  # noqa: E402
from routing.value import CustomerFacts, compute_cutoffs, score  # noqa: E402

NOW = 1_780_000_000.0


def _numbers(n: int, rng: random.Random) -> list[str]:
    out = []
    for i in range(n):
        mobile = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        landline = f"{rng.randrange(2, 10)}{rng.randrange(10**7):07d}"
        shape = i % 8
        out.append((mobile, "0" + mobile, f"+86{mobile}", f"0086 {mobile[:3]} {mobile[3:7]} {mobile[7:]}",
                    f"021{landline}", f"0755-{landline}", landline, f"400{rng.randrange(10**7):07d}")[shape])
    return list(dict.fromkeys(out))


def _per_call_us(fn: Callable[[Any], object], items: Sequence[Any], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - t0)
    return best / len(items) * 1e6


def _bench_normalize(n: int = 20_000) -> dict[str, float]:
    numbers = _numbers(n, random.Random(1))
    cache_clear()
    t0 = time.perf_counter()
    for raw in numbers:
        normalize(raw, local_area_code="21")
    miss = (time.perf_counter() - t0) / len(numbers) * 1e6
    hot = numbers[:2000]
    for raw in hot:
        normalize(raw, local_area_code="21")
    hit = _per_call_us(lambda raw: normalize(raw, local_area_code="21"), hot * 10, repeat=3)
    # The peer: what a plain phonenumbers parse + validity check costs on the same inputs.
    import phonenumbers

    def plain(raw: str) -> None:
        try:
            phonenumbers.is_valid_number(phonenumbers.parse(raw, "CN"))
        except phonenumbers.NumberParseException:
            pass

    peer = _per_call_us(plain, numbers)
    return {"normalize_miss_us": round(miss, 2), "normalize_hit_us": round(hit, 3),
            "phonenumbers_parse_validate_us": round(peer, 2)}


def _live() -> LiveView:
    rng = random.Random(2)
    queues = {}
    for name in ("vip", "sales", "service", "complaints", "insurance", "hotline"):
        waiting = tuple(WaitingCaller(rng.choice((1, 3, 5, 8, 10)), NOW - rng.uniform(0, 300)) for _ in range(8))
        queues[name] = QueueView(name, waiting, 12, 0, 2, (), 240.0, 200.0)
    for i in range(1, 200):  # personal queues: the signed-in agents, every third one free
        free = i % 3 == 0
        queues[f"agent-{8000 + i}"] = QueueView(f"agent-{8000 + i}", (), 1, int(free), 0, (0,) if free else (),
                                                0.0, 0.0, (f"PJSIP/{8000 + i}",) if free else ())
    return LiveView(queues)


def _bench_decide(n: int = 50_000) -> dict[str, float]:
    rules = RoutingRules()
    did = DidRoute("02158880001", "sh01", "sales", "sales", "21")
    live = _live()
    call = CallFacts("dec-1", normalize("13800138000"), NOW, "1780000000.1", "02158880001")
    gold = CustomerSummary("c42", "张三", "gold", 81.5, True, "zh", "8003", "8101", True, 1, False)
    known = _per_call_us(lambda _: decide(call, gold, did, True, live, rules), range(n), repeat=3)
    unknown = _per_call_us(lambda _: decide(call, None, did, True, live, rules), range(n), repeat=3)
    decision = decide(call, gold, did, True, live, rules)
    dialplan = _per_call_us(lambda _: decision.to_dialplan(), range(n), repeat=3)
    return {"decide_us": round(known, 2), "decide_unknown_us": round(unknown, 2), "to_dialplan_us": round(dialplan, 2)}


def _bench_score(n: int = 20_000) -> dict[str, float]:
    facts = CustomerFacts(spend={"vehicle": 268_000.0, "service": 12_400.0, "insurance": 6_100.0},
                          last_activity=date(2026, 3, 1), activity_count=7, first_purchase=date(2021, 5, 1),
                          vehicles=2, membership_level=3, open_complaints=1, has_purchases=True)
    as_of = date(2026, 4, 1)
    return {"score_us": round(_per_call_us(lambda _: score(facts, as_of), range(n), repeat=3), 2)}


def _bench_calendar(n: int = 20_000) -> dict[str, float]:
    hours = [OpeningHours(d, dtime(8, 30), dtime(18, 0)) for d in range(5)] + \
        [OpeningHours(d, dtime(9, 0), dtime(17, 0)) for d in (5, 6)]
    holidays = {date(2026, 10, d) for d in range(1, 9)}
    at = datetime(2026, 9, 28, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    us = _per_call_us(lambda _: is_open(at, hours, holidays, set(), "Asia/Shanghai", "sales"), range(n), repeat=3)
    return {"is_open_us": round(us, 2)}


def _bench_cutoffs(n: int = 1_000_000) -> dict[str, float]:
    rng = random.Random(3)
    scores = [min(100.0, 100.0 * (1.0 - rng.paretovariate(1.5) ** -1.0)) for _ in range(n)]
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        compute_cutoffs(scores)
        best = min(best, time.perf_counter() - t0)
    return {"cutoffs_1m_ms": round(best * 1e3, 1), "cutoffs_1m_us": round(best * 1e6)}


def run() -> dict[str, float]:
    """All figures, in µs per call unless the key says otherwise."""
    results: dict[str, float] = {}
    results.update(_bench_normalize())
    results.update(_bench_decide())
    results.update(_bench_score())
    results.update(_bench_calendar())
    results.update(_bench_cutoffs())
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
