"""StateTracker against recorded Asterisk traffic (tests/replay transcripts): calls, queues, agents, resync."""

from __future__ import annotations

from collections import Counter

import pytest

from ccserver.state import EVENTS, AgentStatus, CallState, Outcome, StateTracker, is_tracked_variable
from ccserver.state.query import callers_ahead
from tests.test_state_support import records_to, replay, timed_messages

AGENT_8001 = "Local/8001@agent-phones/n"


def run(name: str, **kwargs) -> tuple[StateTracker, list[dict]]:
    records: list[dict] = []
    tracker = StateTracker(publish=records_to(records.append), **kwargs)
    replay(tracker, name)
    return tracker, records


def test_vip_answered_call_record_and_agent_back_to_idle():
    records: list[dict] = []
    tracker = StateTracker(publish=records_to(records.append))
    for msg, t in timed_messages("ami-inbound-vip-answered"):
        tracker.handle(msg, t)
        if msg.get("Event") == "AgentCalled":
            assert tracker.agent(AGENT_8001).state == AgentStatus.RINGING
            assert tracker.call("1795416921.0").state == CallState.RINGING
            assert tracker.queue_snapshot("vip")["ringing"] == 1
        if msg.get("Event") == "AgentConnect":
            assert tracker.agent(AGENT_8001).state == AgentStatus.TALKING
            assert tracker.agent(AGENT_8001).current_call == "1795416921.0"
            assert tracker.call("1795416921.0").state == CallState.TALKING

    assert len(records) == 1
    rec = records[0]
    assert rec["outcome"] == Outcome.ANSWERED
    assert rec["queue"] == "vip"
    assert rec["agent_interface"] == AGENT_8001
    assert rec["agent_name"] == "Wang Fang"
    assert rec["caller_number"] == "13800138000"
    assert rec["dialed_number"] == "4008001000"  # the DID, not the Local channel's own extension
    assert rec["customer_id"] == "C000042"  # from the CC_CUSTOMER_ID VarSet
    assert rec["direction"] == "inbound"
    assert rec["wait_seconds"] == pytest.approx(1.0, abs=0.05)  # AgentConnect HoldTime: 1
    assert rec["talk_seconds"] == pytest.approx(3.5, abs=0.1)  # answered 922.82 -> AgentComplete 926.32
    assert rec["ring_seconds"] == pytest.approx(1.0)  # AgentConnect RingTime is in seconds
    assert rec["ended_at"] > rec["answered_at"] > rec["entered_at"]
    assert tracker.call("1795416921.0") is None  # finished calls leave the live model
    assert tracker.agent(AGENT_8001).state == AgentStatus.IDLE
    assert tracker.agent(AGENT_8001).current_call is None
    snap = tracker.queue_snapshot("vip")
    assert (snap["completed"], snap["abandoned"], snap["holdtime"], snap["talktime"]) == (1, 0, 1, 4)
    assert snap["callers"] == 0 and snap["free"] == 1


def test_ring_no_answer_then_answered_by_next_member():
    tracker, records = run("ami-inbound-ivr-ringnoanswer-then-answered")
    (rec,) = records
    assert rec["outcome"] == Outcome.ANSWERED
    assert rec["queue"] == "service"
    assert rec["agent_interface"] == "Local/8003@agent-phones/n"
    # 8009 rang 5000 ms (AgentRingNoAnswer, milliseconds) + 8003 rang 1 s (AgentConnect, seconds).
    assert rec["ring_seconds"] == pytest.approx(6.0)
    assert rec["wait_seconds"] == pytest.approx(7.0, abs=0.05)
    assert tracker.agent("Local/8009@agent-phones/n").state == AgentStatus.IDLE
    assert tracker.agent("Local/8003@agent-phones/n").state == AgentStatus.IDLE
    assert tracker.queue("service").completed == 1


def test_ring_no_answer_frees_the_member_while_the_caller_keeps_waiting():
    tracker = StateTracker()
    replay(tracker, "ami-inbound-ivr-ringnoanswer-then-answered", stop=lambda m: m.get("Event") == "Hangup")
    # Stopped right after 8009's AgentRingNoAnswer (its leg's Hangup is next).
    call = tracker.call("1795416928.4")
    assert call.state == CallState.QUEUED and call.ringing_interface is None
    assert call.ring_seconds == pytest.approx(5.0) and call.ring_attempts == 1
    assert tracker.agent("Local/8009@agent-phones/n").state == AgentStatus.IDLE
    snap = tracker.queue_snapshot("service")
    assert [w["uniqueid"] for w in snap["waiting"]] == ["1795416928.4"]
    assert snap["waiting"][0]["priority"] == 2  # CC_PRIO / QUEUE_PRIO
    assert snap["ringing"] == 0


def test_abandoned_caller():
    tracker, records = run("ami-inbound-abandoned")
    (rec,) = records
    assert rec["outcome"] == Outcome.ABANDONED
    assert rec["queue"] == "complaints"
    assert rec["agent_interface"] is None and rec["answered_at"] is None
    # CALLER_HOLD=6 after the default CALLER_DELAY=2: Asterisk's own HoldTime says 8.
    assert rec["wait_seconds"] == pytest.approx(8.0, abs=0.05)
    assert tracker.queue("complaints").abandoned == 1
    assert tracker.queue_snapshot("complaints")["callers"] == 0


def test_hangup_during_ivr_never_queued():
    tracker, records = run("ami-inbound-hangup-during-ivr")
    (rec,) = records
    assert rec["outcome"] == Outcome.IVR_HANGUP
    assert rec["queue"] is None and rec["wait_seconds"] is None
    assert rec["dialed_number"] == "4008002000"
    assert not tracker.calls


def test_queue_member_actions():
    tracker = StateTracker()
    li_wei = "Local/8002@agent-phones/n"
    states = []
    for msg, t in timed_messages("ami-queue-member-actions"):
        tracker.handle(msg, t)
        event = msg.get("Event")
        if event and event.startswith("QueueMember") and event != "QueueMember" and msg.get("Queue") == "service":
            member = tracker.queue("service").members.get(li_wei)
            agent = tracker.agent(li_wei)
            states.append((event, member and (member.paused, member.paused_reason, member.penalty), agent.state))
    assert states == [
        ("QueueMemberAdded", (False, "", 1), AgentStatus.IDLE),
        # Until the QueueStatus below, 'service' is the only queue the tracker knows Li Wei in.
        ("QueueMemberPause", (True, "lunch", 1), AgentStatus.PAUSED),
        ("QueueMemberPause", (False, "", 1), AgentStatus.IDLE),
        ("QueueMemberPenalty", (False, "", 3), AgentStatus.IDLE),
        ("QueueMemberRemoved", None, AgentStatus.IDLE),  # still a free member of 'sales'
    ]
    assert tracker.agent(li_wei).queues == ["sales"]
    # The QueueStatus in the middle loaded every queue's members and counters from Asterisk.
    assert set(tracker.queue("bulk").members) == {f"Local/80{n}@agent-phones/n" for n in range(10, 30)}
    assert (tracker.queue("service").completed, tracker.queue("service").holdtime) == (1, 7)
    assert tracker.queue("complaints").abandoned == 1
    assert tracker.queue_snapshot("service")["members"] == 2


def test_paused_with_reason_in_only_queue_makes_agent_paused():
    tracker = StateTracker()
    li_wei = "Local/8002@agent-phones/n"
    for msg, t in timed_messages("ami-queue-member-actions"):
        tracker.handle(msg, t)
        if msg.get("Event") == "QueueMemberPause" and msg.get("Paused") == "1":
            break
    # Before the QueueStatus, the tracker only knows Li Wei as a member of 'service', where he is paused.
    assert tracker.agent(li_wei).state == AgentStatus.PAUSED
    assert tracker.agent(li_wei).paused_reason == "lunch"
    assert tracker.queue_snapshot("service")["paused"] == 1


def test_originate_results():
    records: list[dict] = []
    tracker = StateTracker(publish=records_to(records.append))
    # The dialer announces what it originated (the recorder's own ActionIDs are these).
    tracker.expect_originate("orig-answer", dialed_number="13811112222", campaign_id="7")
    for action_id in ("orig-busy", "orig-noanswer", "orig-badcontext"):
        tracker.expect_originate(action_id)
    replay(tracker, "ami-originate-results")
    by_outcome = {r["outcome"]: r for r in records}
    assert sorted(by_outcome) == ["answered", "busy", "failed", "no_answer"]
    assert all(r["direction"] == "outbound" for r in records)
    answered = by_outcome["answered"]
    assert answered["uniqueid"] == "1795416969.18"
    assert answered["dialed_number"] == "13811112222"
    assert answered["campaign_id"] == "7"
    assert answered["queue"] == "sales" and answered["agent_interface"] == AGENT_8001
    assert by_outcome["busy"]["uniqueid"] == "1795416969.20"  # matched to its channel by name
    assert by_outcome["busy"]["dialed_number"] == "13900000001"
    assert by_outcome["no_answer"]["uniqueid"] == "1795416969.22"
    # Bad context: Asterisk never created a channel for it before answering Failure.
    assert by_outcome["failed"]["uniqueid"] == "originate:orig-badcontext"
    assert tracker.ghosts_dropped == 1  # ...and the stray Local channel it made afterwards is no call
    assert not tracker.calls


def test_internal_originates_are_recorded_as_internal_calls():
    # A supervisor's phone rung into ChanSpy: our own phone, neither a caller nor a customer dialled.
    records: list[dict] = []
    tracker = StateTracker(publish=records_to(records.append))
    tracker.expect_originate("orig-answer", direction="internal")
    tracker.expect_originate("orig-noanswer", direction="internal")
    replay(tracker, "ami-originate-results")
    by_uid = {r["uniqueid"]: r for r in records}
    assert (by_uid["1795416969.18"]["direction"], by_uid["1795416969.18"]["outcome"]) == ("internal", "answered")
    assert (by_uid["1795416969.22"]["direction"], by_uid["1795416969.22"]["outcome"]) == ("internal", "no_answer")
    with pytest.raises(ValueError):
        tracker.expect_originate("x", direction="inbound")


def test_unannounced_originates_do_not_make_calls_outbound():
    # The lab's inbound calls are themselves Originates (by the recorder): they stay inbound.
    _, records = run("ami-inbound-vip-answered")
    assert records[0]["direction"] == "inbound"


def test_busy_hour_agrees_with_asterisk_queue_summary():
    records: list[dict] = []
    tracker = StateTracker(publish=records_to(records.append))
    rest = replay(tracker, "ami-inbound-load-40-calls", stop=lambda m: m.get("Event") == "QueueSummary")
    summary = next(m for m, _ in rest if m.get("Event") == "QueueSummary")
    params = next(m for m, _ in rest if m.get("Event") == "QueueParams")
    snap = tracker.queue_snapshot("bulk")
    assert (snap["completed"], snap["abandoned"]) == (int(params["Completed"]), int(params["Abandoned"])) == (26, 14)
    # Running averages computed the way app_queue does (integer, 1/4 weight): equal to what Asterisk reported.
    assert abs(snap["holdtime"] - int(summary["HoldTime"])) <= 1
    assert abs(snap["talktime"] - int(summary["TalkTime"])) <= 1
    assert (snap["holdtime"], snap["talktime"]) == (int(params["Holdtime"]), int(params["TalkTime"]))
    assert snap["callers"] == int(summary["Callers"]) == 0
    assert snap["logged_in"] == int(summary["LoggedIn"]) == 20
    assert snap["free"] == int(summary["Available"]) == 20
    assert snap["in_call"] == 0 and snap["ringing"] == 0
    assert Counter(r["outcome"] for r in records) == {"answered": 26, "abandoned": 14}
    assert not tracker.calls  # every call finished
    assert {a.state for a in tracker.agents.values()} == {AgentStatus.IDLE}
    # Applying Asterisk's own QueueStatus changes nothing that matters.
    for msg, t in rest:
        tracker.handle(msg, t)
    assert tracker.queue_snapshot("bulk") | {"strategy": ""} == snap | {"strategy": ""}


def test_busy_hour_mid_replay_waiting_order_and_callers_ahead():
    tracker = StateTracker()
    joins = 0

    def stop(msg):
        nonlocal joins
        joins += msg.get("Event") == "QueueCallerJoin"
        return joins > 30

    replay(tracker, "ami-inbound-load-40-calls", stop=stop)
    waiting = tracker.queue("bulk").callers
    assert len(waiting) > 5
    assert [c.joined_at for c in waiting] == sorted(c.joined_at for c in waiting)  # all priority 0: FIFO
    calls = tracker.calls_in_queue("bulk")
    assert [c.uniqueid for c in calls] == [c.uniqueid for c in waiting]
    assert all(c.state == CallState.QUEUED or c.state == CallState.RINGING for c in calls)
    third = waiting[2]
    assert {c.priority for c in waiting} == {1}  # the lab's AGI set CC_PRIO=1 / QUEUE_PRIO=1 for every caller
    assert tracker.callers_ahead("bulk", 1, third.joined_at) == 2
    assert tracker.callers_ahead("bulk", 5, third.joined_at) == 0  # higher priority goes first
    assert callers_ahead(waiting, 0, 0.0) == len(waiting)  # lower priority waits behind everyone
    snap = tracker.queue_snapshot("bulk")
    assert snap["longest_wait"] == pytest.approx(tracker.now - waiting[0].joined_at)
    assert snap["in_call"] >= 1


def test_restart_recorded_resync_agrees_with_asterisk():
    resyncs: list[str] = []
    tracker, records = run("ami-asterisk-restart-with-waiting-caller", on_resync_needed=resyncs.append)
    assert resyncs == ["default", "default"]  # first connect and the reconnect
    (rec,) = records  # Asterisk's clean shutdown still sent the abandon + hangup
    assert rec["outcome"] == Outcome.ABANDONED
    snap = tracker.queue_snapshot("complaints")
    assert snap["callers"] == 0
    assert snap["abandoned"] == 0  # a restarted Asterisk starts its counters again: resync takes its truth
    assert not tracker.calls and not tracker.resync_pending


def _split_restart():
    msgs = timed_messages("ami-asterisk-restart-with-waiting-caller")
    first_status = next(i for i, (m, _) in enumerate(msgs) if m.get("Event") == "QueueStatusComplete")
    second_boot = next(i for i, (m, _) in enumerate(msgs) if m.get("Event") == "FullyBooted" and i > first_status)
    return msgs[: first_status + 1], msgs[second_boot:]


def test_restart_crash_vanished_caller_is_finalised():
    # As if Asterisk had crashed: nothing between the caller waiting and the reconnect reaches us.
    before, after = _split_restart()
    records: list[dict] = []
    tracker = StateTracker(publish=records_to(records.append))
    for msg, t in before:
        tracker.handle(msg, t)
    assert tracker.queue_snapshot("complaints")["callers"] == 1
    for msg, t in after:
        tracker.handle(msg, t)
    (rec,) = records
    assert rec["uniqueid"] == "1795417153.162"
    assert rec["outcome"] == Outcome.LOST
    assert rec["queue"] == "complaints" and rec["wait_seconds"] > 0
    assert tracker.queue_snapshot("complaints")["callers"] == 0
    assert not tracker.calls


def test_resync_lists_alone_drop_the_vanished_caller():
    # A reconnect without a restart signal: only QueueStatus + CoreShowChannels can tell the caller is gone.
    before, after = _split_restart()
    records: list[dict] = []
    tracker = StateTracker(publish=records_to(records.append))
    for msg, t in before:
        tracker.handle(msg, t)
    lists = [(m, t) for m, t in after if m.get("ActionID") and m.get("Event")]
    queue_items = [m for m, _ in lists if m.get("Event") in ("QueueParams", "QueueMember", "QueueEntry")]
    channel_items = [m for m, _ in lists if m.get("Event") == "CoreShowChannel"]
    now = lists[-1][1]
    tracker.resync_queues("default", queue_items, now)
    assert tracker.queue_snapshot("complaints")["callers"] == 0
    assert tracker.call("1795417153.162").state == CallState.IVR  # out of the queue, channel fate unknown yet
    assert records == []
    tracker.resync_channels("default", channel_items, now)
    (rec,) = records
    assert rec["outcome"] == Outcome.LOST
    assert not tracker.calls
    tracker.resync_channels("default", channel_items, now)  # idempotent
    assert len(records) == 1


def test_resync_picks_up_a_waiting_caller_we_never_saw_join():
    before, _ = _split_restart()
    status = [m for m, _ in before if m.get("Event") in ("QueueParams", "QueueEntry")]
    tracker = StateTracker()
    tracker.resync_queues("default", status, now=before[-1][1])
    (call,) = tracker.calls_in_queue("complaints")
    assert call.uniqueid == "1795417153.162" and call.caller_number == "13500000003"
    assert tracker.queue_snapshot("complaints")["callers"] == 1


def test_two_servers_same_uniqueids_do_not_collide():
    records: list[dict] = []
    tracker = StateTracker(publish=records_to(records.append))
    a = timed_messages("ami-inbound-vip-answered", server="pbx-a")
    b = timed_messages("ami-inbound-vip-answered", server="pbx-b")
    stop_b = next(i for i, (m, _) in enumerate(b) if m.get("Event") == "AgentConnect")
    for msg, t in sorted(a + b[: stop_b + 1], key=lambda x: x[1]):
        tracker.handle(msg, t)
    assert [r["server"] for r in records] == ["pbx-a"]
    assert tracker.call("1795416921.0", server="pbx-b").state == CallState.TALKING
    assert tracker.call("1795416921.0", server="pbx-a") is None
    assert tracker.agent(AGENT_8001, server="pbx-b").state == AgentStatus.TALKING
    assert tracker.agent(AGENT_8001, server="pbx-a").state == AgentStatus.IDLE
    assert tracker.queue("vip", server="pbx-a").completed == 1
    assert tracker.queue("vip", server="pbx-b").completed == 0


def test_subscription_list_and_variable_filter():
    assert {"QueueCallerJoin", "AgentConnect", "AgentRingNoAnswer", "Hangup", "VarSet", "FullyBooted"} <= EVENTS
    assert "Newexten" not in EVENTS
    tracker = StateTracker()
    msgs = timed_messages("ami-inbound-vip-answered")
    varsets = [(m, t) for m, t in msgs if m.get("Event") == "VarSet" and not is_tracked_variable(m["Variable"])]
    assert varsets and is_tracked_variable("CC_CUSTOMER_ID") and is_tracked_variable("QUEUE_PRIO")
    newchannel = next((m, t) for m, t in msgs if m.get("Event") == "Newchannel")
    tracker.handle(*newchannel)
    for msg, t in varsets:  # CALLER_HOLD, QUEUEWAIT, ...: ignored
        tracker.handle(msg, t)
    call = tracker.call("1795416921.0")
    assert call.customer_id is None and call.dialed_number == "13800138000"


def test_chanvariable_headers_carry_decision_and_customer():
    # manager.conf `channelvars = CC_DECISION_ID,CC_CUSTOMER_ID` appends ChanVariable headers to channel
    # events; the lab did not set it, so take a recorded QueueCallerJoin and append the two headers.
    from ccserver.ami.message import AMIMessage

    msgs = timed_messages("ami-inbound-vip-answered")
    join, t = next((m, t) for m, t in msgs if m.get("Event") == "QueueCallerJoin")
    items = join.items() + [("ChanVariable", "CC_DECISION_ID=dec-77"), ("ChanVariable", "CC_CUSTOMER_ID=42")]
    tracker = StateTracker()
    tracker.handle(AMIMessage(items), t)
    call = tracker.call("1795416921.0")
    assert (call.decision_id, call.customer_id, call.queue) == ("dec-77", "42", "vip")


def test_crowded_queue_waiting_list_stays_exact():
    # The busy hour ten times over, interleaved: some 340 callers wait in "bulk" at once. Joins, leaves and
    # hang-ups look the caller up in the queue's index instead of passing over the whole list; the list must
    # still be exactly the calls waiting, in order, without duplicates, at every step.
    from ccserver.ami.message import parse_stream
    from tests.replay.ami_peer import multiply_stream
    from tests.replay.transcripts import recv_sessions

    tracker = StateTracker()
    most = 0
    for msg in parse_stream(multiply_stream(recv_sessions("ami-inbound-load-40-calls")[0], 10)):
        tracker.handle(msg)
        if msg.get("Event") in ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "Hangup"):
            waiting = [c.uniqueid for c in tracker.queue("bulk").callers]
            assert len(set(waiting)) == len(waiting)
            assert [c.uniqueid for c in tracker.calls_in_queue("bulk")] == waiting
            assert all(tracker.call(u).state in (CallState.QUEUED, CallState.RINGING) for u in waiting)
            most = max(most, len(waiting))
    assert most > 300
    assert tracker.queue_snapshot("bulk")["callers"] == 0 and not tracker.calls


def test_caller_leaves_after_a_resync_replaced_the_waiting_list():
    # Resyncs put new lists in place of the queue's waiting list; a caller's leave must find the caller in the
    # list in place now (the queue's index follows the list, not the other way round). Here the queue was first
    # listed empty and a leave passed over it, then a resync listed the caller, who then leaves for real.
    msgs = timed_messages("ami-asterisk-restart-with-waiting-caller")
    first_status = next(i for i, (m, _) in enumerate(msgs) if m.get("Event") == "QueueStatusComplete")
    now = msgs[first_status][1]
    params = [m for m, _ in msgs[: first_status + 1] if m.get("Event") == "QueueParams"]
    entries = [m for m, _ in msgs[: first_status + 1] if m.get("Event") == "QueueEntry"]
    leave = next(m for m, _ in msgs if m.get("Event") == "QueueCallerLeave" and m.get("Queue") == "complaints")
    tracker = StateTracker()
    tracker.resync_queues("default", params, now=now)
    tracker.handle(leave, now)  # nobody waits yet: nothing to take out
    tracker.resync_queues("default", params + entries, now=now)
    assert [c.uniqueid for c in tracker.queue("complaints").callers] == [leave["Uniqueid"]]
    tracker.handle(leave, now + 1)
    assert tracker.queue("complaints").callers == []
    assert tracker.call(leave["Uniqueid"]).state == CallState.IVR


def _transfer(event: str, **headers: str) -> dict[str, str]:
    # No recording holds a transfer (the lab's callers never transfer): the headers are Asterisk's documented ones
    # for BlindTransfer and AttendedTransfer (the manager event docs in Asterisk's main/stasis_bridges.c), as dicts.
    return {"Event": event, **headers}


def test_transfers_are_published_and_counted_on_the_answered_call():
    """The agent's BlindTransfer / AttendedTransfer on the recorded VIP call: a CallTransferred each (kind, target,
    result, the transferring agent), counted on the call only when Asterisk reports success; a transfer of a call
    the tracker does not follow publishes nothing."""
    from ccserver.events import CallEnded, CallTransferred

    published: list = []
    tracker = StateTracker(publish=published.append)
    rest = replay(tracker, "ami-inbound-vip-answered", stop=lambda m: m.get("Event") == "Hangup")
    caller, agent_leg = "1795416921.0", "1795416921.2"
    for msg in (
        _transfer("BlindTransfer", Result="Fail", TransfererUniqueid=agent_leg, TransfereeUniqueid=caller,
                  Context="agent-phones", Extension="8009", IsExternal="No"),
        _transfer("BlindTransfer", Result="Success", TransfererUniqueid=agent_leg, TransfereeUniqueid=caller,
                  Context="agent-phones", Extension="8002", IsExternal="No"),
        _transfer("AttendedTransfer", Result="Success", OrigTransfererUniqueid=agent_leg,
                  SecondTransfererUniqueid="1795416921.9", TransfereeUniqueid=caller, DestType="App",
                  DestApp="VoiceMail"),
        _transfer("BlindTransfer", Result="Success", TransfererUniqueid="9.9", TransfereeUniqueid="9.8",
                  Context="agent-phones", Extension="8002"),  # not a call we follow
    ):
        tracker.handle(msg, 1795416990.0)
    transfers = [e for e in published if isinstance(e, CallTransferred)]
    assert [(e.uniqueid, e.kind, e.target, e.result, e.interface) for e in transfers] == [
        (caller, "blind", "8009@agent-phones", "Fail", AGENT_8001),
        (caller, "blind", "8002@agent-phones", "Success", AGENT_8001),
        (caller, "attended", "VoiceMail", "Success", AGENT_8001),
    ]
    assert tracker.call(caller).transfers == 2
    assert len({e.seq for e in transfers}) == 3 and all(e.server == "default" for e in transfers)
    for msg, t in rest:
        tracker.handle(msg, t)
    (ended,) = [e for e in published if isinstance(e, CallEnded)]
    assert ended.uniqueid == caller and ended.outcome == Outcome.ANSWERED and ended.final["transfers"] == 2
