"""Token signing, CSRF binding and password hashing, without HTTP (login budgets: test_login_limits.py)."""

from __future__ import annotations

import pytest

from ccserver.auth import AuthError, Forbidden, TokenSigner
from ccserver.passwords import hash_password, verify_password


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_round_trip_and_expiry():
    clock = FakeClock()
    signer = TokenSigner(b"0123456789abcdef0123", 60, clock=clock)
    token, principal = signer.issue(7, "agent8007", "agent")
    assert signer.verify(token) == principal
    clock.now += 61
    with pytest.raises(AuthError, match="expired"):
        signer.verify(token)


def test_token_from_another_key_is_rejected():
    token, _ = TokenSigner(b"A" * 32, 60).issue(1, "a", "admin")
    with pytest.raises(AuthError):
        TokenSigner(b"B" * 32, 60).verify(token)


def test_short_secret_refused():
    with pytest.raises(ValueError):
        TokenSigner(b"short", 60)


def test_csrf_is_bound_to_the_session():
    signer = TokenSigner(b"0123456789abcdef0123", 60)
    assert signer.check_csrf("s1", signer.csrf_token("s1"))
    assert not signer.check_csrf("s2", signer.csrf_token("s1"))
    assert not signer.check_csrf("s1", None) and not signer.check_csrf("s1", "")


def test_roles():
    _, agent = TokenSigner(b"0123456789abcdef0123", 60).issue(1, "a", "agent")
    agent.require("agent", "supervisor")
    with pytest.raises(Forbidden):
        agent.require("supervisor")
    _, admin = TokenSigner(b"0123456789abcdef0123", 60).issue(1, "a", "admin")
    admin.require("supervisor")


def test_password_hashing():
    stored = hash_password("s3cret", n=2**10)
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert verify_password("s3cret", stored)
    assert not verify_password("s3cret ", stored)
    assert hash_password("s3cret", n=2**10) != stored  # salted
    for garbage in ("", "plain", "scrypt$x$y$z$00$00", "md5$abc"):
        assert not verify_password("s3cret", garbage)
