"""The action builder refuses header injection: CR, LF, NUL or non-token names -> ValueError, nothing written."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from ccserver.ami.actions import build_action
from ccserver.ami.client import AMIClient, AMIServerConfig
from ccserver.ami.message import parse_stream
from ccserver.ami.protocol import AMIProtocol


def test_builds_plain_and_repeated_headers():
    data = build_action("Originate", "a1", {
        "Channel": "Local/13800138000@callers", "Async": True, "Priority": 1, "Data": None,
        "Variable": {"CC_CAMPAIGN_ID": 7, "CC_CONTACT_ID": "901"}, "Codecs": ["ulaw", "alaw"],
    })
    assert data == (b"Action: Originate\r\nActionID: a1\r\nChannel: Local/13800138000@callers\r\nAsync: true\r\n"
                    b"Priority: 1\r\nVariable: CC_CAMPAIGN_ID=7\r\nVariable: CC_CONTACT_ID=901\r\n"
                    b"Codecs: ulaw\r\nCodecs: alaw\r\n\r\n")
    msg = parse_stream(data)[0]
    assert msg.getall("Variable") == ["CC_CAMPAIGN_ID=7", "CC_CONTACT_ID=901"]


@pytest.mark.parametrize("bad", [
    'x\r\nAction: Originate\r\nChannel: Local/1@evil', "x\nEvents: on", "x\rY", "a\x00b", "\r\n\r\n",
])
def test_injection_in_value_rejected(bad):
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        build_action("Originate", "a1", {"CallerID": bad})


@pytest.mark.parametrize("name", ["Caller ID", "X:Y", "A\r\nB", "", "Über", "a\x00"])
def test_bad_header_names_rejected(name):
    with pytest.raises(ValueError, match="token"):
        build_action("Originate", "a1", {name: "1"})


def test_bad_action_name_and_action_id_rejected():
    with pytest.raises(ValueError):
        build_action("Ping\r\nAction: Originate", "a1")
    with pytest.raises(ValueError):
        build_action("Ping", "a1\r\nAction: Originate")
    with pytest.raises(ValueError, match="set by the client"):
        build_action("Ping", "a1", {"ActionID": "x"})


def test_comma_in_variable_value_rejected():
    with pytest.raises(ValueError, match="comma"):
        build_action("Originate", "a1", {"Variable": {"CC_NAME": "a,CC_QUEUE=vip"}})


def test_line_length_and_header_count_limits():
    with pytest.raises(ValueError, match="longer"):
        build_action("Originate", "a1", {"Data": "x" * 2000})
    with pytest.raises(ValueError, match="at most"):
        build_action("Originate", "a1", {"Variable": {f"V{i}": "1" for i in range(200)}})


# -- 10,000 hostile values through every builder entry point, nothing on the wire ----------------------
def _logged_in_client() -> tuple[AMIClient, StringTransport]:
    clock = Clock()
    client = AMIClient(AMIServerConfig(), reactor=clock, server="hostile")
    proto = client._build_protocol()
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.dataReceived(b"Asterisk Call Manager/13.0.0\r\n")
    proto.logged_in = True
    client.protocol = proto
    return client, transport


def _hostile_values(n: int, seed: int = 20240601) -> list[str]:
    rng = random.Random(seed)
    payloads = ["\r\nAction: Originate\r\nChannel: Local/999@evil\r\n\r\n", "\r", "\n", "\x00", "\r\n",
                "\r\n\r\n", "\n\nAction: Logoff", "\x00Action: Command\r\nCommand: core restart now"]
    alphabet = "abcXYZ019 :=<>\"',;\t\u4e2d\u6587"
    out = []
    for i in range(n):
        prefix = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        suffix = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        out.append(prefix + payloads[i % len(payloads)] + suffix)
    return out


HOSTILE = _hostile_values(10_000)


def test_ten_thousand_hostile_values_rejected_and_nothing_written():
    client, transport = _logged_in_client()
    proto = client.protocol
    assert proto is not None
    targets = ["CallerID", "Channel", "Exten", "Data"]
    for i, value in enumerate(HOSTILE):
        header = targets[i % len(targets)]
        with pytest.raises(ValueError):
            build_action("Originate", "x", {header: value})
        with pytest.raises(ValueError):
            proto.send_action("Originate", {header: value})
        with pytest.raises(ValueError):
            client.send_action("Setvar", Variable="CC_X", Value=value)
        kind = i % 3
        with pytest.raises(ValueError):
            if kind == 0:
                client.originate("Local/1@x", caller_id=value)
            elif kind == 1:
                client.originate("Local/1@x", variables={"CC_NAME": value})
            else:
                client.originate(value, context="from-pstn", exten="1")
    assert transport.value() == b""
    assert proto._pending == {}
    assert client._originates == {}


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=20), st.sampled_from(["\r", "\n", "\x00"]), st.text(max_size=20))
def test_hypothesis_any_value_with_cr_lf_nul_rejected(before, bad, after):
    client, transport = _logged_in_client()
    with pytest.raises(ValueError):
        client.send_action("QueueAdd", Queue="sales", Interface="Local/8001@agents", MemberName=before + bad + after)
    assert transport.value() == b""


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30).filter(lambda s: not any(c in s for c in "\r\n\x00")))
def test_hypothesis_clean_values_round_trip(value):
    try:
        data = build_action("Setvar", "a1", {"Value": value})
    except ValueError:
        # only over-long lines (multi-byte text) or lone surrogates may be refused
        assert len(value.encode("utf-8", "surrogatepass")) > 900 or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
        return
    msg = parse_stream(data)[0]
    assert msg["Value"] == value or msg["Value"] == value.lstrip(" ")


def test_offline_client_still_validates():
    client = AMIClient(AMIServerConfig(), reactor=Clock(), server="offline")
    with pytest.raises(ValueError):
        client.send_action("Ping", Foo="a\r\nb")
    failures = []
    client.send_action("Ping").addErrback(failures.append)
    assert failures and "not connected" in str(failures[0].value)


def test_protocol_unconnected_builds_nothing():
    proto = AMIProtocol(Clock(), server="x")
    with pytest.raises(ValueError):
        proto.send_action("Ping", {"X": "\n"})
