"""A call recorded on Asterisk 22.10.1 through the shipped snippets (ccserver's AMI user, its event filters, the
[general] channelvars line): what the ChanVariable headers carry, and that ccserver's tracker gets the routing
decision, the customer and the queue priority from them with VarSet filtered out. Also autopause = all."""

from __future__ import annotations

from ccserver.asterisk.lint import CHANNELVARS
from ccserver.state import AgentStatus, Outcome, StateTracker
from tests.test_state_support import records_to, replay, timed_messages

NAME = "ami-inbound-channelvars-autopause"
CALLER = "1796135370.0"  # Local/s@callers-00000000;1, the PBX side of the caller's call (runs ccserver-inbound)
DECISION = "agrdeav5sincmpbw"


def values(msg, header: str = "ChanVariable") -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in msg.getall(header))


def test_channel_events_carry_the_channelvars_in_order() -> None:
    messages = [m for m, _ in timed_messages(NAME)]
    events = {m.event for m in messages}
    assert not events & {"VarSet", "Newexten", "NewConnectedLine", "DeviceStateChange"}  # filtered at the source
    caller = [m for m in messages if m.get("Uniqueid") == CALLER]
    originate = [m for m in caller if m.event == "OriginateResponse"]
    assert len(originate) == 1 and originate[0].getall("ChanVariable") == []  # not a channel-snapshot event
    caller = [m for m in caller if m.event != "OriginateResponse"]
    for msg in caller:  # every channel event, in the order of the [general] line
        assert [item.partition("=")[0] for item in msg.getall("ChanVariable")] == list(CHANNELVARS), msg.event
    join = next(m for m in caller if m.event == "QueueCallerJoin")
    assert values(join) == {"CC_DECISION_ID": DECISION, "CC_CUSTOMER_ID": "2", "CC_DID": "4008009000",
                            "CC_CAMPAIGN_ID": "", "CC_PRIORITY": "5", "QUEUE_PRIO": "5"}
    assert join["Priority"] == "22"  # the dialplan priority: queue priority exists only as QUEUE_PRIO
    carrying = [m.event for m in caller if values(m)["CC_DECISION_ID"] == DECISION]
    assert carrying[0] == "QueueCallerJoin" and "AgentConnect" in carrying and carrying[-1] == "Hangup"
    # Two-channel events: the member's channel as DestChanVariable (empty: the agent leg has none set).
    connect = next(m for m in caller if m.event == "AgentConnect")
    assert values(connect, "DestChanVariable") == dict.fromkeys(CHANNELVARS, "")
    bridge = next(m for m in messages if m.event == "LocalBridge")
    assert values(bridge, "LocalOneChanVariable").keys() == values(bridge, "LocalTwoChanVariable").keys()


def test_tracker_gets_decision_customer_and_priority_without_varset() -> None:
    records: list[dict] = []
    tracker = StateTracker(publish=records_to(records.append))
    rest = replay(tracker, NAME, stop=lambda m: m.event == "AgentConnect")
    waiting = tracker.call(CALLER)
    assert (waiting.decision_id, waiting.customer_id, waiting.priority) == (DECISION, "2", 5)
    for msg, t in rest:
        tracker.handle(msg, t)
    assert len(records) == 1
    record = records[0]
    assert (record["decision_id"], record["customer_id"], record["dialed_number"]) == (DECISION, "2", "4008009000")
    assert (record["outcome"], record["queue"], record["agent_interface"]) == (
        Outcome.ANSWERED, "hotline", "Local/8002@agent-phones/n")


def test_ring_no_answer_auto_pauses_the_member_in_every_queue() -> None:
    messages = [m for m, _ in timed_messages(NAME)]
    rna = next(i for i, m in enumerate(messages) if m.event == "AgentRingNoAnswer")
    assert messages[rna]["Interface"] == "Local/8009@agent-phones/n" and messages[rna]["RingTime"] == "15000"
    pauses = [m for m in messages[rna:] if m.event == "QueueMemberPause"]
    assert [(m["Queue"], m["Interface"], m["Paused"], m["PausedReason"]) for m in pauses] == [
        ("hotline", "Local/8009@agent-phones/n", "1", "Auto-Pause"),
        ("sales", "Local/8009@agent-phones/n", "1", "Auto-Pause")]
    tracker = StateTracker()
    replay(tracker, NAME)
    agent = tracker.agent("Local/8009@agent-phones/n")
    assert agent.state == AgentStatus.PAUSED and agent.paused_reason == "Auto-Pause"
    assert sorted(agent.queues) == ["hotline", "sales"]
