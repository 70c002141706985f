"""Classic AGI (`ccserver-agi`) over pipes: a real subprocess speaking stdin/stdout through pyst2, running the
same routing handler against a demo SQLite database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import RoutingDecision, SurveyResult
from ccserver.demo import generate
from tests.replay.agi_peer import agi_split, env_block
from tests.replay.agi_transcripts import REPO_ROOT, load_agi


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('classic') / 'demo.sqlite3'}"
    # Tiers are percentiles: a base needs 25 purchasing customers before its top 2 % (diamond) is anyone.
    generate(url, customers=60, seed=3, as_of=date(2026, 3, 16), agent_interface="PJSIP/{ext}")
    return url


def run_agi(url: str, tmp_path: Path, argv: list[str], env: dict[str, str], answers: dict[int, str] | None = None,
            extra_env: dict[str, str] | None = None) -> tuple[list[str], float, int]:
    """Play Asterisk: write the agi_* block, answer every command line; returns (commands, seconds to EOF, rc)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CCSERVER_")}
    environ.update(CCSERVER_DATABASE_URL=url, CCSERVER_SERVER_DATA_DIR=str(tmp_path), **(extra_env or {}))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "ccserver.asterisk.classic_agi", *argv], cwd=REPO_ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(env_block(env))
    proc.stdin.flush()
    commands: list[str] = []
    while True:
        line = proc.stdout.readline()
        if not line:
            break
        commands.append(line.decode().rstrip("\n"))
        reply = (answers or {}).get(len(commands) - 1, "200 result=1")
        proc.stdin.write(reply.encode() + b"\n")
        proc.stdin.flush()
    elapsed = time.monotonic() - started
    proc.stdin.close()
    rc = proc.wait(20)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert "Traceback" not in stderr, stderr
    return commands, elapsed, rc


def variables_of(commands: list[str]) -> dict[str, str]:
    msets = [c for c in commands if c.startswith("EXEC MSet")]
    assert len(msets) == 1, commands
    return dict(pair.split("=", 1) for pair in agi_split(msets[0])[2].split(","))


def test_classic_agi_routes_a_vip_and_records_the_decision(demo_url: str, tmp_path: Path) -> None:
    env: dict[str, Any] = dict(load_agi("agi-01-13800138000").env)
    env.update(agi_network="no", agi_request="ccserver-agi", agi_arg_1="incoming", agi_arg_2="")
    env.pop("agi_network_script")
    commands, _, rc = run_agi(demo_url, tmp_path, ["incoming", ""], env)
    assert rc == 0 and len(commands) == 1
    variables = variables_of(commands)
    assert variables["CC_TIER"] == "diamond" and variables["CC_QUEUE"] in ("vip", "")  # "" when closed now
    engine = make_engine(demo_url)
    with session_factory(engine)() as s:
        row = s.get(RoutingDecision, variables["CC_DECISION_ID"])
        assert row is not None and row.uniqueid == "1795416921.0" and row.tier == "diamond"
    engine.dispose()


def test_classic_agi_campaign_argument_and_unknown_caller(demo_url: str, tmp_path: Path) -> None:
    env = dict(load_agi("agi-06-4008001000").env)
    env.update(agi_callerid="13811112222", agi_arg_1="incoming", agi_arg_2="cmp-9")
    commands, _, rc = run_agi(demo_url, tmp_path, ["incoming", "cmp-9"], env)
    variables = variables_of(commands)
    assert rc == 0 and variables["CC_CUSTOMER_ID"] == "" and variables["CC_TIER"] == "prospect"


def test_classic_agi_own_variables_are_not_taken_for_settings(demo_url: str, tmp_path: Path) -> None:
    config = tmp_path / "ccserver.toml"
    config.write_text('[callrouting]\nunknown_did_queue = "fromfile"\n', encoding="utf-8")
    env = dict(load_agi("agi-06-4008001000").env)
    env.update(agi_callerid="13811112222", agi_arg_1="incoming", agi_arg_2="", agi_extension="99999999")
    commands, _, rc = run_agi(demo_url, tmp_path, ["incoming", ""], env,
                              extra_env={"CCSERVER_AGI_LOG_LEVEL": "INFO", "CCSERVER_CONFIG": str(config)})
    variables = variables_of(commands)  # routed with the file's settings, not the "cannot start" defaults
    assert rc == 0 and variables["CC_TIER"] == "prospect" and variables["CC_QUEUE"] == "fromfile", variables


def test_classic_agi_survey_and_hangup(demo_url: str, tmp_path: Path) -> None:
    env = dict(load_agi("agi-02-13912345678").env)
    commands, _, rc = run_agi(demo_url, tmp_path, ["survey", "dec123"], env, answers={0: "200 result=3"})
    assert rc == 0
    assert commands == ["GET DATA cc-survey 5000 1", 'STREAM FILE cc-survey-thanks ""', "HANGUP"]
    engine = make_engine(demo_url)
    with session_factory(engine)() as s:
        assert [(r.score, r.decision_id) for r in s.scalars(select(SurveyResult))] == [(3, "dec123")]
    engine.dispose()
    commands, _, rc = run_agi(demo_url, tmp_path, ["survey", "dec124"], env, answers={0: "200 result=-1"})
    assert rc == 0 and commands == ["GET DATA cc-survey 5000 1"]


def test_classic_agi_without_database_still_routes(tmp_path: Path) -> None:
    env = dict(load_agi("agi-01-13800138000").env)
    url = f"sqlite:///{tmp_path / 'missing' / 'nothing.sqlite3'}"
    commands, elapsed, rc = run_agi(url, tmp_path, ["incoming"], env)
    variables = variables_of(commands)
    assert variables["CC_QUEUE"] == "hotline" and variables["CC_TIER"] == "prospect"
    assert elapsed < 10


def _run_cli(argv: list[str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CCSERVER_")}
    return subprocess.run([sys.executable, "-m", "ccserver.asterisk.classic_agi", *argv], cwd=REPO_ROOT,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=environ, timeout=60)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage_and_runs_no_session(flag: str) -> None:
    done = _run_cli([flag])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ccserver-agi") and "AGI(ccserver-agi,incoming" in done.stdout
    assert "EXEC" not in done.stdout and done.stderr == ""


def test_an_unknown_option_is_a_usage_error_not_a_script_name() -> None:
    done = _run_cli(["--bogus"])
    assert done.returncode == 2
    assert done.stdout == "" and "usage: ccserver-agi" in done.stderr and "--bogus" in done.stderr
