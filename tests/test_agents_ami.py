"""The agent service's AMI side against the recorded Asterisk (ami-queue-member-actions), over real sockets on
the event loop the server uses (Twisted's asyncio reactor)."""

from __future__ import annotations

import asyncio
from typing import Any

from twisted.internet.asyncioreactor import AsyncioSelectorReactor

from ccserver.agents.queue_actions import ALREADY, DONE, NO_SUCH_QUEUE, AMIQueueActions, MemberActionFailed
from ccserver.ami.client import AMIServerConfig
from ccserver.ami.manager import AMIManager
from tests.replay.ami_peer import AMIReplayFactory

IFACE = "Local/8002@agent-phones/n"


def test_member_actions_and_asterisks_refusals_as_outcomes() -> None:
    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        reactor = AsyncioSelectorReactor(loop)
        peer = AMIReplayFactory("ami-queue-member-actions", clock=reactor)
        port = reactor.listenTCP(0, peer, interface="127.0.0.1")
        ami = AMIManager({"default": AMIServerConfig(port=port.getHost().port, auth="plain",
                                                     secret="ccserver-secret")}, reactor=reactor)
        actions = AMIQueueActions(ami)
        assert not actions.connected("default")
        ami.start()
        await ami.clients["default"].when_connected().asFuture(loop)
        out: dict[str, Any] = {"connected": actions.connected("default")}
        out["add"] = await actions.add("default", "service", IFACE, penalty=1, member_name="Li Wei",
                                       state_interface=None, paused=False, reason="")
        out["pause"] = await actions.pause("default", IFACE, paused=True, reason="lunch", queue="service")
        out["unpause"] = await actions.pause("default", IFACE, paused=False, reason="")
        out["penalty"] = await actions.penalty("default", "service", IFACE, 3)
        await ami.send_action("default", "QueueSummary").asFuture(loop)
        await ami.send_action("default", "QueueStatus").asFuture(loop)
        out["remove"] = await actions.remove("default", "service", IFACE)
        out["remove_absent"] = await actions.remove("default", "service", "Local/9999@agent-phones/n")
        out["add_nosuchqueue"] = await actions.add("default", "nosuchqueue", IFACE, penalty=0, member_name="x",
                                                   state_interface=None, paused=False, reason="")
        try:
            await actions.add("elsewhere", "sales", IFACE, penalty=0, member_name="x", state_interface=None,
                              paused=False, reason="")
        except MemberActionFailed as exc:
            out["unknown_server"] = str(exc)
        out["sent"] = [dict(a.items()) for a in peer.actions]
        ami.stop()
        port.stopListening()
        return out

    out = asyncio.run(main())
    assert out["connected"]
    assert (out["add"], out["pause"], out["unpause"], out["penalty"], out["remove"]) == (DONE,) * 5
    assert (out["remove_absent"], out["add_nosuchqueue"]) == (ALREADY, NO_SUCH_QUEUE)
    assert "no Asterisk server named 'elsewhere'" in out["unknown_server"]
    add = next(a for a in out["sent"] if a.get("Action") == "QueueAdd")
    assert (add["Queue"], add["Interface"], add["Penalty"], add["MemberName"], add["StateInterface"],
            add["Paused"]) == ("service", IFACE, "1", "Li Wei", IFACE, "false")
    assert "Reason" not in add
    pause = next(a for a in out["sent"] if a.get("Action") == "QueuePause")
    assert (pause["Paused"], pause["Reason"], pause["Queue"]) == ("true", "lunch", "service")
