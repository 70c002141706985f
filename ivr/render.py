"""``ccserver prompts build``: render every missing prompt of the catalogue into Asterisk's sound folder.

Each text is spoken by Debian's ``espeak-ng`` (Mandarin voice ``cmn``, which reads Latin letters as English —
the letters of a plate — and English ``en``) and converted by ``sox`` to what Asterisk plays without transcoding
surprises: 8 kHz, mono, 16-bit signed PCM WAV (espeak-ng alone writes 22.05 kHz). Files go to
``<sound_dir>/zh/<name>.wav`` and ``<sound_dir>/en/<name>.wav``, written whole (a temporary file renamed), so
Asterisk never plays half a file.

Only *missing* prompts are rendered: a prompt that already has a sound file of any format Asterisk plays (a studio
recording, ``cc-ivr-main.gsm``) is left alone, so recordings replace rendered prompts by file name (delete the
rendered ``.wav`` when a recording in another format arrives).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ccserver.asterisk.prompts import missing_prompts
from ivr.catalogue import LANGUAGES, Prompt

__all__ = ["BuildReport", "RenderError", "build_prompts", "render_one", "tools_missing"]

log = logging.getLogger("ccserver.prompts")

VOICES = {"zh": "cmn", "en": "en"}
SPEED = {"zh": 150, "en": 155}  # words per minute: a little slower than espeak's 175, for a phone line
TOOLS = ("espeak-ng", "sox")


class RenderError(RuntimeError):
    pass


@dataclass
class BuildReport:
    rendered: list[str] = field(default_factory=list)  # "zh/cc-ivr-main"
    kept: int = 0  # already there (rendered before, or a recording)
    failed: list[tuple[str, str]] = field(default_factory=list)


def tools_missing() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def render_one(text: str, voice_language: str, target: Path) -> None:
    """Speak ``text`` with the voice of ``voice_language`` into ``target`` (8 kHz mono 16-bit WAV)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    speak = subprocess.Popen(["espeak-ng", "-v", VOICES[voice_language], "-s", str(SPEED[voice_language]),
                              "--stdout", text], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert speak.stdout is not None
    try:
        convert = subprocess.run(["sox", "-q", "-t", "wav", "-", "-t", "wav", "-r", "8000", "-c", "1", "-b", "16",
                                  "-e", "signed-integer", str(partial)], stdin=speak.stdout, capture_output=True,
                                 timeout=60)
    finally:
        speak.stdout.close()
        _, spoken_err = speak.communicate(timeout=60)
    if speak.returncode != 0 or convert.returncode != 0:
        partial.unlink(missing_ok=True)
        detail = (spoken_err or convert.stderr or b"").decode("utf-8", "replace").strip()[:200]
        raise RenderError(f"espeak-ng exited {speak.returncode}, sox {convert.returncode}: {detail}")
    os.replace(partial, target)


def build_prompts(sound_dir: str | Path, prompts: Mapping[str, Prompt], *, languages: Sequence[str] = LANGUAGES,
                  only: Iterable[str] = (), workers: int = 2,
                  progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Render the prompts missing in ``sound_dir``'s language folders (all of ``prompts``, or the names in
    ``only``). Raises RenderError when espeak-ng or sox is not installed; a prompt that fails is reported, the
    others are still rendered."""
    missing_tools = tools_missing()
    if missing_tools:
        raise RenderError(f"{' and '.join(missing_tools)} not installed (Debian: apt-get install espeak-ng sox)")
    wanted = list(only) or list(prompts)
    unknown = [name for name in wanted if name not in prompts]
    if unknown:
        raise RenderError(f"not in the prompt catalogue: {', '.join(unknown[:10])}")
    folder = Path(sound_dir)
    todo = missing_prompts(folder, wanted, languages)
    report = BuildReport(kept=len(wanted) * len(languages) - len(todo))

    def one(item: str) -> tuple[str, str | None]:
        language, name = item.split("/", 1)
        prompt = prompts[name]
        try:
            render_one(prompt.text(language), prompt.voice(language), folder / language / f"{name}.wav")
        except (RenderError, OSError, subprocess.SubprocessError) as exc:
            return item, str(exc)
        return item, None

    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for item, error in pool.map(one, todo):
            done += 1
            if error is None:
                report.rendered.append(item)
            else:
                report.failed.append((item, error))
                log.error("prompt %s not rendered: %s", item, error)
            if progress is not None:
                progress(done, len(todo))
    return report
