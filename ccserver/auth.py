"""Auth primitives: signed expiring tokens, CSRF tokens, roles.

Tokens are stateless: ``v1.<payload>.<signature>`` with an HMAC-SHA256 over the payload using the
server's secret key. API clients send them as ``Authorization: Bearer``; browsers carry the same kind
of token in an HttpOnly, SameSite=Strict cookie, and then every unsafe request also needs a CSRF token
derived from the session id (a cross-site form cannot read it). A valid signature is not the end of it: every
request is also checked against revocations and the user's current state (``ccserver.web.sessions``); login
budgets are ``ccserver.login_limits``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from ccserver.texts import RoleName, T

ROLES = ("agent", "supervisor", "department", "campaign_manager", "admin")


class AuthError(Exception):
    """Missing, malformed, forged or expired credentials (HTTP 401)."""


class Forbidden(Exception):
    """Valid credentials, but the role may not do this (HTTP 403)."""


class PasswordChangeRequired(Forbidden):
    """The user must choose a new password first (HTTP 403 with reason ``password_change_required``; pages
    redirect to /password)."""


class AuthUnavailable(Exception):
    """The credentials could not be checked now: the user store or the revocations are down (HTTP 503)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    role: str
    expires_at: float
    session_id: str  # random per login; the CSRF token is bound to it
    # The user's current state (set per request by the session check, never in the token): only the password
    # change, /api/me and logout are allowed until a new password is chosen.
    must_change_password: bool = False

    def require(self, *roles: str) -> None:
        """Admin may do everything; otherwise the role must be one of ``roles``."""
        if self.role != "admin" and self.role not in roles:
            raise Forbidden(T("role {role} may not do this", role=RoleName(self.role)))


class TokenSigner:
    def __init__(self, secret: bytes, lifetime_seconds: float, clock=time.time):
        if len(secret) < 16:
            raise ValueError("secret key too short")
        self._secret = secret
        self.lifetime = lifetime_seconds
        self._clock = clock

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, user_id: int, username: str, role: str) -> tuple[str, Principal]:
        principal = Principal(user_id, username, role, self._clock() + self.lifetime, secrets.token_hex(16))
        body = {"u": user_id, "n": username, "r": role, "e": principal.expires_at, "s": principal.session_id}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"v1.{payload}.{self._sign(payload)}", principal

    def verify(self, token: str) -> Principal:
        if not token.isascii():  # hmac.compare_digest refuses non-ASCII str (TypeError): never a valid token
            raise AuthError(T("malformed token"))
        try:
            version, payload, signature = token.split(".")
        except ValueError:
            raise AuthError(T("malformed token")) from None
        if version != "v1" or not hmac.compare_digest(signature, self._sign(payload)):
            raise AuthError(T("invalid token"))
        try:
            body = json.loads(_unb64(payload))
            principal = Principal(int(body["u"]), str(body["n"]), str(body["r"]), float(body["e"]), str(body["s"]))
        except (ValueError, KeyError, TypeError):
            raise AuthError(T("malformed token")) from None
        if principal.expires_at <= self._clock():
            raise AuthError(T("token expired"))
        if principal.role not in ROLES:
            raise AuthError(T("invalid token"))
        return principal

    def csrf_token(self, binding: str) -> str:
        """A CSRF token bound to a session id (or a pre-login nonce)."""
        return _b64(hmac.new(self._secret, b"csrf:" + binding.encode(), hashlib.sha256).digest())

    def check_csrf(self, binding: str, presented: str | None) -> bool:
        # Compared as bytes: a presented value may be any text (compare_digest raises on non-ASCII str).
        expected = self.csrf_token(binding).encode("ascii")
        return bool(presented) and hmac.compare_digest(expected, (presented or "").encode("utf-8", "replace"))
