"""Exceptions raised (or delivered through Deferreds) by the AMI client."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ccserver.ami.message import AMIMessage


class AMIError(Exception):
    """Asterisk answered ``Response: Error``; ``message`` is Asterisk's own ``Message:`` text."""

    def __init__(self, action: str, message: str, response: AMIMessage | None = None) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message
        self.response = response


class AMIAuthError(AMIError):
    """Login was refused (wrong user/secret, ACL, or a bad challenge key)."""


class AMITimeout(Exception):
    """No (complete) reply to an action within its timeout."""


class AMIConnectionLost(Exception):
    """The connection dropped (or was not up) before the action completed. Nothing is re-sent."""


class OriginateOutcomeUnknown(AMIConnectionLost):
    """An Originate may or may not have been placed: the connection dropped before its outcome arrived.

    The call is never re-sent automatically; reconcile it (CDRs, channel list, the dialer's records).
    """

    def __init__(self, action_id: str, detail: str = "") -> None:
        super().__init__(f"Originate {action_id}: outcome unknown{': ' + detail if detail else ''}")
        self.action_id = action_id
