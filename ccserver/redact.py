"""Secrets out of anything printed or logged: the one place URL passwords are masked.

Database and Redis URLs carry passwords in the user-info part (``scheme://user:password@host``) or as a query
parameter (``?password=…``). ``mask_url`` replaces both with ``***`` and errs on the side of hiding: everything
from the user-info ``:`` to the *last* ``@`` is masked, so a password holding ``@``, ``:`` or ``/`` never shows
in part.
"""

from __future__ import annotations

import re

MASK = "***"

_USERINFO_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@?#]*):.*@")
_QUERY_PASSWORD = re.compile(r"(?P<name>[?&](?:password|passwd|pwd)=)[^&#]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``postgresql://cc:hunter2@db/cc`` -> ``postgresql://cc:***@db/cc``; URLs without a password unchanged."""
    masked = _USERINFO_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", url, count=1)
    return _QUERY_PASSWORD.sub(lambda m: m["name"] + MASK, masked)
