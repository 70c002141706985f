"""`ccserver prompts build`: every prompt of the catalogue rendered by espeak-ng and sox into sounds/zh and
sounds/en as Asterisk plays them (8 kHz, mono, 16-bit WAV: checked with `wave`), with sensible durations (soxi);
existing sound files (studio recordings) kept."""

from __future__ import annotations

import os
import subprocess
import wave
from pathlib import Path

import pytest

from ccserver.asterisk.prompts import missing_prompts, played_prompts
from ccserver.callrouting import RoutingSettings
from ccserver.cli import main
from ivr.catalogue import PROMPTS, catalogue
from ivr.render import RenderError, build_prompts
from ivr.settings import IVRSettings


def duration(path: Path) -> float:
    return float(subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True).stdout)


@pytest.fixture(scope="module")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sounds")
    report = build_prompts(folder, catalogue(models=["XC60", "Accord 雅阁"]))
    assert report.failed == [] and report.kept == 0
    return folder


def test_every_prompt_in_both_languages_as_asterisk_plays_it(sounds: Path) -> None:
    names = set(PROMPTS) | {"cc-model-xc60", "cc-model-accord"}
    for language in ("zh", "en"):
        files = {p.stem for p in (sounds / language).glob("*.wav")}
        assert files == names, language
        for path in (sounds / language).glob("*.wav"):
            with wave.open(str(path)) as w:
                assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getcomptype()) == \
                    (8000, 1, 2, "NONE"), path
                assert w.getnframes() > 0
    # everything ccserver plays is there: the start-up check finds nothing missing
    played = played_prompts(RoutingSettings(), IVRSettings.from_dict())
    assert missing_prompts(sounds, played, ("zh", "en")) == []


def test_durations_fit_the_text(sounds: Path) -> None:
    for language in ("zh", "en"):
        menu = duration(sounds / language / "cc-ivr-main.wav")
        piece = duration(sounds / language / "cc-digit-7.wav")
        assert 5.0 < menu < 30.0, (language, menu)  # five choices read out
        assert 0.1 < piece < 2.0, (language, piece)
        assert 0.1 < duration(sounds / language / "cc-model-xc60.wav") < 3.0


def test_the_language_hint_is_spoken_in_the_other_language(sounds: Path) -> None:
    # zh/cc-ivr-language says "For English, press 9." with the English voice, and en/ the Mandarin hint
    assert PROMPTS["cc-ivr-language"].voice("zh") == "en" and PROMPTS["cc-ivr-language"].voice("en") == "zh"
    assert duration(sounds / "zh" / "cc-ivr-language.wav") > 0.5
    assert duration(sounds / "en" / "cc-ivr-language.wav") > 0.5


def test_existing_files_are_kept_and_only_missing_ones_rendered(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "cc-goodbye.gsm").write_bytes(b"a studio recording")
    report = build_prompts(tmp_path, PROMPTS, only=["cc-goodbye", "cc-hour-2"])
    assert sorted(report.rendered) == ["en/cc-hour-2", "zh/cc-goodbye", "zh/cc-hour-2"] and report.kept == 1
    assert not (tmp_path / "en" / "cc-goodbye.wav").exists()
    again = build_prompts(tmp_path, PROMPTS, only=["cc-goodbye", "cc-hour-2"])
    assert again.rendered == [] and again.kept == 4
    assert not list(tmp_path.rglob(".*.part"))  # written whole


def test_unknown_prompt_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="not in the prompt catalogue: cc-nope"):
        build_prompts(tmp_path, PROMPTS, only=["cc-nope"])


def test_command(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CCSERVER_"):
            monkeypatch.delenv(name)
    config = tmp_path / "c.toml"
    config.write_text('[ivr.prompts.cc-ivr-roadside]\nzh = "道路救援请按1。"\nen = "For roadside help, press 1."\n',
                      encoding="utf-8")
    code = main(["prompts", "build", "--config", str(config), "--data-dir", str(tmp_path / "var"), "--sound-dir",
                 str(tmp_path / "snd"), "--only", "cc-ivr-roadside", "--only", "cc-survey"])
    out = capsys.readouterr()
    assert code == 0 and "4 rendered, 0 already there" in out.out
    assert "no vehicle model prompts" in out.err  # no database yet: the rest is rendered all the same
    with wave.open(str(tmp_path / "snd" / "zh" / "cc-ivr-roadside.wav")) as w:
        assert w.getframerate() == 8000
    assert main(["prompts", "build", "--data-dir", str(tmp_path / "var")]) == 2
    assert "no sound folder" in capsys.readouterr().err
