"""Load the recorded FastAGI sessions (``agi-*.jsonl`` and ``agi-load/*.jsonl``).

Each file is one session seen from the FastAGI server: the first ``recv`` is the ``agi_*`` block, then
every ``send`` (a command the recording server wrote) is followed by one or more ``recv`` chunks (its
answer; ``HANGUP`` then ``511`` for a dead channel, or a multi-line ``520-`` block).
The folder is ``tests/data/asterisk`` in the repository (recorded from a real Asterisk; see its README), or
``$TRANSCRIPTS_DIR``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def transcripts_dir() -> Path:
    override = os.environ.get("TRANSCRIPTS_DIR")
    return Path(override) if override else REPO_ROOT / "tests" / "data" / "asterisk"


def agi_transcript_paths(include_load: bool = True) -> list[Path]:
    base = transcripts_dir()
    paths = sorted(base.glob("agi-*.jsonl"))
    if include_load:
        paths += sorted((base / "agi-load").glob("agi-*.jsonl"))
    return paths


@dataclass(frozen=True)
class AGIExchange:
    command: str  # the line the server wrote, without its newline
    answer: tuple[str, ...]  # Asterisk's answer lines, without newlines

    @property
    def verb(self) -> str:
        return command_verb(self.command)


@dataclass
class AGITranscript:
    name: str
    env_block: bytes  # exactly as recorded, blank line included
    env: dict[str, str]  # agi_* keys as recorded (prefix kept), in order
    exchanges: list[AGIExchange] = field(default_factory=list)

    @property
    def commands(self) -> list[str]:
        return [e.command for e in self.exchanges]


# Longest first: the verb of a command line is the longest known prefix of its words.
KNOWN_VERBS = sorted(
    [
        "ANSWER",
        "ASYNCAGI BREAK",
        "CHANNEL STATUS",
        "CONTROL STREAM FILE",
        "DATABASE DEL",
        "DATABASE DELTREE",
        "DATABASE GET",
        "DATABASE PUT",
        "EXEC",
        "GET DATA",
        "GET FULL VARIABLE",
        "GET OPTION",
        "GET VARIABLE",
        "HANGUP",
        "NOOP",
        "RECEIVE CHAR",
        "RECEIVE TEXT",
        "RECORD FILE",
        "SAY ALPHA",
        "SAY DATE",
        "SAY DATETIME",
        "SAY DIGITS",
        "SAY NUMBER",
        "SAY PHONETIC",
        "SAY TIME",
        "SEND IMAGE",
        "SEND TEXT",
        "SET AUTOHANGUP",
        "SET CALLERID",
        "SET CONTEXT",
        "SET EXTENSION",
        "SET MUSIC",
        "SET PRIORITY",
        "SET VARIABLE",
        "STREAM FILE",
        "TDD MODE",
        "VERBOSE",
        "WAIT FOR DIGIT",
    ],
    key=lambda v: -len(v.split()),
)


def command_verb(line: str) -> str:
    """``SET VARIABLE CC_QUEUE "x"`` -> ``SET VARIABLE``; an unknown command -> its first word."""
    words = line.split()
    for verb in KNOWN_VERBS:
        n = len(verb.split())
        if " ".join(words[:n]) == verb:
            return verb
    return words[0] if words else ""


def load_agi(name: str | os.PathLike[str]) -> AGITranscript:
    """A transcript by path, or by file name (``agi-02-13912345678`` / ``agi-load/agi-01-18800000000``)."""
    path = Path(name)
    if not path.exists():
        base = str(name) if str(name).endswith(".jsonl") else f"{name}.jsonl"
        path = transcripts_dir() / base
    entries = [json.loads(text) for text in path.read_text(encoding="utf-8").splitlines() if text.strip()]
    if not entries or entries[0]["dir"] != "recv":
        raise ValueError(f"{path}: the first entry must be the agi_* block")
    env_block = entries[0]["data"].encode("utf-8")
    env: dict[str, str] = {}
    for text in entries[0]["data"].split("\n"):
        key, sep, value = text.partition(": ")
        if not sep and text.endswith(":"):
            key, sep, value = text[:-1], ":", ""
        if sep:
            env[key] = value
    exchanges: list[AGIExchange] = []
    command: str | None = None
    answer: list[str] = []
    for entry in entries[1:]:
        if entry["dir"] == "send":
            if command is not None:
                exchanges.append(AGIExchange(command, tuple(answer)))
            command, answer = entry["data"].rstrip("\n"), []
        else:
            answer.extend(entry["data"].rstrip("\n").split("\n"))
    if command is not None:
        exchanges.append(AGIExchange(command, tuple(answer)))
    return AGITranscript(path.stem, env_block, env, exchanges)
