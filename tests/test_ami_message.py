"""AMIMessage and parse_stream against every recorded AMI transcript."""

from __future__ import annotations

import pytest

from ccserver.ami.message import AMIMessage, parse_block, parse_stream
from ccserver.ami.units import event_time, ring_time_seconds
from tests.replay.transcripts import ami_transcripts, iter_transcript_messages, recv_bytes, recv_sessions

# Messages Asterisk sent in each transcript (banners excluded).
EXPECTED_COUNTS = {
    "ami-asterisk-restart-with-waiting-caller.jsonl": 64,
    "ami-inbound-abandoned.jsonl": 65,
    "ami-inbound-channelvars-autopause.jsonl": 66,
    "ami-inbound-hangup-during-ivr.jsonl": 40,
    "ami-inbound-ivr-ringnoanswer-then-answered.jsonl": 134,
    "ami-inbound-load-40-calls.jsonl": 3467,
    "ami-inbound-vip-answered.jsonl": 126,
    "ami-login-challenge.jsonl": 5,
    "ami-login-variants.jsonl": 1,
    "ami-originate-results.jsonl": 144,
    "ami-queue-member-actions.jsonl": 59,
}


def test_every_ami_transcript_is_covered():
    assert {p.name for p in ami_transcripts()} == set(EXPECTED_COUNTS)


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_parse_counts_per_transcript(name):
    msgs = list(iter_transcript_messages(name))
    assert len(msgs) == EXPECTED_COUNTS[name]
    # Independent check: one message per CRLF CRLF terminator in what Asterisk sent.
    assert len(msgs) == recv_bytes(name).count(b"\r\n\r\n")
    for msg in msgs:
        assert msg.is_event != msg.is_response, msg.items()
        assert (msg.event is not None) == msg.is_event
        assert msg.malformed == 0
        assert not any(k.startswith("Asterisk Call Manager") for k, _ in msg.items())


def test_load_transcript_event_mix():
    msgs = list(iter_transcript_messages("ami-inbound-load-40-calls"))
    names = [m.event for m in msgs]
    assert names.count("QueueCallerJoin") == 40
    assert names.count("AgentConnect") == 26
    assert names.count("QueueCallerAbandon") == 14
    assert names.count("OriginateResponse") == 40
    summary = [m for m in msgs if m.event == "QueueSummary"]
    assert summary and summary[0]["Queue"] == "bulk"
    params = [m for m in msgs if m.event == "QueueParams"][0]
    assert (params["Completed"], params["Abandoned"]) == ("26", "14")


def test_restart_transcript_has_two_sessions_each_with_banner():
    sessions = recv_sessions("ami-asterisk-restart-with-waiting-caller")
    assert len(sessions) == 2
    assert all(s.startswith(b"Asterisk Call Manager/13.0.0\r\n") for s in sessions)
    msgs = iter_transcript_messages("ami-asterisk-restart-with-waiting-caller")
    booted = [m for m in msgs if m.event == "FullyBooted"]
    assert [m["Uptime"] for m in booted] == ["234", "3"]


def test_multidict_lookup():
    msg = parse_block("Event: VarSet\r\nChanVariable: A=1\r\nChanVariable: B=2\r\nAccountCode: \r\nEmpty:")
    assert msg.event == "VarSet" and msg.response is None
    assert msg["ChanVariable"] == "A=1"
    assert msg.getall("ChanVariable") == ["A=1", "B=2"]
    assert msg.getall("chanvariable") == ["A=1", "B=2"]
    assert msg.get("chanVARIABLE") == "A=1"
    assert msg["AccountCode"] == "" and msg["Empty"] == ""
    assert msg.get("Missing") is None and msg.get("Missing", "x") == "x"
    assert msg.getall("Missing") == []
    with pytest.raises(KeyError):
        msg["Missing"]
    assert "chanvariable" in msg and "Nope" not in msg
    assert msg.items()[:2] == [("Event", "VarSet"), ("ChanVariable", "A=1")]
    assert msg.to_dict()["ChanVariable"] == ["A=1", "B=2"]
    assert msg.action_id is None
    assert msg.is_event and not msg.is_response


def test_originate_response_event_is_an_event_with_a_response_header():
    msg = next(m for m in iter_transcript_messages("ami-originate-results") if m.event == "OriginateResponse")
    assert msg.is_event and not msg.is_response and msg.response in ("Success", "Failure")


def test_value_keeps_colons_and_spaces():
    msg = parse_block('Response: Success\r\nActionID: x:1\r\nCallerID: "Zhang Wei" <138>\r\nData: a: b ')
    assert msg.action_id == "x:1"
    assert msg["CallerID"] == '"Zhang Wei" <138>'
    assert msg["Data"] == "a: b "


def test_parse_stream_banner_partial_tail_and_garbage_lines():
    data = (b"Asterisk Call Manager/13.0.0\r\nResponse: Success\r\nActionID: 1\r\n\r\n"
            b"Event: X\r\nno colon here\r\nA: 1\r\n\r\nEvent: Partial\r\nA: 1\r\n")
    msgs = parse_stream(data)
    assert [m.event or m.response for m in msgs] == ["Success", "X"]
    assert msgs[1].malformed == 1 and msgs[1]["A"] == "1"


def test_parse_stream_non_utf8_is_replaced_not_fatal():
    msgs = parse_stream(b"Event: X\r\nCallerIDName: \xff\xfeabc\r\n\r\n")
    assert msgs[0]["CallerIDName"].endswith("abc") and "\ufffd" in msgs[0]["CallerIDName"]


def test_constructor_and_equality():
    a = AMIMessage({"Event": "Hangup", "Uniqueid": "1.1"}, server="ast1")
    b = AMIMessage([("Event", "Hangup"), ("Uniqueid", "1.1")])
    assert a == b and a.server == "ast1"


def test_units_ring_time_and_event_time():
    msgs = list(iter_transcript_messages("ami-inbound-ivr-ringnoanswer-then-answered"))
    rna = next(m for m in msgs if m.event == "AgentRingNoAnswer")
    connect = next(m for m in msgs if m.event == "AgentConnect")
    assert rna["RingTime"] == "5000" and ring_time_seconds(rna) == 5.0  # milliseconds on the wire
    assert connect["RingTime"] == "1" and ring_time_seconds(connect) == 1.0  # seconds on the wire
    assert event_time(rna, 0.0) == float(rna["Timestamp"])
    no_stamp = AMIMessage({"Event": "QueueParams"})
    assert event_time(no_stamp, 42.5) == 42.5
    with pytest.raises(ValueError):
        event_time(no_stamp)
