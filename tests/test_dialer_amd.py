"""Answering-machine detection: the shipped [ccserver-campaign] runs AMD() when CC_AMD=1 and reports AMDSTATUS as
the AMI UserEvent CcAmd (manager class "user", which ccserver's AMI user reads); the tracker puts the verdict on the
call, the dialer records ``machine`` and the retry matrix's ``machine`` spacing applies.

No recording of AMD exists in tests/data/asterisk/, so the AMI events here are built by hand in the shapes of the
recorded ami-originate-results transcript (Newchannel / OriginateResponse / Newstate / Hangup of a Local channel),
plus UserEvent as Asterisk 13+ writes it (the channel's snapshot headers, then the body's ``key: value`` pairs);
a few hostile ones too."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ccserver.ami.message import parse_stream
from ccserver.campaigns.compliance import check
from ccserver.campaigns.settings import CampaignSettings
from ccserver.clock import ManualClock
from ccserver.db.models import CampaignTarget
from ccserver.dialer.engine import Dialer, plan_campaign
from ccserver.dialer.leases import MemoryContactLeases
from ccserver.dialer.store import DialerStore
from ccserver.events import EventHub
from ccserver.events.types import CallEnded
from ccserver.state import StateTracker
from ccserver.state.tracker import EVENTS
from tests.dialer_support import MORNING, Result, ScriptedOriginator, campaign, database, inline, turns
from tests.test_dialer import outcomes

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_campaign_context_reports_amd_and_hangs_up_on_a_machine() -> None:
    text = (ROOT / "config" / "asterisk" / "extensions_ccserver.conf").read_text()
    context = text.split("[ccserver-campaign]", 1)[1].split("\n[", 1)[0]
    lines = [line.strip() for line in context.splitlines() if line.strip().startswith(("exten", "same"))]
    steps = [re.sub(r"^(exten => s,1|same => n(\(\w+\))?),", "", line) for line in lines]
    amd = steps.index("AMD()")
    assert steps[amd - 1] == 'GotoIf($["${CC_AMD}" != "1"]?queue)'  # only when the Originate asked for it
    assert steps[amd + 1].startswith("UserEvent(CcAmd,Status: ${AMDSTATUS}")
    assert steps[amd + 2] == 'GotoIf($["${AMDSTATUS}" = "MACHINE"]?machine)'
    assert any(line.startswith("same => n(machine),Hangup()") for line in lines)  # a machine never reaches the queue
    manager = (ROOT / "config" / "asterisk" / "manager_ccserver.conf").read_text()
    read = next(line for line in manager.splitlines() if line.startswith("read"))
    assert "user" in read.split("=", 1)[1].split(",")  # UserEvent's class
    assert "UserEvent" in EVENTS  # the AMI client decodes it for the tracker


def answered_call(action_id: str, uid: str, number: str, *, verdict: str | None, queue: bool = False,
                  t: float = MORNING) -> bytes:
    """A campaign call answered by the callee, in [ccserver-campaign]: (AMD verdict), (the queue), hangup."""
    chan = f"Local/{number}@ccserver-outbound-0000001a;1"
    snap = (f"Channel: {chan}\r\nChannelState: 6\r\nChannelStateDesc: Up\r\nCallerIDNum: 4008001000\r\n"
            f"CallerIDName: Shanghai Volvo\r\nConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\n"
            f"Language: en\r\nAccountCode: \r\nContext: ccserver-campaign\r\nExten: s\r\nPriority: 4\r\n"
            f"Uniqueid: {uid}\r\nLinkedid: {uid}\r\n")
    out = [
        f"Event: Newchannel\r\nPrivilege: call,all\r\nTimestamp: {t:.6f}\r\n"
        + snap.replace("ChannelState: 6\r\nChannelStateDesc: Up", "ChannelState: 0\r\nChannelStateDesc: Down"),
        f"Event: Newstate\r\nPrivilege: call,all\r\nTimestamp: {t + 6:.6f}\r\n{snap}",
        f"Event: OriginateResponse\r\nPrivilege: call,all\r\nTimestamp: {t + 6:.6f}\r\nActionID: {action_id}\r\n"
        f"Response: Success\r\nChannel: {chan}\r\nContext: ccserver-campaign\r\nExten: s\r\nApplication: \r\n"
        f"Data: \r\nReason: 4\r\nUniqueid: {uid}\r\nCallerIDNum: 4008001000\r\nCallerIDName: Shanghai Volvo\r\n",
    ]
    if verdict is not None:
        out.append(f"Event: UserEvent\r\nPrivilege: user,all\r\nTimestamp: {t + 9:.6f}\r\n{snap}"
                   f"UserEvent: CcAmd\r\nStatus: {verdict}\r\nTarget: 1\r\n")
    if queue:
        out.append(f"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\nTimestamp: {t + 9:.6f}\r\n{snap}"
                   f"Queue: sales\r\nPosition: 1\r\nCount: 1\r\n")
        out.append(f"Event: QueueCallerAbandon\r\nPrivilege: agent,all\r\nTimestamp: {t + 11:.6f}\r\n{snap}"
                   f"Queue: sales\r\nPosition: 1\r\nOriginalPosition: 1\r\nHoldTime: 2\r\n")
    out.append(f"Event: Hangup\r\nPrivilege: call,all\r\nTimestamp: {t + 12:.6f}\r\n{snap}"
               f"Cause: 16\r\nCause-txt: Normal Clearing\r\n")
    return "".join(part + "\r\n" for part in out).encode()


class Answering(ScriptedOriginator):
    """Every Originate answered (the customer picked up), with the uniqueid the events above carry."""

    def __init__(self, clock: Any) -> None:
        super().__init__(clock, delay=6.0)
        self.uids: dict[str, str] = {}

    def originate(self, server: str, channel: str, **kwargs: Any) -> Any:
        self.sent.append((kwargs["action_id"], channel, kwargs))
        uid = f"1795416970.{len(self.sent)}"
        self.uids[kwargs["action_id"]] = uid
        return self._answer(uid)

    async def _answer(self, uid: str) -> Any:
        await self.clock.sleep(self.delay)
        return Result("answered", uniqueid=uid)


def run_calls(sessions: Any, numbers: list[str], verdicts: list[str | None], *, queue: list[bool] | None = None,
              amd: bool = True, extra: bytes = b"", ended: list[Any] | None = None) -> tuple[Dialer, StateTracker]:
    settings = CampaignSettings.from_dict({"amd": amd})

    async def run() -> tuple[Dialer, StateTracker]:
        clock = ManualClock(MORNING)
        hub = EventHub()
        tracker = StateTracker(publish=hub.publish, clock=clock.time)
        originator = Answering(clock)
        dialer = Dialer(DialerStore(sessions), originator, MemoryContactLeases(clock.monotonic),
                        run_blocking=inline, clock=clock, tracker=tracker, default_zone="Asia/Shanghai",
                        floor=lambda *a: (len(numbers), []), settings=settings)
        dialer.subscribe(hub)
        if ended is not None:
            hub.subscribe("test", lambda e: ended.append(e) if isinstance(e, CallEnded) else None)
        hub.start()
        assert await dialer.tick() == len(numbers)
        await clock.advance(6.0)
        await turns()
        for n, (action_id, channel, _kw) in enumerate(originator.sent):
            number = channel.split("/", 1)[1].split("@", 1)[0]
            data = answered_call(action_id, originator.uids[action_id], number.lstrip("+"), verdict=verdicts[n],
                                 queue=(queue or [False] * len(numbers))[n])
            if n == 0 and extra:
                data = data.replace(b"Event: Hangup", extra + b"Event: Hangup", 1)
            for msg in parse_stream(data):
                tracker.handle(msg)
        await turns()
        await dialer.drain()
        await hub.stop(1.0)
        return dialer, tracker

    return asyncio.run(run())


def test_a_machine_verdict_is_recorded_as_machine_and_retried_after_the_matrix_spacing(sqlite_url: str) -> None:
    sessions = database(sqlite_url)
    cid, (target,) = campaign(sessions, ["+8613800000041"], max_attempts=3)
    ended: list[Any] = []
    dialer, _tracker = run_calls(sessions, ["+8613800000041"], ["MACHINE"], ended=ended)
    assert [e.final["amd"] for e in ended] == ["MACHINE"]  # the verdict reached the call, through the tracker
    assert outcomes(sessions) == [(target, "machine")] and dialer.live == {}
    with sessions() as s:
        t = s.get(CampaignTarget, target)
        assert t is not None and (t.status, t.attempts, t.last_outcome) == ("pending", 1, "machine")
    store = DialerStore(sessions)
    row, = store.running_campaigns()
    _q, contacts, rules = plan_campaign(row, store.open_targets(cid), CampaignSettings(), "Asia/Shanghai")
    assert rules.policy.spacing["machine"] == 4 * 3600  # the retry matrix's default for machine
    verdict = check(contacts[target], rules.window, rules.policy, set(),
                    datetime.fromtimestamp(MORNING + 3600, UTC))
    assert verdict.reason == "spacing"
    assert check(contacts[target], rules.window, rules.policy, set(),
                 datetime.fromtimestamp(MORNING + 4 * 3600 + 60, UTC)).allowed


def test_a_human_goes_on_to_the_queue_and_a_caller_hangup_during_amd_is_not_a_machine(sqlite_url: str) -> None:
    sessions = database(sqlite_url)
    _cid, targets = campaign(sessions, ["+8613800000051", "+8613800000052", "+8613800000053"])
    run_calls(sessions, ["+8613800000051", "+8613800000052", "+8613800000053"], ["HUMAN", "HANGUP", "NOTSURE"],
              queue=[True, False, True])
    # HUMAN → queue, nobody free within the limit: abandoned; HANGUP (the callee hung up during AMD): no answer;
    # NOTSURE is treated as a person (the dialplan queues it).
    assert outcomes(sessions) == list(zip(targets, ["abandoned", "no_answer", "abandoned"], strict=True))


def test_hostile_or_foreign_user_events_change_nothing(sqlite_url: str) -> None:
    """Another application's UserEvent, a forged status, a CcAmd of some other call: ignored."""
    sessions = database(sqlite_url)
    _cid, targets = campaign(sessions, ["+8613800000061"])
    other = (b"Event: UserEvent\r\nPrivilege: user,all\r\nUniqueid: 1795416999.1\r\nLinkedid: 1795416999.1\r\n"
             b"UserEvent: CcAmd\r\nStatus: MACHINE\r\n\r\n"  # a call that is not ours
             b"Event: UserEvent\r\nPrivilege: user,all\r\nUniqueid: 1795416970.1\r\nLinkedid: 1795416970.1\r\n"
             b"UserEvent: SomethingElse\r\nStatus: MACHINE\r\n\r\n"  # not ccserver's event
             b"Event: UserEvent\r\nPrivilege: user,all\r\nUniqueid: 1795416970.1\r\nLinkedid: 1795416970.1\r\n"
             b"UserEvent: CcAmd\r\nStatus: MACHINE;DROP TABLE\r\n\r\n")  # not a verdict
    _dialer, tracker = run_calls(sessions, ["+8613800000061"], ["HUMAN"], queue=[True], extra=other)
    assert outcomes(sessions) == [(targets[0], "abandoned")]
    assert ("default", "1795416999.1") not in tracker.calls  # a UserEvent makes no call


def test_without_a_verdict_the_old_inference_holds_only_when_amd_is_on(sqlite_url: str) -> None:
    """A dialplan from before the UserEvent: a call that never reached the queue is a machine when AMD is on; with
    AMD off the callee hung up before the queue (no answer, retried after the no-answer spacing)."""
    sessions = database(sqlite_url)
    _c1, (on,) = campaign(sessions, ["+8613800000071"])
    run_calls(sessions, ["+8613800000071"], [None], amd=True)
    with sessions() as s:
        assert s.scalar(select(CampaignTarget.last_outcome).where(CampaignTarget.id == on)) == "machine"
    sessions2 = database(sqlite_url.replace("ccserver.sqlite3", "second.sqlite3"))
    _c2, (off,) = campaign(sessions2, ["+8613800000072"])
    run_calls(sessions2, ["+8613800000072"], [None], amd=False)
    with sessions2() as s:
        assert s.scalar(select(CampaignTarget.last_outcome).where(CampaignTarget.id == off)) == "no_answer"
