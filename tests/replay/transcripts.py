"""Load the recorded Asterisk transcripts (JSON lines ``{"t", "dir", "data"}``).

The folder is ``tests/data/asterisk`` in the repository (recorded from a real Asterisk; see its README), or
``$TRANSCRIPTS_DIR``.
A transcript holds one or more sessions: ``<<eof>>`` (Asterisk closed) and ``<<client reconnects>>``
separate them; every session starts with Asterisk's banner line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ccserver.ami.message import AMIMessage, parse_stream

REPO_ROOT = Path(__file__).resolve().parents[2]
EOF_MARK = "<<eof>>"
RECONNECT_MARK = "<<client reconnects>>"


def transcripts_dir() -> Path:
    override = os.environ.get("TRANSCRIPTS_DIR")
    return Path(override) if override else REPO_ROOT / "tests" / "data" / "asterisk"


def transcript_path(name: str | os.PathLike[str]) -> Path:
    """A transcript by file name, with or without ``.jsonl``, or a path that already exists."""
    path = Path(name)
    if path.exists():
        return path
    base = str(name) if str(name).endswith(".jsonl") else f"{name}.jsonl"
    return transcripts_dir() / base


def ami_transcripts() -> list[Path]:
    return sorted(transcripts_dir().glob("ami-*.jsonl"))


@dataclass(frozen=True)
class Entry:
    t: float
    dir: str  # "recv" (Asterisk -> client) or "send" (client -> Asterisk)
    data: str

    @property
    def is_marker(self) -> bool:
        return self.data in (EOF_MARK, RECONNECT_MARK)


def load_entries(name: str | os.PathLike[str]) -> list[Entry]:
    entries = []
    with open(transcript_path(name), encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                entries.append(Entry(float(obj["t"]), obj["dir"], obj["data"]))
    return entries


def split_sessions(entries: list[Entry]) -> list[list[Entry]]:
    """Entries grouped per connection; markers are kept as the last entry of their session."""
    sessions: list[list[Entry]] = [[]]
    for entry in entries:
        if entry.data == RECONNECT_MARK:
            if sessions[-1]:
                sessions.append([])
            continue
        sessions[-1].append(entry)
    return [s for s in sessions if s]


def recv_sessions(name: str | os.PathLike[str]) -> list[bytes]:
    """The exact bytes Asterisk sent, one bytes object per connection (banner included)."""
    out = []
    for session in split_sessions(load_entries(name)):
        out.append(b"".join(e.data.encode("utf-8") for e in session if e.dir == "recv" and not e.is_marker))
    return out


def recv_bytes(name: str | os.PathLike[str]) -> bytes:
    """All recv bytes of all sessions concatenated (each session starts with its banner)."""
    return b"".join(recv_sessions(name))


def iter_transcript_messages(name: str | os.PathLike[str]) -> Iterator[AMIMessage]:
    """Every AMI message Asterisk sent in a transcript, in order, banners skipped."""
    for data in recv_sessions(name):
        yield from parse_stream(data)
