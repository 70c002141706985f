"""The AMI metrics. Names are a contract (dashboards and alerts use them)."""

from __future__ import annotations

from ccserver.metrics import REGISTRY, Registry


class AMIMetrics:
    def __init__(self, server: str = "default", registry: Registry = REGISTRY) -> None:
        self.server = server
        self.messages = registry.counter(
            "ccserver_ami_messages_total", "AMI messages received (parsed or counted and skipped)")
        self.dropped = registry.counter(
            "ccserver_ami_events_dropped_total", "AMI events nobody subscribed to, counted without decoding")
        self.malformed = registry.counter(
            "ccserver_ami_malformed_total", "AMI input that could not be parsed cleanly, by kind")
        self.connected = registry.gauge("ccserver_ami_connected", "1 while logged in to the Asterisk server")
        self.reconnects = registry.counter(
            "ccserver_ami_reconnects_total", "AMI connections (re)established after the first one")
        self.handler_errors = registry.counter(
            "ccserver_ami_handler_errors_total", "AMI event handlers that raised")
        self.unmatched = registry.counter(
            "ccserver_ami_unmatched_responses_total", "AMI responses whose ActionID matched no pending action")
        self.keepalive_timeouts = registry.counter(
            "ccserver_ami_keepalive_timeouts_total", "AMI connections dropped because Ping went unanswered")
        self.login_failures = registry.counter("ccserver_ami_login_failures_total", "AMI logins refused or failed")
        self.read_seconds = registry.histogram(
            "ccserver_ami_read_seconds",
            "Time one AMI read (or one slice of a burst) held the event loop: framing, parsing, the tracker, the hub",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0))
        self.handoff_overflow = registry.counter(
            "ccserver_ami_handoff_dropped_total", "Events dropped because a hand-off queue was full")
