"""The start-up prompt check: every prompt the shipped dialplan, the settings and the IVR play, looked up in each
language's subfolder of prompts.sound_dir the way Asterisk looks a name up (any of its sound formats)."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ccserver.asterisk.conf import load_conf
from ccserver.asterisk.prompts import DIALPLAN_PROMPTS, QUEUE_PROMPTS, check_prompts, missing_prompts, played_prompts
from ccserver.callrouting import RoutingSettings
from ivr.catalogue import PROMPTS
from ivr.settings import IVRSettings
from tests.replay.agi_transcripts import REPO_ROOT
from tests.test_server_e2e import ROOT, ccserver, wait_for_banner

ALL_DEFAULT = {"cc-callback-thanks", "cc-callback-unavailable", "cc-goodbye", "cc-queue-callback-hint",
               "cc-campaign-abandon", "cc-after-hours", "cc-no-agents", "cc-callback-offer", "cc-survey",
               "cc-survey-invalid", "cc-survey-thanks"}


def test_dialplan_prompt_list_matches_the_shipped_dialplan() -> None:
    conf, problems = load_conf(REPO_ROOT / "config" / "asterisk" / "extensions_ccserver.conf")
    assert problems == [] and conf is not None
    literal = set()
    for section in conf.sections:
        for item in section.items:
            for app, args in re.findall(r"\b(Playback|Background|Read|ControlPlayback)\(([^)]*)\)", item.value):
                arg = args.split(",")[1 if app == "Read" else 0]
                literal |= {name for name in arg.split("&") if name and "$" not in name}
    assert literal == set(DIALPLAN_PROMPTS)
    queues, problems = load_conf(REPO_ROOT / "config" / "asterisk" / "queues_ccserver.conf")
    assert problems == [] and queues is not None
    announced = {i.value.split(";")[0].strip() for s in queues.sections for i in s.items
                 if i.name == "periodic-announce"}
    assert announced == set(QUEUE_PROMPTS)


def test_every_prompt_played_is_in_the_catalogue() -> None:
    """`ccserver prompts build` renders the catalogue: whatever ccserver plays must be in it."""
    played = played_prompts(RoutingSettings(), IVRSettings.from_dict())
    assert set(played) <= set(PROMPTS)
    assert played["cc-ivr-main"] == "ivr.menus.main" and played["cc-hour-9"] == "the IVR"


def test_played_prompts_follow_the_settings() -> None:
    assert set(played_prompts(RoutingSettings())) == ALL_DEFAULT
    custom = RoutingSettings(rules={"announce": {"after_hours": "custom/closed"}}, survey_prompt="rate-us")
    played = played_prompts(custom)
    assert played["custom/closed"] == "routing.announce.after_hours"
    assert played["rate-us"] == "callrouting.survey_prompt"
    assert "cc-after-hours" not in played and "cc-survey" not in played


def test_missing_prompts_per_language(tmp_path: Path) -> None:
    (tmp_path / "zh").mkdir()
    (tmp_path / "en").mkdir()
    (tmp_path / "zh" / "cc-survey.wav").write_bytes(b"x")
    (tmp_path / "en" / "cc-goodbye.gsm").write_bytes(b"x")
    assert missing_prompts(tmp_path, ["cc-survey", "cc-goodbye"], ("zh", "en")) == ["en/cc-survey", "zh/cc-goodbye"]


def test_missing_prompts_accepts_any_sound_format(tmp_path: Path) -> None:
    for name in ("cc-survey.gsm", "cc-survey-thanks.wav", "cc-no-agents.ulaw", "cc-callback-offer.alaw",
                 "cc-after-hours.sln", "vm-goodbye.g722", "cc-survey-invalid.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "custom").mkdir()
    (tmp_path / "custom" / "closed.gsm").write_bytes(b"x")
    (tmp_path / "cc-callback-thanks.gsm").mkdir()  # a folder is not a sound file
    names = ["cc-survey", "cc-survey-thanks", "cc-no-agents", "cc-callback-offer", "cc-after-hours", "vm-goodbye",
             "cc-survey-invalid", "custom/closed", "cc-callback-thanks", str(tmp_path / "custom" / "closed")]
    assert missing_prompts(tmp_path, names) == ["cc-survey-invalid", "cc-callback-thanks"]


def test_check_prompts_logs_one_warning_naming_each_missing_prompt(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    for language in ("zh", "en"):
        (tmp_path / language).mkdir()
        (tmp_path / language / "cc-survey.gsm").write_bytes(b"x")
    (tmp_path / "en" / "cc-after-hours.wav").write_bytes(b"x")
    with caplog.at_level(logging.WARNING, logger="ccserver.prompts"):
        missing = check_prompts(str(tmp_path), RoutingSettings())
    assert set(missing) == {f"{lang}/{name}" for lang in ("zh", "en") for name in ALL_DEFAULT - {"cc-survey"}} - {
        "en/cc-after-hours"}
    assert len(caplog.records) == 1
    text = caplog.records[0].getMessage()
    assert text.startswith(f"19 prompt(s) missing in {tmp_path}")
    assert "zh/cc-callback-thanks (the shipped dialplan)" in text
    assert "zh/cc-after-hours (routing.announce.after_hours)" in text and "en/cc-after-hours" not in text
    assert "en/cc-survey-thanks (callrouting.survey_thanks_prompt)" in text and "cc-survey " not in text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ccserver.prompts"):
        many = check_prompts(str(tmp_path), RoutingSettings(), IVRSettings.from_dict())
    assert len(many) > 400 and f"and {len(many) - 20} more" in caplog.records[0].getMessage()
    caplog.clear()
    assert check_prompts("", RoutingSettings()) == [] and caplog.records == []
    with caplog.at_level(logging.WARNING, logger="ccserver.prompts"):
        assert check_prompts(str(tmp_path / "nope"), RoutingSettings()) == []
    assert "is not a folder" in caplog.records[0].getMessage()


def test_ccserver_run_warns_at_start_up(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    for language in ("zh", "en"):
        (sounds / language).mkdir(parents=True)
        for name in set(PROMPTS) - {"cc-survey", "cc-after-hours"}:
            (sounds / language / f"{name}.gsm").write_bytes(b"x")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCSERVER_")}
    env.update({"CCSERVER_SERVER_DATA_DIR": str(tmp_path / "var"), "CCSERVER_HTTP_LISTEN": "127.0.0.1:0",
                "CCSERVER_AGI_LISTEN": "127.0.0.1:0", "CCSERVER_WS_LISTEN": "127.0.0.1:0",
                "CCSERVER_PROMPTS_SOUND_DIR": str(sounds), "PYTHONUNBUFFERED": "1"})
    assert ccserver(["db", "upgrade"], env).returncode == 0
    server = subprocess.Popen([sys.executable, "-m", "ccserver", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for_banner(server, time.monotonic() + 60)
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=20)
    warning = [line for line in err.splitlines() if "prompt(s) missing" in line]
    assert len(warning) == 1 and "WARNING" in warning[0]
    assert f"4 prompt(s) missing in {sounds}" in warning[0]
    assert "zh/cc-after-hours (routing.announce.after_hours)" in warning[0]
    assert "en/cc-survey (callrouting." in warning[0]
