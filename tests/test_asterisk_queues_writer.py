"""`ccserver asterisk queues`: Asterisk's queues file from the database, and the shipped file is its output for
the demo data (so every queue the demo's DIDs, routing rules and agents name exists in Asterisk)."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from sqlalchemy import insert

from ccserver.asterisk import lint
from ccserver.asterisk.conf import load_conf
from ccserver.asterisk.queues_writer import (
    AgentRow,
    QueueRow,
    QueuesError,
    configured_queues,
    queues_main,
    render_queues,
)
from ccserver.cli import main
from ccserver.config import load_config
from ccserver.db import migrate
from ccserver.db.engine import make_engine
from ccserver.db.models import Queue, User
from ccserver.demo.generator import DemoGenerator
from routing.rules import RoutingRules
from routing.value import TierCutoffs
from tests.replay.agi_transcripts import REPO_ROOT

SHIPPED = REPO_ROOT / "config" / "asterisk" / "queues_ccserver.conf"


def demo_rows() -> tuple[list[QueueRow], list[AgentRow], dict[str, list[dict]]]:
    """The reference rows `make run` loads (demo-data defaults: 10,000 customers), without the customers."""
    generator = DemoGenerator(10_000, 1, dt.date(2026, 1, 1), cutoffs=TierCutoffs(0.0, 0.0, 0.0))
    tables = dict(generator.reference_tables("", ""))
    queues = [QueueRow(r["name"], r["strategy"], r["description"]) for r in tables["queues"]]
    agents = [AgentRow(r["extension"]) for r in tables["users"] if r["extension"]]
    return queues, agents, tables


def defined_queues(path: Path) -> set[str]:
    conf, problems = load_conf(path)
    assert problems == [] and conf is not None
    return {s.name for s in conf.sections if not s.template and s.name != "general"}


def test_shipped_file_is_the_writer_output_for_the_demo_data() -> None:
    queues, agents, _ = demo_rows()
    expected = render_queues(queues, agents, configured=configured_queues(load_config(None)))
    assert SHIPPED.read_text(encoding="utf-8") == expected, (
        "config/asterisk/queues_ccserver.conf is stale: regenerate it with `ccserver asterisk queues` on a "
        "fresh `make run` database (demo-data defaults)")


def test_shipped_file_defines_every_queue_the_demo_and_the_routing_rules_name() -> None:
    # Before: the store DIDs routed to bj-volvo-sales ... which Asterisk did not have (Unable to join queue).
    _, _, tables = demo_rows()
    names = defined_queues(SHIPPED)
    queue_ids = {r["id"]: r["name"] for r in tables["queues"]}
    assert {queue_ids[d["default_queue_id"]] for d in tables["dids"]} <= names
    assert {r["name"] for r in tables["queues"]} <= names
    assert set(configured_queues(load_config(None))) <= names  # default, hotline, vip, complaints ...
    assert {f"agent-{u['extension']}" for u in tables["users"] if u["extension"]} <= names
    assert {"bj-volvo-sales", "hk-haima-service", "default", "agent-6001", "agent-7015", "agent-8030"} <= names


def test_render_orders_sanitises_and_adds_what_the_configuration_names() -> None:
    text = render_queues(
        [QueueRow("sales", "leastrecent", "New cars\r\n[evil]\x1b"), QueueRow("service", "Linear"),
         QueueRow("sales", "ringall")],
        [AgentRow("8002"), AgentRow("8010"), AgentRow("8002"), AgentRow(" 801 ")],
        configured={"vip": "routing.queues.sales.diamond", "sales": "callrouting.unknown_did_queue"},
        rules=RoutingRules.from_dict({"preferred_agent": {"queue_template": "me-{ext}"}}))
    assert "[sales](ccserver-queue)    ; New cars [evil]\nstrategy = leastrecent\n" in text
    assert "[service](ccserver-queue)\nstrategy = linear\n" in text
    assert text.count("[sales]") == 1
    assert "[vip](ccserver-queue)    ; named by routing.queues.sales.diamond\nstrategy = leastrecent\n" in text
    assert "[default](ccserver-queue)\nstrategy = ringall\nautopause = no\n" in text
    personal = [line for line in text.splitlines() if "(ccserver-personal)" in line and not line.startswith("[ccs")]
    assert personal == ["[me-801](ccserver-personal)", "[me-8002](ccserver-personal)", "[me-8010](ccserver-personal)"]
    assert text.endswith("#tryinclude queues_ccserver_custom.conf\n")


def test_render_output_passes_the_lint(tmp_path: Path) -> None:
    path = tmp_path / "queues_ccserver.conf"
    path.write_text(render_queues([QueueRow("sales", "rrordered")], [AgentRow("8001")]), encoding="utf-8")
    assert lint([str(path)]) == []


@pytest.mark.parametrize(("queues", "agents", "reason"), [
    ([QueueRow("sales desk", "ringall")], [], "queue 'sales desk': not a usable queue name"),
    ([QueueRow("sales]\n[x", "ringall")], [], "not a usable queue name"),
    ([QueueRow("sales", "fastest")], [], "queue 'sales': strategy 'fastest' is not one Asterisk knows"),
    ([], [AgentRow("80 01")], "extension '80 01': personal queue name 'agent-80 01' is not usable"),
    ([QueueRow("agent-8001", "ringall")], [AgentRow("8001")], "personal queue 'agent-8001' (extension 8001) clashes"),
])  # fmt: skip
def test_render_refuses_rows_it_cannot_write(queues: list[QueueRow], agents: list[AgentRow], reason: str) -> None:
    with pytest.raises(QueuesError) as info:
        render_queues(queues, agents)
    assert reason in str(info.value)


def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'q.sqlite3'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(Queue), [{"name": "sales", "strategy": "leastrecent", "description": None},
                                     {"name": "bj-volvo-sales", "strategy": "rrmemory", "description": "北京沃尔沃"}])
        conn.execute(insert(User), [
            {"username": "agent8001", "display_name": "A", "role": "agent", "extension": "8001",
             "interface": "PJSIP/8001", "active": True, "skills": [], "languages": []},
            {"username": "boss", "display_name": "B", "role": "supervisor", "extension": None, "interface": None,
             "active": True, "skills": [], "languages": []},
            {"username": "gone", "display_name": "C", "role": "department", "extension": "6001", "interface": None,
             "active": False, "skills": [], "languages": []}])
    engine.dispose()
    return url


def test_cli_writes_the_file_from_the_database(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    url = database(tmp_path)
    config = tmp_path / "ccserver.toml"
    config.write_text('[routing.overflow]\nsales = "sales-backup"\n', encoding="utf-8")
    monkeypatch.setenv("CCSERVER_SERVER_DATA_DIR", str(tmp_path / "var"))
    assert main(["asterisk", "queues", "--database-url", url, "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    written = tmp_path / "queues_ccserver.conf"
    written.write_text(out, encoding="utf-8")
    assert defined_queues(written) == {"sales", "bj-volvo-sales", "sales-backup", "default", "hotline",
                                       "vip", "complaints", "agent-6001", "agent-8001"}
    assert "[bj-volvo-sales](ccserver-queue)    ; 北京沃尔沃\nstrategy = rrmemory\n" in out
    assert "[sales-backup](ccserver-queue)    ; named by routing.overflow.sales\n" in out
    assert lint([str(written)]) == []
    assert "2 queue(s) from the database, 2 user(s) with an extension" in err


def test_cli_writes_nothing_on_a_bad_row(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    url = database(tmp_path)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(Queue), [{"name": "bad queue", "strategy": "ringall"}])
    engine.dispose()
    monkeypatch.setenv("CCSERVER_SERVER_DATA_DIR", str(tmp_path / "var"))
    assert main(["asterisk", "queues", "--database-url", url]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "nothing written: queue 'bad queue'" in err


def test_queues_main_reports_a_database_error(tmp_path: Path) -> None:
    config = load_config(None, overrides={("database", "url"): f"sqlite:///{tmp_path / 'missing' / 'x.db'}",
                                          ("server", "data_dir"): str(tmp_path)})
    out, err = io.StringIO(), io.StringIO()
    assert queues_main(config, out, err) == 1
    assert out.getvalue() == "" and "database error" in err.getvalue() and "Traceback" not in err.getvalue()
