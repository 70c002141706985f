"""Per-agent frame numbering and the replay buffer (pure: no sockets, no Redis).

Every frame sent to an agent's socket except ``hello`` is numbered: ``seq`` 1, 2, 3 … per agent (per user), and
the last ``REPLAY_FRAMES`` are kept. A client that reconnects with ``last_seq=N`` gets the frames after N from
the buffer — each once — or, when frames after N are gone already (or N is not one we handed out), a fresh
``hello`` carrying the current ``seq``. Frames are encoded once (``{"seq":N,…}`` spliced in front of the body)
and the same text goes to every socket of that agent.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

REPLAY_FRAMES = 64


def encode_body(frame: dict[str, Any]) -> str:
    """A frame without its seq, as compact JSON (non-ASCII kept as is: names in Chinese stay readable)."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def with_seq(body: str, seq: int) -> str:
    """``{"type":…}`` → ``{"seq":7,"type":…}`` (the Redis script does the same splice)."""
    return f'{{"seq":{seq},{body[1:]}' if body != "{}" else f'{{"seq":{seq}}}'


def seq_of(text: str) -> int:
    """The seq of an encoded frame (it always comes first)."""
    head = text[7:text.index(",", 7)] if "," in text else text[7:-1]
    return int(head)


class AgentLog:
    """One agent's numbering and replay buffer."""

    __slots__ = ("seq", "frames")

    def __init__(self, size: int = REPLAY_FRAMES) -> None:
        self.seq = 0
        self.frames: deque[str] = deque(maxlen=size)

    def append(self, body: str) -> tuple[int, str]:
        self.seq += 1
        text = with_seq(body, self.seq)
        self.frames.append(text)
        return self.seq, text


def replay_after(frames: list[str] | deque[str], current: int, last_seq: int) -> list[str] | None:
    """The frames after ``last_seq``, in order, or None when they cannot all be given (too old, or a seq from
    another life of the log): the client gets a fresh hello instead."""
    if last_seq < 0 or last_seq > current:
        return None
    if last_seq == current:
        return []
    out = [f for f in frames if seq_of(f) > last_seq]
    if not out or seq_of(out[0]) != last_seq + 1:
        return None
    return out
