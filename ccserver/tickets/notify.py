"""The notification webhook: ticket events POSTed to ``notify.webhook_url``, signed, retried, never lost.

**Outbox.** A notification is a row of ``notifications``, written in the *same transaction* as the change it
reports (``Outbox.enqueue``): a ticket that is committed has its notification, one that is rolled back has
none. :class:`WebhookDeliverer` sends them afterwards, oldest first.

**Delivery.** Each POST carries the JSON body ``{"id", "event", "created_at", "data"}`` and the headers
``X-Ccserver-Event``, ``X-Ccserver-Delivery`` (the notification id: a receiver de-duplicates on it, since a
delivery whose answer was lost is sent again), ``X-Ccserver-Timestamp`` (epoch seconds) and
``X-Ccserver-Signature: sha256=<hex>``, the HMAC-SHA256 with ``notify.webhook_secret`` of
``<timestamp>.<body>`` — a receiver recomputes it over the raw body and refuses old timestamps. A 2xx answer
delivers it (the row is deleted); anything else — another status, a refused connection, no answer within
``notify.timeout_seconds`` — is retried after ``notify.retry_delays`` (10 s, 1 min, 5 min, 30 min, 2 h by
default), and after the last one the notification moves to ``notification_dead_letters`` with its last error,
for a person or a replay to handle.

**Several nodes.** A node claims a notification (``locked_until``) before it sends it, with a compare-and-set
UPDATE, so two nodes never send the same attempt; a node that dies mid-attempt leaves a claim that expires.

Events: ``ticket.created``, ``ticket.assigned``, ``ticket.sla_warning``, ``ticket.sla_breached``,
``ticket.resolved``, ``booking.made``, ``booking.rescheduled``, ``booking.cancelled``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from ccserver.db.models import Notification, NotificationDeadLetter
from ccserver.metrics import REGISTRY
from ccserver.texts import T

__all__ = ["EVENTS", "Outbox", "WebhookDeliverer", "http_post", "sign"]

log = logging.getLogger("ccserver.notify")

EVENTS = ("ticket.created", "ticket.assigned", "ticket.sla_warning", "ticket.sla_breached", "ticket.resolved",
          "booking.made", "booking.rescheduled", "booking.cancelled")

DELIVERIES = REGISTRY.counter(
    "ccserver_notifications_total",
    "Webhook notification attempts by outcome: delivered, retry (failed, will be tried again), dead (failed for the "
    "last time: moved to notification_dead_letters)",
)

# post(url, body, headers, timeout) -> HTTP status; raises on a connection failure or timeout
Post = Callable[[str, bytes, dict[str, str], float], Awaitable[int]]


class Outbox:
    """Queues notifications inside the caller's transaction (blocking, with its session). Disabled (no webhook
    URL): nothing is written."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def enqueue(self, session: Session, event: str, data: dict[str, Any], now: datetime) -> None:
        if not self.enabled:
            return
        if event not in EVENTS:
            raise ValueError(T("unknown notification event {event}", event=repr(event)))
        session.execute(insert(Notification).values(event=event, payload=data, created_at=now, attempts=0,
                                                    next_attempt_at=now))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Ccserver-Signature value for a body sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that answers with a redirect has not taken the notification (urllib would re-send it as a GET)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http_post(max_workers: int = 2) -> Post:
    """POST with the standard library's HTTP client (``urllib.request``) on threads of its own, so a slow receiver
    never holds a SQL thread. Redirects are not followed; proxies come from the usual environment variables."""
    executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ccserver-webhook")
    opener = urllib.request.build_opener(_NoRedirects())

    def send(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        if not url.startswith(("http://", "https://")):  # checked by the config too: never file: or others
            raise ValueError(T("the webhook URL must be http:// or https://"))
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with opener.open(request, timeout=timeout) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as exc:  # an answer, just not a 2xx
            exc.read()
            return int(exc.code)
        except TimeoutError:
            raise TimeoutError from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise TimeoutError from None
            raise ConnectionError(str(exc.reason)) from None

    async def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        return await asyncio.get_running_loop().run_in_executor(executor, send, url, body, headers, timeout)

    return post


class WebhookDeliverer:
    """Sends the queued notifications (see the module docstring). ``clock``: a ``ccserver.clock.Clock``;
    ``run_blocking``: ``BlockingPool.run``; ``post``: :func:`http_post` in production."""

    def __init__(self, session_factory: Callable[[], Session], run_blocking: Callable[..., Awaitable[Any]],
                 url: str, secret: str, post: Post, clock: Any, *, retry_delays: Sequence[float],
                 timeout: float = 10.0, poll_seconds: float = 5.0, batch: int = 50) -> None:
        self._sessions = session_factory
        self._run = run_blocking
        self.url = url
        self._secret = secret
        self._post = post
        self._clock = clock
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.time(), UTC)

    def wake(self) -> None:
        """Something was queued: send it now rather than at the next poll."""
        self._wake.set()

    async def deliver_due(self) -> int:
        """Attempt every notification due now (each claimed first); returns how many were attempted."""
        now = self._now()
        ids = await self._run(self._due_ids, now)
        attempted = 0
        for notification_id in ids:
            claimed = await self._run(self._claim, notification_id, self._now())
            if claimed is None:
                continue  # another node has it, or it is gone
            attempted += 1
            event, payload, created_at, attempts = claimed
            body = json.dumps({"id": notification_id, "event": event, "created_at": created_at.isoformat(),
                               "data": payload}, ensure_ascii=False, separators=(",", ":"), default=str)
            raw = body.encode("utf-8")
            stamp = int(self._clock.time())
            headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "ccserver-webhook",
                       "X-Ccserver-Event": event, "X-Ccserver-Delivery": str(notification_id),
                       "X-Ccserver-Timestamp": str(stamp), "X-Ccserver-Signature": sign(self._secret, stamp, raw)}
            error: str | None = None
            try:
                status = await self._post(self.url, raw, headers, self.timeout)
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except TimeoutError:
                error = f"no answer within {self.timeout:g} s"
            except Exception as exc:  # noqa: BLE001 - any failure to deliver is retried
                error = f"{type(exc).__name__}: {exc}"[:255]
            outcome = await self._run(self._settle, notification_id, attempts + 1, error, self._now())
            DELIVERIES.inc(outcome=outcome)
            if outcome == "delivered":
                log.info("webhook: %s #%d delivered", event, notification_id)
            elif outcome == "dead":
                log.error("webhook: %s #%d failed %d times (%s); moved to notification_dead_letters", event,
                          notification_id, attempts + 1, error)
            else:
                log.warning("webhook: %s #%d attempt %d failed (%s); trying again later", event, notification_id,
                            attempts + 1, error)
        return attempted

    async def run(self) -> None:
        """Deliver what is due, then wait for a wake-up or ``poll_seconds``, until cancelled."""
        while True:
            self._wake.clear()
            try:
                await self.deliver_due()
            except Exception as exc:  # noqa: BLE001 - the database may be briefly away: try again later
                log.warning("webhook: could not read the outbox (%s)", exc)
            sleeper = asyncio.ensure_future(self._clock.sleep(self.poll_seconds))
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                woken.cancel()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self.run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    # -- SQL (blocking, worker thread) ---------------------------------------------------------------------------
    def _due_ids(self, now: datetime) -> list[int]:
        with self._sessions() as session:
            return [int(i) for i in session.scalars(
                select(Notification.id)
                .where(Notification.next_attempt_at <= now,
                       or_(Notification.locked_until.is_(None), Notification.locked_until < now))
                .order_by(Notification.id).limit(self.batch))]

    def _claim(self, notification_id: int, now: datetime) -> tuple[str, Any, datetime, int] | None:
        hold = now + timedelta(seconds=self.timeout + 30)
        with self._sessions.begin() as session:  # type: ignore[attr-defined]
            claimed = session.execute(
                update(Notification)
                .where(Notification.id == notification_id, Notification.next_attempt_at <= now,
                       or_(Notification.locked_until.is_(None), Notification.locked_until < now))
                .values(locked_until=hold)
                .execution_options(synchronize_session=False)
            ).rowcount
            if claimed != 1:
                return None
            row = session.execute(select(Notification.event, Notification.payload, Notification.created_at,
                                         Notification.attempts).where(Notification.id == notification_id)).one()
            return row.event, row.payload, row.created_at, int(row.attempts)

    def _settle(self, notification_id: int, attempts: int, error: str | None, now: datetime) -> str:
        with self._sessions.begin() as session:  # type: ignore[attr-defined]
            if error is None:
                session.execute(delete(Notification).where(Notification.id == notification_id))
                return "delivered"
            if attempts > len(self.retry_delays):
                row = session.get(Notification, notification_id)
                if row is not None:
                    session.add(NotificationDeadLetter(notification_id=row.id, event=row.event, payload=row.payload,
                                                       created_at=row.created_at, failed_at=now, attempts=attempts,
                                                       last_error=error[:255]))
                    session.delete(row)
                return "dead"
            session.execute(
                update(Notification).where(Notification.id == notification_id)
                .values(attempts=attempts, last_error=error[:255], locked_until=None,
                        next_attempt_at=now + timedelta(seconds=self.retry_delays[attempts - 1]))
                .execution_options(synchronize_session=False))
            return "retry"
