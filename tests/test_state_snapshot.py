"""StateTracker.load_snapshot: a follower node replaces one server's state with a snapshot (the shared mirror's) and
then keeps applying the same AMI events as the node that took it — and ends where that node ends."""

from __future__ import annotations

import pytest

from ccserver.events import CallEnded, Resynced
from ccserver.state import StateTracker
from ccserver.state.model import Call, QueueState, to_dict
from tests.test_state_support import timed_messages


def view(tracker: StateTracker, server: str = "default") -> dict:
    """Everything the live model holds about one server, as plain data."""
    return {
        "calls": sorted((to_dict(c) for c in tracker.calls.values() if c.server == server),
                        key=lambda c: c["uniqueid"]),
        "queues": sorted((to_dict(q) for q in tracker.queues.values() if q.server == server),
                         key=lambda q: q["name"]),
        "agents": sorted((to_dict(a) for a in tracker.agents.values() if a.server == server),
                         key=lambda a: a["interface"]),
    }


def snapshot_of(tracker: StateTracker, server: str = "default") -> tuple[list, list, list]:
    return ([c for c in tracker.calls.values() if c.server == server],
            [q for q in tracker.queues.values() if q.server == server],
            [a for a in tracker.agents.values() if a.server == server])


@pytest.mark.parametrize("cut_at", [200, 900, 1600, 2400])
def test_a_tracker_loaded_mid_busy_hour_ends_where_the_original_ends(cut_at):
    """Cut the busy hour at several points (callers waiting, agents ringing and talking), load the original's state
    into a second tracker and feed both the rest: same live state, same call records for the calls that ended."""
    messages = timed_messages("ami-inbound-load-40-calls")
    assert len(messages) > cut_at
    ended: dict[str, list] = {"original": [], "loaded": []}

    def records(name):
        return lambda e: ended[name].append(e.record) if isinstance(e, CallEnded) else None

    original = StateTracker(publish=records("original"))
    for msg, t in messages[:cut_at]:
        original.handle(msg, t)
    assert any(c.state in ("queued", "ringing", "talking") for c in original.calls.values())
    loaded = StateTracker(publish=records("loaded"))
    loaded.load_snapshot("default", *snapshot_of(original), now=original.now)
    assert view(loaded) == view(original)
    ended["original"].clear()
    for msg, t in messages[cut_at:]:
        original.handle(msg, t)
        loaded.handle(msg, t)
    assert view(loaded) == view(original)
    assert ended["loaded"] == ended["original"] and ended["original"]


def waiting_caller(tracker: StateTracker) -> None:
    """The restart recording up to its caller waiting in ``complaints`` (server "default")."""
    for msg, t in timed_messages("ami-asterisk-restart-with-waiting-caller"):
        tracker.handle(msg, t)
        if msg.get("Event") == "QueueCallerJoin":
            return


def test_snapshot_replaces_one_server_and_publishes_resynced():
    published = []
    tracker = StateTracker(publish=published.append)
    waiting_caller(tracker)
    for msg, t in timed_messages("ami-inbound-vip-answered", server="other")[:20]:
        tracker.handle(msg, t)
    other_before = view(tracker, "other")
    assert [c.uniqueid for c in tracker.calls_in_queue("complaints")] == ["1795417153.162"]
    published.clear()

    queue = QueueState("default", "complaints", strategy="leastrecent")
    call = Call("default", "1795417999.1", state="ivr", entered_at=1795417999.0)
    tracker.load_snapshot("default", [call], [queue], [], now=1795418000.0, queues_complete=True)

    assert tracker.calls_in_queue("complaints") == []  # the ghost caller is gone ...
    assert [c.uniqueid for c in tracker.iter_calls("default")] == ["1795417999.1"]
    assert tracker.queues_complete("default")
    assert view(tracker, "other") == other_before  # ... and the other server untouched
    call.state = "talking"
    assert tracker.call("1795417999.1").state == "ivr"  # copies, never the caller's objects
    [event] = published
    assert isinstance(event, Resynced) and event.server == "default" and not event.restarted
    assert [c["uniqueid"] for c in event.calls] == ["1795417999.1"]
    assert [q["name"] for q in event.queues] == ["complaints"] and event.agents == ()
    assert event.seq == tracker.last_seq("default")


def test_snapshot_with_a_record_of_another_server_changes_nothing():
    tracker = StateTracker()
    waiting_caller(tracker)
    before = view(tracker)
    with pytest.raises(ValueError, match="'other'"):
        tracker.load_snapshot("default", [Call("other", "1.1")], [], [])
    assert view(tracker) == before
