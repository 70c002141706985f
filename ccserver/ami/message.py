"""AMI messages: an ordered multi-dict of headers, and a parser for CRLF-framed AMI byte streams.

Asterisk repeats some headers (``ChanVariable``, ``Variable``, ``Output``), so a message keeps every
``(name, value)`` pair in order; ``msg["Name"]`` / ``msg.get("Name")`` return the first value and
``msg.getall("Name")`` all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import overload

__all__ = ["AMIMessage", "BANNER_PREFIX", "parse_block", "parse_stream", "decode_block"]

BANNER_PREFIX = "Asterisk Call Manager/"
_BANNER_PREFIX_B = BANNER_PREFIX.encode()
_TERMINATOR = b"\r\n\r\n"


class AMIMessage:
    """One AMI response or event.

    Lookup is exact first (the way Asterisk spells headers) and falls back to a case-insensitive map
    that is built lazily, so ``msg.get("uniqueid")`` works without slowing down the common path.
    ``server`` is set by the client/manager to the name of the Asterisk server the message came from.
    """

    __slots__ = ("_items", "_first", "_lower", "server", "arrival", "malformed")

    def __init__(
        self,
        items: Iterable[tuple[str, str]] | dict[str, str] = (),
        *,
        server: str | None = None,
        arrival: float | None = None,
    ) -> None:
        if isinstance(items, dict):
            items = items.items()
        self._items: list[tuple[str, str]] = [(str(k), str(v)) for k, v in items]
        first: dict[str, str] = {}
        for k, v in self._items:
            if k not in first:
                first[k] = v
        self._first = first
        self._lower: dict[str, str] | None = None
        self.server = server
        self.arrival = arrival
        self.malformed = 0  # header lines without a colon that the parser skipped

    @classmethod
    def _from_parsed(cls, items: list[tuple[str, str]], first: dict[str, str], malformed: int) -> AMIMessage:
        # Parser fast path: skip the copy/normalisation done by __init__.
        msg = cls.__new__(cls)
        msg._items = items
        msg._first = first
        msg._lower = None
        msg.server = None
        msg.arrival = None
        msg.malformed = malformed
        return msg

    # -- lookup -------------------------------------------------------------------------------------
    def _lower_map(self) -> dict[str, str]:
        lower = self._lower
        if lower is None:
            lower = {}
            for k, v in self._items:
                lower.setdefault(k.lower(), v)
            self._lower = lower
        return lower

    def __getitem__(self, header: str) -> str:
        try:
            return self._first[header]
        except KeyError:
            value = self._lower_map().get(header.lower())
            if value is None:
                raise KeyError(header) from None
            return value

    @overload
    def get(self, header: str, default: None = None) -> str | None: ...
    @overload
    def get(self, header: str, default: str) -> str: ...
    @overload
    def get(self, header: str, default: str | None) -> str | None: ...
    def get(self, header: str, default: str | None = None) -> str | None:
        value = self._first.get(header)
        if value is None:
            value = self._lower_map().get(header.lower(), default)
        return value

    def getall(self, header: str) -> list[str]:
        """Every value of a (possibly repeated) header, in wire order; [] if absent."""
        values = [v for k, v in self._items if k == header]
        if not values and header not in self._first:
            low = header.lower()
            values = [v for k, v in self._items if k.lower() == low]
        return values

    def __contains__(self, header: object) -> bool:
        if not isinstance(header, str):
            return False
        return header in self._first or header.lower() in self._lower_map()

    def items(self) -> list[tuple[str, str]]:
        """All (name, value) pairs in wire order, repeats included."""
        return list(self._items)

    def keys(self) -> list[str]:
        return list(self._first)

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._items)

    def to_dict(self) -> dict[str, str | list[str]]:
        """A plain dict: single headers as str, repeated headers as list (JSON-friendly)."""
        out: dict[str, str | list[str]] = {}
        for k, v in self._items:
            prev = out.get(k)
            if prev is None:
                out[k] = v
            elif isinstance(prev, list):
                prev.append(v)
            else:
                out[k] = [prev, v]
        return out

    # -- well-known headers --------------------------------------------------------------------------
    @property
    def event(self) -> str | None:
        return self._first.get("Event")

    @property
    def response(self) -> str | None:
        """The ``Response`` header. Note: the OriginateResponse *event* has one too; see ``is_event``."""
        return self._first.get("Response")

    @property
    def is_event(self) -> bool:
        """True when the message starts with ``Event:`` (Asterisk always puts it first)."""
        return bool(self._items) and self._items[0][0] == "Event"

    @property
    def is_response(self) -> bool:
        return bool(self._items) and self._items[0][0] == "Response"

    @property
    def action_id(self) -> str | None:
        value = self._first.get("ActionID")
        if value is None and "ActionID" not in self._first:
            value = self._lower_map().get("actionid")
        return value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AMIMessage):
            return self._items == other._items
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable tag fields; not hashable

    def __repr__(self) -> str:
        head = self.event and f"Event={self.event}" or f"Response={self.response}"
        tag = f" server={self.server}" if self.server else ""
        return f"<AMIMessage {head} {len(self._items)} headers{tag}>"


def decode_block(block: bytes) -> tuple[str, bool]:
    """Bytes -> text. Returns (text, clean): non-UTF-8 input is decoded with U+FFFD replacements."""
    try:
        return block.decode("utf-8"), True
    except UnicodeDecodeError:
        return block.decode("utf-8", "replace"), False


def parse_block(text: str) -> AMIMessage:
    """Parse one message body (headers separated by CRLF, no terminating blank line)."""
    items: list[tuple[str, str]] = []
    first: dict[str, str] = {}
    malformed = 0
    for line in text.split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            # "Key:" with an empty value and no space, or a line with no colon at all.
            key, sep, value = line.partition(":")
            if not sep:
                if line:
                    malformed += 1
                continue
        items.append((key, value))
        if key not in first:
            first[key] = value
    return AMIMessage._from_parsed(items, first, malformed)


def _strip_banner(block: bytes) -> bytes:
    # The banner is a single CRLF-terminated line glued to the first message of a session.
    if block.startswith(_BANNER_PREFIX_B):
        nl = block.find(b"\r\n")
        return b"" if nl < 0 else block[nl + 2:]
    return block


def parse_stream(data: bytes) -> list[AMIMessage]:
    """Parse a whole AMI byte stream (one or more sessions) into messages.

    Messages end with CRLF CRLF; banner lines (``Asterisk Call Manager/x.y.z``), wherever a session
    starts, are skipped. An incomplete trailing message (no terminator yet) is not returned.
    """
    out: list[AMIMessage] = []
    blocks = data.split(_TERMINATOR)
    blocks.pop()  # whatever follows the last terminator is incomplete (or empty)
    for block in blocks:
        block = _strip_banner(block.lstrip(b"\r\n"))
        if not block:
            continue
        text, _clean = decode_block(block)
        msg = parse_block(text)
        if len(msg):
            out.append(msg)
    return out
