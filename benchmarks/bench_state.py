"""Live-state benchmark: memory per live call in the tracker's model, and tracker event throughput.

- ``memory_per_call``: tracemalloc around 10,000 synthetic live calls, each created by the events a real caller
  produces before it waits in a queue (Newchannel, NewCallerid, CC_* VarSets, QueueCallerJoin — shapes taken from
  the recorded ``ami-inbound-vip-answered``, uniqueids and numbers varied). Counts everything the model keeps:
  the Call, its waiting-queue entry, dict slots and the header strings it holds on to.
- ``replay``: the recorded busy hour (``ami-inbound-load-40-calls``, 3,400+ messages) fed to a tracker
  already parsed, events per second of ``StateTracker.handle`` alone.

    .venv/bin/python benchmarks/bench_state.py [--calls 10000]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ccserver.state import StateTracker  # noqa: E402

_TEMPLATE_EVENTS = ("Newchannel", "NewCallerid", "VarSet", "QueueCallerJoin")


def _templates() -> list[dict[str, str]]:
    from tests.replay.transcripts import iter_transcript_messages

    out = []
    for msg in iter_transcript_messages("ami-inbound-vip-answered"):
        if msg.get("Uniqueid") != "1795416921.0" or msg.get("Event") not in _TEMPLATE_EVENTS:
            continue
        if msg.get("Event") == "VarSet" and not (msg.get("Variable") or "").startswith("CC_"):
            continue
        out.append(dict(msg.items()))
    return out


def _events_for(templates: list[dict[str, str]], i: int) -> list[dict[str, str]]:
    uid = f"1795500000.{i}"
    number = f"138{i:08d}"
    events = []
    for tpl in templates:
        ev = dict(tpl)
        ev["Uniqueid"] = ev["Linkedid"] = uid
        ev["Channel"] = f"Local/{number}@callers-{i:08x};1"
        ev["CallerIDNum"] = number
        if ev.get("Event") == "QueueCallerJoin":
            ev["Position"] = ev["Count"] = str(i + 1)
        ev.pop("Timestamp", None)
        events.append(ev)
    return events


def memory_per_call(calls: int = 10_000) -> dict:
    templates = _templates()
    tracker = StateTracker()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(calls):
        for ev in _events_for(templates, i):  # built and dropped inside: only what the model keeps remains
            tracker.handle(ev, 1_795_500_000.0 + i * 0.01)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    # Leave out tracemalloc's own bookkeeping (the first snapshot is alive while the second is taken).
    own = [tracemalloc.Filter(False, tracemalloc.__file__)]
    total = sum(s.size_diff for s in after.filter_traces(own).compare_to(before.filter_traces(own), "filename"))
    assert len(tracker.calls) == calls and len(tracker.queue("vip").callers) == calls
    return {"calls": calls, "bytes_total": total, "bytes_per_call": round(total / calls)}


def replay_rate(rounds: int = 5) -> dict:
    from tests.replay.transcripts import iter_transcript_messages

    messages = list(iter_transcript_messages("ami-inbound-load-40-calls"))
    best = float("inf")
    for _ in range(rounds):
        tracker = StateTracker()
        start = time.perf_counter()
        for msg in messages:
            tracker.handle(msg)
        best = min(best, time.perf_counter() - start)
    return {"messages": len(messages), "seconds": round(best, 4), "msgs_per_s": round(len(messages) / best)}


def run(calls: int = 10_000) -> dict:
    return {"memory_per_call": memory_per_call(calls), "replay": replay_rate()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    print(json.dumps(run(parser.parse_args().calls), indent=2))
