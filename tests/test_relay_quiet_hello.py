"""A quiet leader and the hellos it gets: another term's, or none known, is a mark; the same term gets the kept
tail (test_ami_relay asserts the first only while the leader publishes, where any hello is a no-op)."""

from __future__ import annotations

import asyncio

from ccserver.ami.relay import EVENT, MARK, RelayOutbox
from ccserver.clock import ManualClock
from tests.test_ami_relay import AudienceRelay, sent, until, varset


def test_probe_a_quiet_leaders_hello_from_another_term_or_none_is_a_mark():
    async def main():
        for after in ((3, 2), None, (5, 2)):
            clock = ManualClock()
            relay = AudienceRelay(subscriptions=1)
            outbox = RelayOutbox(relay, "node-a", listening=lambda server: True, clock=clock,  # type: ignore[arg-type]
                                 audience_interval=1.0)
            outbox.begin("ast1", 4, after=(3, 9))
            await until(lambda outbox=outbox: not outbox.heard("ast1"))
            for _ in range(3):
                outbox.event("ast1", varset())
            outbox.hello("ast1", after)
            await outbox.flush()
            assert sent(relay)[1:] == [(5, MARK)], (after, sent(relay))
            outbox.close()
        # and the same term, right before what was kept: the kept tail, no mark
        clock = ManualClock()
        relay = AudienceRelay(subscriptions=1)
        outbox = RelayOutbox(relay, "node-a", listening=lambda server: True, clock=clock,  # type: ignore[arg-type]
                             audience_interval=1.0)
        outbox.begin("ast1", 4, after=(3, 9))
        await until(lambda: not outbox.heard("ast1"))
        for _ in range(3):
            outbox.event("ast1", varset())
        outbox.hello("ast1", (4, 1))
        await outbox.flush()
        assert sent(relay)[1:] == [(2, EVENT), (3, EVENT), (4, EVENT)]
        outbox.close()

    asyncio.run(main())
