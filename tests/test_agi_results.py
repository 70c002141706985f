"""Answer-line parsing and env parsing against every real shape in the FastAGI transcripts."""

from __future__ import annotations

import pytest

from ccserver.agi.env import find_script, parse_env, request_query, script_name
from ccserver.agi.results import AGIResult, parse_result, parse_result_bytes
from tests.replay.agi_transcripts import agi_transcript_paths, load_agi

TRANSCRIPTS = agi_transcript_paths()


def test_all_transcripts_found() -> None:
    names = [p.stem for p in TRANSCRIPTS]
    assert len([p for p in TRANSCRIPTS if p.parent.name == "agi-load"]) >= 20
    assert len([p for p in TRANSCRIPTS if p.parent.name != "agi-load"]) == 10
    for expected in ("agi-01-13800138000", "agi-05-02158881234", "agi-06-4008001000"):
        assert expected in names


@pytest.mark.parametrize(
    ("line", "code", "result", "data", "extras"),
    [
        ("200 result=1", 200, 1, None, {}),
        ("200 result=0", 200, 0, None, {}),
        ("200 result=-1", 200, -1, None, {}),
        ("200 result=1 (Liu Yang)", 200, 1, "Liu Yang", {}),
        ("200 result=1 (02158881234)", 200, 1, "02158881234", {}),
        ("200 result=0 endpos=11234", 200, 0, None, {"endpos": "11234"}),
        ("200 result=6", 200, 6, None, {}),
        ("200 result=2", 200, 2, None, {}),
        ("200 result= (timeout)", 200, None, "timeout", {}),
        ("200 result=12 (timeout)", 200, 12, "timeout", {}),
        ("200 result=1 (a (nested) value)", 200, 1, "a (nested) value", {}),
        ("200 result=0 (dtmf) endpos=800", 200, 0, "dtmf", {"endpos": "800"}),
        ("510 Invalid or unknown command", 510, None, "Invalid or unknown command", {}),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511, None, None, None),
        ("garbage", 0, None, None, {}),
    ],
)
def test_parse_result_shapes(line: str, code: int, result: int | None, data: str | None, extras: dict | None) -> None:
    parsed = parse_result(line)
    assert parsed.code == code
    assert parsed.result == result
    if data is not None or code == 200:
        assert parsed.data == data
    if extras is not None:
        assert parsed.extras == extras
    assert parse_result_bytes(line.encode()) == parsed


def test_result_helpers() -> None:
    assert parse_result("200 result=0 endpos=11234").endpos == 11234
    assert parse_result("200 result=50").digit == "2"  # WAIT FOR DIGIT sends the ASCII code
    assert parse_result("200 result=0").digit == ""
    assert parse_result("200 result=0123").digits == "0123"  # GET DATA keeps leading zeros
    assert parse_result("200 result=*12").digits == "*12"
    assert parse_result("200 result=*12").result is None
    assert parse_result("200 result=-1").digits == ""
    assert parse_result("200 result=1") is parse_result("200 result=1")  # shared: no allocation


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_every_recorded_answer_parses(path) -> None:
    transcript = load_agi(path)
    for exchange in transcript.exchanges:
        for line in exchange.answer:
            if line == "HANGUP" or line.startswith("520-") or not line[:3].isdigit():
                continue  # HANGUP and the 520 block body are framed by the protocol
            parsed = parse_result(line)
            assert parsed.code in (200, 511, 520), line
            if parsed.code == 200:
                # GET DATA with no key (agi-09): "200 result= (timeout)" has no number, and says so
                assert parsed.result is not None or (parsed.result_text == "" and parsed.data == "timeout"), line


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_env_parsing_matches_transcript(path) -> None:
    transcript = load_agi(path)
    block = transcript.env_block
    assert block.endswith(b"\n\n")
    env = parse_env(block[:-2])
    assert env == {k.removeprefix("agi_"): v for k, v in transcript.env.items()}
    assert env["accountcode"] == ""
    assert env["dnid"] == "unknown"
    script = find_script(block[:-2])
    assert script in ("incoming", "callback") and script == env["network_script"]
    # the callback script runs in [ccserver-callback] (extension s); the DID is its second argument (agi-10)
    assert (env["extension"] if script == "incoming" else env["arg_2"]).startswith("400800")


def test_env_of_agi_02() -> None:
    env = parse_env(load_agi("agi-02-13912345678").env_block)
    assert env["calleridname"] == "Liu Yang"
    assert env["callerid"] == "13912345678"
    assert env["extension"] == "4008002000"
    assert env["uniqueid"] == "1795416928.4"
    assert env["channel"] == "Local/13912345678@callers-00000002;1"
    assert env["request"] == "agi://127.0.0.1:4573/incoming"


def test_env_careful_path() -> None:
    assert parse_env(b"agi_a: 1\r\nagi_b:\r\nagi_c: x: y\r\njunk") == {"a": "1", "b": "", "c": "x: y"}
    assert parse_env(b"") == {}
    assert parse_env("agi_calleridname: \u5f20\u4f1f".encode() + b"\xff") == {"calleridname": "\u5f20\u4f1f\ufffd"}


def test_script_routing_names() -> None:
    assert script_name("incoming") == "incoming"
    assert script_name("/incoming?store=3") == "incoming"
    assert script_name("ivr/main/") == "ivr/main"
    assert find_script(b"agi_network: yes\nagi_network_script: /incoming?x=1\nagi_x: 1") == "incoming"
    # anchored at a line start: a caller ID name cannot choose the route
    assert find_script(b"agi_calleridname: x\tagi_network_script: admin\nagi_network_script: incoming") == "incoming"
    assert find_script(b"agi_calleridname: agi_network_script: admin") == ""
    # no agi_network_script line: the path of agi_request
    assert find_script(b"agi_request: agi://10.0.0.1:4573/outbound?c=7") == "outbound"
    assert request_query("agi://h:4573/incoming?store=3&vip=") == {"store": "3", "vip": ""}
    assert request_query("agi://h:4573/incoming") == {}


def test_result_equality_and_repr() -> None:
    assert AGIResult(200, "1") == parse_result("200 result=1")
    assert "Liu Yang" in repr(parse_result("200 result=1 (Liu Yang)"))
