"""Is a browser's state-changing request from one of our own pages? (the Origin check)

A cookie is sent with every request to this server whatever page made it, so a state-changing request that
relies on ambient credentials must come from our own origin. The CSRF token already proves that; the
``Origin`` header (or, when a browser left it out, ``Referer``) is a second, independent check. Neither header
present (a CLI with a cookie jar, an old browser) is not refused here: the CSRF token still is required.

Our own origin is the scheme and host the client used: ``Host`` and the connection's scheme — or, when the TCP
peer is in ``http.trusted_proxies``, what that proxy forwarded (``X-Forwarded-Proto``, ``X-Forwarded-Host``) —
plus every origin in ``http.allowed_origins`` (another name the site is reached under). Pure: plain strings in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def normalize_origin(text: str) -> str | None:
    """``HTTPS://CC.example.com:443/path`` -> ``https://cc.example.com``; None for what is no http(s) origin
    (``null``, ``file://``, garbage, control characters)."""
    text = text.strip()
    if not text or not text.isprintable():
        return None
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a bad port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    if port is not None and str(port) != _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def _first(value: str | None) -> str | None:
    """The first entry of a possibly comma-joined forwarded header (the hop nearest the client)."""
    if not value:
        return None
    first = value.split(",")[0].strip()
    return first or None


@dataclass(frozen=True)
class RequestView:
    """What the check needs of a request."""

    origin: str | None  # the Origin header
    referer: str | None  # the Referer header
    host: str | None  # the Host header
    secure: bool  # the connection to us is TLS
    via_trusted_proxy: bool  # the TCP peer is in http.trusted_proxies
    forwarded_proto: str | None = None  # X-Forwarded-Proto
    forwarded_host: str | None = None  # X-Forwarded-Host


class OriginPolicy:
    def __init__(self, allowed_origins: Iterable[str] = ()):
        self.allowed = frozenset(o for o in (normalize_origin(a) for a in allowed_origins) if o)

    def own_origins(self, view: RequestView) -> set[str]:
        scheme = "https" if view.secure else "http"
        hosts: list[str | None] = [view.host]
        if view.via_trusted_proxy:
            proto = (_first(view.forwarded_proto) or "").lower()
            if proto in _DEFAULT_PORTS:
                scheme = proto
            hosts.append(_first(view.forwarded_host))
        own = {o for h in hosts if h and (o := normalize_origin(f"{scheme}://{h}")) is not None}
        return own | self.allowed

    def claimed(self, view: RequestView) -> str | None:
        """The origin the browser claims (Origin, else Referer's); ``""`` when it names none we can read
        (``Origin: null`` from a sandboxed frame or a redirect across sites); None when neither header is there."""
        raw = view.origin if view.origin is not None else view.referer
        if raw is None:
            return None
        return normalize_origin(raw) or ""

    def allows(self, view: RequestView) -> bool:
        claimed = self.claimed(view)
        return claimed is None or (bool(claimed) and claimed in self.own_origins(view))


def describe(view: RequestView, limit: int = 200) -> str:
    """The claimed origin as written, cut short, for the audit log (an origin is no personal data; a Referer's
    path may be, so only its origin part is kept)."""
    if view.origin is not None:
        text = view.origin
    elif view.referer is not None:
        text = normalize_origin(view.referer) or "(unreadable referer)"
    else:
        text = ""
    return "".join(ch if ch.isprintable() else "?" for ch in text[:limit])


def header_values(values: Sequence[bytes] | None) -> str | None:
    return ", ".join(v.decode("latin-1") for v in values) if values else None

