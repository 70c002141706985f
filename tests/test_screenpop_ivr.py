"""The card's IVR path: the routing decision's ``CC_IVR`` (recorded in agi-08's MSet) reaches the card of the call
that carries the decision id on its channel (recorded in ami-inbound-channelvars-autopause) — from the memo on
the node that answered the AGI, else from the decision log row."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from ccserver.callrouting.decision_memo import DecisionMemo, load_ivr_of
from ccserver.callrouting.records import routing_record_sink
from ccserver.db import migrate
from ccserver.db.engine import make_engine, session_factory
from ccserver.events import EventHub
from screenpop.wiring import ivr_lookup
from tests.screenpop_support import call_frames, feed, frames, make_service, open_agent

DATA = Path(__file__).parent / "data" / "asterisk"
AMI_DECISION = "agrdeav5sincmpbw"  # the decision id on the recorded call's channel


def recorded_mset() -> dict[str, str]:
    """The variables ccserver's IVR answered in agi-08 (caller pressed 9 then 4: the insurance line)."""
    for line in (DATA / "agi-08-13600000002.jsonl").read_text().splitlines():
        msg = json.loads(line)
        if msg["dir"] == "send" and msg["data"].startswith("EXEC MSet "):
            body = msg["data"][len("EXEC MSet "):].strip().strip('"')
            return dict(pair.split("=", 1) for pair in body.split(","))
    raise AssertionError("no MSet in agi-08")


def decision_record(variables: dict[str, str]) -> dict[str, Any]:
    return {"kind": "decision", "decision_id": variables["CC_DECISION_ID"], "made_at": 1_795_416_900.0,
            "server": "default", "uniqueid": "1795416900.1", "queue": "insurance", "reasons": ["IVR: main.4"],
            "variables": variables}


async def never(_decision_id: str) -> tuple[str, str] | None:
    raise AssertionError("the memo had it: no SQL")


def pop_of_replayed_call(ivr_of: Any) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        hub = EventHub()
        service, _audits = make_service(hub=hub, ivr_of=ivr_of)
        hub.start()
        await service.start()
        try:
            a9 = await open_agent(service, 9, "agent8009")
            assert (await frames(a9, 1))[0]["type"] == "hello"
            variables = recorded_mset()
            feed(hub, "ami-inbound-channelvars-autopause", replace=(AMI_DECISION, variables["CC_DECISION_ID"]))
            pop = (await call_frames(a9, 1))[0]
            await a9.close()
            return pop
        finally:
            await service.stop()
            await hub.stop(1.0)

    return asyncio.run(asyncio.wait_for(main(), 30))


def test_the_node_that_answered_the_agi_puts_the_ivr_path_on_the_card() -> None:
    memo = DecisionMemo()
    variables = recorded_mset()
    memo.note(decision_record(variables))
    pop = pop_of_replayed_call(ivr_lookup(memo, never))
    assert pop["type"] == "pop" and pop["call"]["decision_id"] == variables["CC_DECISION_ID"]
    assert pop["customer"]["ivr_path"] == "main.4"


def test_another_node_reads_the_decision_log_row_once_it_is_written() -> None:
    variables = recorded_mset()
    reads: list[str] = []

    async def load(decision_id: str) -> tuple[str, str] | None:
        reads.append(decision_id)
        return None if len(reads) == 1 else (variables["CC_IVR"], variables["CC_TICKET_ID"])  # written behind

    pop = pop_of_replayed_call(ivr_lookup(DecisionMemo(), load, delays=(0.0, 0.0)))
    assert reads == [variables["CC_DECISION_ID"]] * 2 and pop["customer"]["ivr_path"] == "main.4"


def test_no_ivr_path_when_the_decision_had_none_or_cannot_be_read() -> None:
    async def plain(_decision_id: str) -> tuple[str, str] | None:
        return "", ""

    async def broken(_decision_id: str) -> tuple[str, str] | None:
        raise OSError("database down")

    assert pop_of_replayed_call(ivr_lookup(None, plain))["customer"]["ivr_path"] is None
    assert pop_of_replayed_call(ivr_lookup(None, broken))["customer"]["ivr_path"] is None


def test_the_memo_keeps_only_ivr_decisions_and_is_bounded() -> None:
    memo = DecisionMemo(size=2)
    memo.note({"decision_id": "d0", "variables": {"CC_QUEUE": "sales"}})  # routed without the IVR
    for i in range(1, 4):
        memo.note({"decision_id": f"d{i}", "variables": {"CC_IVR": f"main.{i}", "CC_TICKET_ID": "7"}})
    assert memo.get("d0") is None and memo.get("d1") is None
    assert memo.get("d3") == ("main.3", "7")


def test_the_decision_log_row_carries_the_path(sqlite_url: str) -> None:
    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        sessions = session_factory(engine)
        variables = recorded_mset()
        assert load_ivr_of(sessions, variables["CC_DECISION_ID"]) is None  # not written yet
        routing_record_sink(sessions)([decision_record(variables)])
        assert load_ivr_of(sessions, variables["CC_DECISION_ID"]) == ("main.4", "")
    finally:
        engine.dispose()
