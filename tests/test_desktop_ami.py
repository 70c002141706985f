"""The desktop's AMI side against recorded Asterisk sessions, over real sockets on the event loop the server uses:
the agent's channel found in Asterisk's own CoreShowChannels during the recorded VIP call, the transfer action
that then reaches the peer (the recording has no transfer: the peer refuses it, and the refusal is reported), and
click-to-dial's Originate answered as Asterisk answered the recorded one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from twisted.internet.asyncioreactor import AsyncioSelectorReactor

from ccserver.ami.client import AMIServerConfig
from ccserver.ami.manager import AMIManager
from ccserver.desktop.calls import AMIDesktopCalls, CallActionFailed, channel_matches
from ccserver.state.tracker import StateTracker
from tests.replay.ami_peer import AMIReplayFactory

AGENT = "Local/8001@agent-phones/n"


async def _connect(transcript: str, skip: list[str], on_any: Any = None) -> tuple[Any, Any, Any, Any]:
    loop = asyncio.get_running_loop()
    reactor = AsyncioSelectorReactor(loop)
    peer = AMIReplayFactory(transcript, clock=reactor, skip_actions=skip)
    port = reactor.listenTCP(0, peer, interface="127.0.0.1")
    ami = AMIManager({"default": AMIServerConfig(port=port.getHost().port, auth="plain", secret="ccserver-secret")},
                     reactor=reactor)
    if on_any is not None:
        ami.on_any(on_any)
    ami.start()
    await ami.clients["default"].when_connected().asFuture(loop)
    return ami, peer, port, loop


def test_channel_names_of_member_interfaces() -> None:
    assert channel_matches("Local/8001@agent-phones-00000001;1", AGENT)
    assert channel_matches("PJSIP/8001-0000000a", "PJSIP/8001")
    assert not channel_matches("PJSIP/80011-0000000a", "PJSIP/8001")
    assert not channel_matches("Local/13800138000@callers-00000000;1", AGENT)


def test_transfer_finds_the_agents_channel_and_sends_blind_and_attended_transfers() -> None:
    async def main() -> dict[str, Any]:
        tracker = StateTracker()
        ami, peer, port, loop = await _connect("ami-inbound-vip-answered", ["Originate", "QueueStatus"],
                                               lambda msg, *rest: tracker.handle(msg))
        for _ in range(200):  # the recorded call plays until the recorder's CoreShowChannels
            call = tracker.call("1795416921.0")
            if call is not None and call.state == "talking":
                break
            await asyncio.sleep(0.01)
        out: dict[str, Any] = {"state": call.state if call else None,
                               "agent": (call.agent_interface, call.agent_uniqueid) if call else None}
        calls = AMIDesktopCalls(ami, loop)
        assert call is not None
        channel = await calls.agent_channel("default", AGENT, call.agent_uniqueid, call.linkedid)
        out["channel"] = channel
        for kind, exten in (("blind", "q-sales"), ("attended", "A8002")):
            try:
                await calls.transfer("default", kind, channel or "", "ccserver-transfer", exten)
            except CallActionFailed as exc:
                out[kind] = (exc.status, exc.message)
        try:
            await calls.transfer("default", "blind", "Local/x\r\nAction: Originate", "ccserver-transfer", "q-sales")
        except ValueError as exc:
            out["injection"] = str(exc)
        out["sent"] = [dict(a.items()) for a in peer.actions]
        ami.stop()
        port.stopListening()
        return out

    out = asyncio.run(main())
    assert out["state"] == "talking" and out["agent"] == (AGENT, "1795416921.2")
    assert out["channel"] == "Local/8001@agent-phones-00000001;1"  # from Asterisk's CoreShowChannel, by uniqueid
    blind = next(a for a in out["sent"] if a.get("Action") == "BlindTransfer")
    assert (blind["Channel"], blind["Context"], blind["Exten"]) == (out["channel"], "ccserver-transfer", "q-sales")
    atxfer = next(a for a in out["sent"] if a.get("Action") == "Atxfer")
    assert (atxfer["Channel"], atxfer["Context"], atxfer["Exten"]) == (out["channel"], "ccserver-transfer", "A8002")
    # the recording holds no transfer: the peer refuses as Asterisk refuses an unknown action, reported as a 502
    assert out["blind"][0] == 502 and "BlindTransfer refused by Asterisk default" in out["blind"][1]
    assert out["attended"][0] == 502
    assert "CR, LF or NUL" in out["injection"]
    assert not any("Originate" in str(a.get("Channel", "")) for a in out["sent"])


def test_click_to_dial_originate_is_queued_by_asterisk() -> None:
    async def main() -> dict[str, Any]:
        ami, peer, port, loop = await _connect("ami-originate-results", [])
        calls = AMIDesktopCalls(ami, loop)
        announced: list[str] = []
        action_id = await calls.originate("default", channel="PJSIP/8001", context="ccserver-dial",
                                          exten="13912345678", caller_id="4008001000", timeout_ms=30000,
                                          variables={"CC_DIAL_E164": "+8613912345678", "CC_TICKET_ID": "42",
                                                     "CC_CUSTOMER_ID": ""},
                                          announce=announced.append)
        out = {"action_id": action_id, "announced": announced,
               "sent": [dict(a.items()) for a in peer.actions if a.get("Action") == "Originate"]}
        with pytest.raises(CallActionFailed):
            await calls.originate("elsewhere", channel="PJSIP/8001", context="ccserver-dial", exten="1",
                                  caller_id="", timeout_ms=1000, variables={})
        ami.stop()
        port.stopListening()
        return out

    out = asyncio.run(main())
    assert out["announced"] == [out["action_id"]]  # announced to the tracker before it was sent
    sent = out["sent"][0]
    assert sent["ActionID"] == out["action_id"]
    assert (sent["Channel"], sent["Context"], sent["Exten"], sent["Priority"], sent["CallerID"], sent["Async"],
            sent["Timeout"]) == ("PJSIP/8001", "ccserver-dial", "13912345678", "1", "4008001000", "true", "30000")
