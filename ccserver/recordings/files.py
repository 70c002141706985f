"""The recordings folder as ccserver reads it: a name from the database never leads outside it, and HTTP
``Range`` requests are answered like a media server (one range; 206 with ``Content-Range``, 416 when it cannot be
satisfied).

A stored name is refused (None) when it is absolute, has a ``..`` or empty segment, a backslash or a control
character, or resolves (symlinks followed) outside the folder.
"""

from __future__ import annotations

import re
from pathlib import Path

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CONTENT_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".gsm": "audio/x-gsm"}


class RangeNotSatisfiable(ValueError):
    """A syntactically valid range outside the file (or more than one range): 416."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte positions (inclusive) for a ``Range`` header, None for the whole file.

    A header that is not a byte range at all is ignored (RFC 9110: the whole file); ``bytes=500-`` and the suffix
    form ``bytes=-500`` are understood; several ranges or a range past the end raise :class:`RangeNotSatisfiable`.
    """
    if header is None:
        return None
    text = header.strip()
    if not text.lower().startswith("bytes="):
        return None
    if "," in text:
        raise RangeNotSatisfiable("one range at a time")
    m = _RANGE.match("bytes=" + text[6:].strip())
    if m is None or (m.group(1) == "" and m.group(2) == ""):
        raise RangeNotSatisfiable(f"bad range {text[:40]!r}")
    first_s, last_s = m.groups()
    if first_s == "":  # suffix: the last N bytes
        n = int(last_s)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable("empty suffix range")
        return max(0, size - n), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if first >= size or last < first:
        raise RangeNotSatisfiable(f"range {first}-{last_s} outside a file of {size} bytes")
    return first, min(last, size - 1)


class RecordingFiles:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def resolve(self, name: str | None) -> Path | None:
        """The file for a stored name, or None when the name is unsafe or leaves the folder."""
        if not name or len(name) > 255 or "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
            return None
        parts = name.split("/")
        if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            return None
        root = self.folder.resolve()
        path = (root / name).resolve()
        if root != path and root not in path.parents:
            return None  # a symlink inside the folder pointing out of it
        return path

    @staticmethod
    def content_type(path: Path) -> str:
        return CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
