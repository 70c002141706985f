"""AMIClient against the replay peer (recorded Asterisk), in memory: MemoryReactorClock + iosim pumps."""

from __future__ import annotations

import hashlib
import logging

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.test.iosim import ConnectionCompleter

from ccserver.ami.client import AMIClient, AMIServerConfig, backoff_delay
from ccserver.ami.errors import AMIAuthError, AMIConnectionLost, AMIError, OriginateOutcomeUnknown
from ccserver.ami.manager import AMIManager
from ccserver.ami.metrics import AMIMetrics
from tests.replay.ami_peer import AMIReplayFactory

SECRET = "ccserver-secret"


class Net:
    """A fake network: the peer listens on 5038 (and more ports), connections complete on demand."""

    def __init__(self, transcript: str | None = None, port: int = 5038, **peer_kw) -> None:
        self.reactor = MemoryReactorClock()
        self.pumps = []
        self.peers = {}
        if transcript:
            self.listen(transcript, port, **peer_kw)

    def listen(self, transcript: str, port: int, **peer_kw) -> AMIReplayFactory:
        peer = AMIReplayFactory(transcript, clock=self.reactor, **peer_kw)
        self.reactor.listenTCP(port, peer)
        self.peers[port] = peer
        return peer

    @property
    def peer(self) -> AMIReplayFactory:
        return self.peers[5038]

    def accept(self) -> None:
        pump = ConnectionCompleter(self.reactor).succeedOnce()
        assert pump is not None, "no pending connection attempt"
        self.pumps.append(pump)
        self.flush()

    def refuse(self) -> None:
        ConnectionCompleter(self.reactor).failOnce()

    def flush(self) -> None:
        for pump in self.pumps:
            pump.flush()

    def pending_connects(self) -> int:
        return len(self.reactor.tcpClients)

    def client(self, server: str, port: int = 5038, **cfg) -> AMIClient:
        cfg.setdefault("auth", "plain")
        cfg.setdefault("secret", SECRET)
        return AMIClient(AMIServerConfig(port=port, **cfg), reactor=self.reactor, server=server)


def collect(d):
    out = []
    d.addBoth(out.append)
    return out


def test_plain_login_resync_and_list_actions_vip():
    net = Net("ami-inbound-vip-answered")
    client = net.client("c-vip")
    resyncs, agents = [], []
    client.on_resync(lambda c: resyncs.append(c.server))
    client.on("AgentConnect", agents.append)
    client.start()
    net.accept()
    assert client.connected and client.protocol.version == "13.0.0"
    assert resyncs == ["c-vip"]
    assert AMIMetrics("c-vip").connected.value(server="c-vip") == 1
    login = net.peer.actions[0]
    assert login.get("Action") == "Login" and login["Secret"] == SECRET and login["Username"] == "ccserver"
    orig = collect(client.originate("Local/13800138000@callers", context="from-pstn", exten="4008001000",
                                    priority=1, caller_id='"Zhang Wei" <13800138000>',
                                    variables={"CALLER_HOLD": 20}))
    net.flush()
    assert orig[0].reason == 4 and orig[0].answered and orig[0].uniqueid
    assert [a.server for a in agents] == ["c-vip"] and agents[0]["MemberName"]
    qs = collect(client.send_action("QueueStatus"))
    net.flush()
    chans = collect(client.send_action("CoreShowChannels"))
    net.flush()
    status = collect(client.send_action("Status"))
    net.flush()
    assert qs[0].complete.event == "QueueStatusComplete"
    assert {e.event for e in qs[0].events} <= {"QueueParams", "QueueMember", "QueueEntry"} and qs[0].events
    assert chans[0].complete.event == "CoreShowChannelsComplete"
    assert len(chans[0].events) == int(chans[0].complete["ListItems"]) > 0
    assert status[0].complete.event == "StatusComplete" and status[0].events
    assert all(e.action_id == chans[0].response.action_id for e in chans[0].events)


def test_login_failure_is_logged_and_retried_slowly(caplog):
    caplog.set_level(logging.INFO, "ccserver.ami")
    net = Net("ami-login-variants", speed=1.0)  # real recorded timing: the error comes after 1 s
    client = net.client("c-badlogin", secret="wrong")
    client.start()
    net.accept()
    assert not client.connected
    net.reactor.advance(0.9)
    net.flush()
    assert "refused" not in caplog.text  # Asterisk answers a bad secret only after ~1 s
    net.reactor.advance(0.2)
    net.flush()
    assert "refused by Asterisk: Authentication failed" in caplog.text
    assert AMIMetrics("c-badlogin").login_failures.value(server="c-badlogin") == 1
    assert net.pending_connects() == 0
    net.reactor.advance(58.0)
    assert net.pending_connects() == 0  # no tight loop: nothing before the slow retry delay
    net.reactor.advance(3.0)
    assert net.pending_connects() == 1
    assert [a["Secret"] for a in net.peer.actions] == ["wrong"]


def test_md5_challenge_login_ping_unknown_action():
    net = Net("ami-login-challenge")
    client = net.client("c-md5", auth="md5", events="off")
    client.start()
    net.accept()
    assert client.connected
    challenge, login = net.peer.actions[:2]
    assert challenge.get("Action") == "Challenge" and challenge["AuthType"] == "MD5"
    assert login["Key"] == hashlib.md5(("162971476" + SECRET).encode()).hexdigest()  # noqa: S324 - AMI's scheme
    assert login["Key"] == "202ad43d1c81ca672ee1e646fc25e814"  # the key the recorder sent to the real Asterisk
    assert login["AuthType"] == "MD5" and login["Events"] == "off" and "Secret" not in login
    ping = collect(client.send_action("Ping"))
    net.flush()
    assert ping[0]["Ping"] == "Pong"
    bad = collect(client.send_action("NoSuchAction"))
    net.flush()
    assert isinstance(bad[0].value, AMIError) and bad[0].value.message.startswith("Invalid/unknown command")


def test_queue_member_actions_and_two_failures():
    net = Net("ami-queue-member-actions")
    client = net.client("c-members")
    paused = []
    client.on("QueueMemberPause", paused.append)
    client.start()
    net.accept()

    def do(action, **headers):
        out = collect(client.send_action(action, **headers))
        net.flush()
        return out[0]

    iface = "Local/8002@agent-phones/n"
    assert do("QueueAdd", Queue="service", Interface=iface, MemberName="Li Wei", Penalty=1,
              StateInterface=iface)["Message"] == "Added interface to queue"
    assert do("QueuePause", Queue="service", Interface=iface, Paused=True, Reason="lunch")["Message"].startswith(
        "Interface paused")
    assert do("QueuePause", Interface=iface, Paused=False)["Message"].startswith("Interface unpaused")
    assert do("QueuePenalty", Interface=iface, Penalty=3, Queue="service")["Message"].startswith("Interface penalty")
    summary = do("QueueSummary")
    assert [e["Queue"] for e in summary.events] == ["service", "vip", "complaints", "bulk", "sales"]
    assert summary.complete["ListItems"] == "5"
    status = do("QueueStatus")
    assert len(status.events) == int(status.complete["ListItems"])
    assert do("QueueRemove", Queue="service", Interface=iface)["Message"] == "Removed interface from queue"
    err1 = do("QueueRemove", Queue="service", Interface="Local/9999@agent-phones/n").value
    err2 = do("QueueAdd", Queue="nosuchqueue", Interface=iface).value
    assert isinstance(err1, AMIError) and err1.message == "Unable to remove interface: Not there"
    assert isinstance(err2, AMIError) and err2.message == "Unable to add interface to queue: No such queue"
    assert [p["PausedReason"] for p in paused][:2] == ["lunch", ""]


def test_originate_reason_codes():
    net = Net("ami-originate-results")
    client = net.client("c-orig")
    client.start()
    net.accept()
    answer = collect(client.originate("Local/13811112222@cc-outbound", context="from-pstn", exten="4008001000",
                                      priority=1, caller_id='"Campaign" <4008001000>', timeout_ms=20000,
                                      variables={"CC_CAMPAIGN_ID": 7, "CC_CONTACT_ID": 901}))
    busy = collect(client.originate("Local/13900000001@cc-outbound", application="Wait", data="1",
                                    timeout_ms=10000))
    noanswer = collect(client.originate("Local/13911111111@cc-outbound", application="Wait", data="1",
                                        timeout_ms=5000))
    bad = collect(client.originate("Local/13911111111@nosuchcontext", application="Wait", data="1",
                                   timeout_ms=5000))
    net.flush()
    got = {name: (r[0].reason, r[0].outcome, r[0].answered)
           for name, r in [("answer", answer), ("busy", busy), ("noanswer", noanswer), ("bad", bad)]}
    assert got == {"answer": (4, "answered", True), "busy": (5, "busy", False),
                   "noanswer": (3, "no_answer", False), "bad": (0, "failed", False)}
    sent = [a for a in net.peer.actions if a.get("Action") == "Originate"]
    assert sent[0].getall("Variable") == ["CC_CAMPAIGN_ID=7", "CC_CONTACT_ID=901"]
    assert all(a["Async"] == "true" for a in sent)


def test_dialer_announces_its_originates_to_the_tracker_first():
    """The dialer's order: take an ActionID, announce it (tracker.expect_originate), then originate with it —
    so the OriginateResponse Asterisk sends back makes an outbound call record with the dialer's facts."""
    from ccserver.state import StateTracker
    from tests.test_state_support import records_to

    net = Net("ami-originate-results")
    client = net.client("c-dialer")
    records: list[dict] = []
    tracker = StateTracker(publish=records_to(records.append))
    client.on_any(lambda msg: tracker.handle(msg, msg.arrival))
    client.start()
    net.accept()
    action_id = client.new_originate_id()
    tracker.expect_originate(action_id, server="c-dialer", dialed_number="13811112222", campaign_id="7")
    answer = collect(client.originate("Local/13811112222@cc-outbound", context="from-pstn", exten="4008001000",
                                      priority=1, caller_id='"Campaign" <4008001000>', timeout_ms=20000,
                                      variables={"CC_CAMPAIGN_ID": 7, "CC_CONTACT_ID": 901}, action_id=action_id))
    others = [client.new_originate_id() for _ in range(3)]
    for aid in others:
        tracker.expect_originate(aid, server="c-dialer")
    collect(client.originate("Local/13900000001@cc-outbound", application="Wait", data="1", timeout_ms=10000,
                             action_id=others[0]))
    collect(client.originate("Local/13911111111@cc-outbound", application="Wait", data="1", timeout_ms=5000,
                             action_id=others[1]))
    collect(client.originate("Local/13911111111@nosuchcontext", application="Wait", data="1", timeout_ms=5000,
                             action_id=others[2]))
    net.flush()
    sent = [a for a in net.peer.actions if a.get("Action") == "Originate"]
    assert [a["ActionID"] for a in sent] == [action_id, *others]  # the announced ids went out as they were
    assert answer[0].action_id == action_id and answer[0].answered
    by_outcome = {r["outcome"]: r for r in records}
    assert sorted(by_outcome) == ["answered", "busy", "failed", "no_answer"]
    assert all(r["direction"] == "outbound" for r in records)
    assert by_outcome["answered"]["dialed_number"] == "13811112222"
    assert by_outcome["answered"]["campaign_id"] == "7"
    assert by_outcome["failed"]["uniqueid"] == f"originate:{others[2]}"


def test_originate_refuses_an_unsafe_or_pending_action_id():
    net = Net("ami-originate-results")
    client = net.client("c-ids")
    client.start()
    net.accept()
    with pytest.raises(ValueError):
        client.originate("Local/1@cc-outbound", application="Wait", data="1", action_id="x\r\nAction: Logoff")
    aid = client.new_originate_id()
    client.originate("Local/13811112222@cc-outbound", context="from-pstn", exten="4008001000", priority=1,
                     action_id=aid)
    with pytest.raises(ValueError):
        client.originate("Local/13811112222@cc-outbound", context="from-pstn", exten="4008001000", priority=1,
                         action_id=aid)
    net.flush()
    assert [a.get("ActionID") for a in net.peer.actions if a.get("Action") == "Originate"] == [aid]


def test_originate_ids_never_repeat_within_a_process_and_differ_between_clients(monkeypatch):
    # Campaign attempts keep action ids unique in the database: a repeat would fail the attempt's write.
    # Force the random parts to collide: the sequence alone must keep ids apart.
    monkeypatch.setattr("ccserver.ami.client.secrets.token_hex", lambda n: "00" * n)
    client = AMIClient(AMIServerConfig(secret="s"), server="c-seq",
                       reactor=MemoryReactorClock())
    ids = [client.new_originate_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all("\r" not in i and "\n" not in i for i in ids)
    monkeypatch.undo()
    a, b = (AMIClient(AMIServerConfig(secret="s"), server=n,
                      reactor=MemoryReactorClock()) for n in ("c1", "c2"))
    assert a.new_originate_id() != b.new_originate_id()


def test_asterisk_restart_reconnects_with_backoff_and_resyncs():
    net = Net("ami-asterisk-restart-with-waiting-caller")
    client = net.client("c-restart")
    client.rng.seed(7)
    snapshots = []

    def resync(c):
        # what the state model does: rebuild from Asterisk's truth
        qs = c.send_action("QueueStatus", Queue="complaints")
        qs.addCallback(lambda r: snapshots.append(("calls", r.events[0]["Calls"], len(r.events))))
        if len(snapshots) or c.connections > 1:
            ch = c.send_action("CoreShowChannels")
            ch.addCallback(lambda r: snapshots.append(("channels", len(r.events))))

    client.on_resync(resync)
    client.start()
    net.accept()  # login, FullyBooted (uptime 234) -> resync -> QueueStatus
    orig = collect(client.originate("Local/13500000003@callers", application="Queue", data="complaints",
                                    caller_id='"Zhou Qiang" <13500000003>', variables={"CALLER_HOLD": 60}))
    net.flush()
    assert orig[0].answered  # OriginateResponse came before the restart
    # The recorded QueueStatus (the caller waiting) is answered to our resync and then Asterisk goes away.
    assert snapshots[0] == ("calls", "1", 2)
    assert not client.connected and AMIMetrics("c-restart").connected.value(server="c-restart") == 0
    # Asterisk is restarting: the first attempts are refused, delays grow 1 -> 2 -> 4 s (±20 %).
    delays = []
    for _ in range(3):
        (call,) = [c for c in net.reactor.getDelayedCalls() if c.func == client._connect]
        delays.append(call.getTime() - net.reactor.seconds())
        net.reactor.advance(delays[-1])
        if len(delays) < 3:
            net.refuse()
    assert 0.8 <= delays[0] <= 1.2 and 1.6 <= delays[1] <= 2.4 and 3.2 <= delays[2] <= 4.8
    net.accept()
    assert client.connected and client.connections == 2
    assert ("calls", "0", 1) in snapshots and ("channels", 0) in snapshots  # the caller is gone
    assert AMIMetrics("c-restart").reconnects.value(server="c-restart") == 1
    assert [a.get("Action") for a in net.peer.actions].count("Originate") == 1  # never re-sent


def test_drop_mid_action_fails_pending_and_unknown_originate_then_resync_again():
    net = Net("ami-inbound-vip-answered", repeat_last=True, skip_actions=["Originate"])
    client = net.client("c-drop")
    resyncs = []
    client.on_resync(lambda c: resyncs.append(c.connections))
    client.start()
    net.accept()
    net.peer.silent = True  # Asterisk stops answering…
    pending = collect(client.send_action("QueueStatus"))
    orig = collect(client.originate("Local/1@callers", context="from-pstn", exten="4008001000"))
    net.flush()
    assert pending == [] and orig == []
    net.peer.connections[0].transport.loseConnection()  # …and the connection drops
    net.flush()
    assert isinstance(pending[0].value, AMIConnectionLost)
    assert isinstance(orig[0].value, OriginateOutcomeUnknown)
    assert net.pending_connects() == 0
    net.reactor.advance(1.3)
    assert net.pending_connects() == 1
    net.peer.silent = False
    net.accept()
    assert client.connected and resyncs == [1, 2]
    assert [a.get("Action") for a in net.peer.actions].count("Originate") == 1


def test_keepalive_drops_silent_asterisk_and_reconnects():
    net = Net("ami-inbound-vip-answered", repeat_last=True, skip_actions=["Originate"])
    client = net.client("c-ka", ping_interval=20, ping_timeout=10)
    client.start()
    net.accept()
    net.reactor.advance(20)
    net.flush()
    assert client.connected and net.peer.actions[-1].get("Action") == "Ping"  # answered (synthetic Pong)
    net.peer.silent = True
    net.reactor.advance(20)
    net.flush()
    assert client.connected
    net.reactor.advance(10.5)
    net.flush()
    assert not client.connected
    assert AMIMetrics("c-ka").keepalive_timeouts.value(server="c-ka") == 1
    net.reactor.advance(2)
    assert net.pending_connects() == 1


def test_stop_cancels_retry():
    net = Net("ami-inbound-vip-answered")
    client = net.client("c-stop")
    client.start()
    net.refuse()
    assert [c for c in net.reactor.getDelayedCalls() if c.func == client._connect]
    client.stop()
    assert not [c for c in net.reactor.getDelayedCalls() if c.func == client._connect and c.active()]


def test_manager_tags_events_with_server_name():
    net = Net()
    net.listen("ami-inbound-vip-answered", 5038, skip_actions=["Originate"])
    net.listen("ami-inbound-abandoned", 5039, skip_actions=["Originate"])
    manager = AMIManager({
        "ast-a": AMIServerConfig(port=5038, auth="plain", secret=SECRET),
        "ast-b": AMIServerConfig(port=5039, auth="plain", secret=SECRET),
    }, reactor=net.reactor)
    joins, abandons, resynced = [], [], []
    manager.on("QueueCallerJoin", joins.append)
    manager.on("QueueCallerAbandon", abandons.append)
    manager.on_resync(lambda name, client: resynced.append(name))
    manager.start()
    net.accept()
    net.accept()
    net.flush()
    assert sorted(resynced) == ["ast-a", "ast-b"]
    assert sorted({j.server for j in joins}) == ["ast-a", "ast-b"]
    assert [a.server for a in abandons] == ["ast-b"]
    qs = collect(manager.send_action("ast-a", "QueueStatus"))
    net.flush()
    assert qs[0].response.server == "ast-a"
    manager.stop()


def test_backoff_is_capped_with_jitter():
    import random

    rng = random.Random(1)
    delays = [backoff_delay(n, rng=rng) for n in range(1, 12)]
    assert all(0.8 <= d <= 30 for d in delays) and max(delays) <= 30
    assert delays[-1] >= 24  # at the cap (minus jitter)
    with pytest.raises(AMIAuthError):
        raise AMIAuthError("Login", "Authentication failed")
