"""`ccserver asterisk lint` and `import-queues`: pyst2's parser on the shipped snippets, the lab's files and
broken ones (clear problems with file and line, never a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from ccserver.asterisk import Problem, import_queues, import_queues_main, lint, lint_main, parse_conf
from ccserver.db import migrate
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import Queue
from tests.replay.agi_transcripts import REPO_ROOT, transcripts_dir

SHIPPED = sorted(str(p) for p in (REPO_ROOT / "config" / "asterisk").glob("*.conf"))
LAB = transcripts_dir() / "lab-config"


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def test_shipped_snippets_have_no_errors_or_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(SHIPPED) == 3
    assert lint(SHIPPED) == []
    assert lint_main(SHIPPED) == 0
    assert "3 file(s): 0 error(s), 0 warning(s)" in capsys.readouterr().out


def test_shipped_dialplan_contract() -> None:
    conf, problems = parse_conf(REPO_ROOT / "config" / "asterisk" / "extensions_ccserver.conf")
    assert conf is not None and problems == []
    inbound = conf.section("ccserver-inbound")
    assert inbound is not None
    text = "\n".join(i.value for i in inbound.items)
    assert "AGI(agi://127.0.0.1:4573/incoming,${CC_CAMPAIGN_ID})" in text
    assert "AGI(agi://127.0.0.1:4573/survey,${CC_DECISION_ID})" in text
    assert "Queue(${CC_AGENT_QUEUE},c,," in text and "Queue(${CC_QUEUE},c,," in text
    assert "QUEUE_MAX_PENALTY=${CC_MAX_PENALTY}" in text and "Queue(default,c" in text
    queues, _ = parse_conf(REPO_ROOT / "config" / "asterisk" / "queues_ccserver.conf")
    assert queues is not None
    names = {s.name for s in queues.sections if not s.template}
    assert {"sales", "service", "complaints", "insurance", "vip", "hotline", "default", "agent-8001"} <= names
    sales = queues.section("sales")
    assert sales is not None and queues.resolved_get(sales, "ringinuse") == "no"
    assert queues.resolved_get(queues.section("service"), "strategy") == "linear"  # type: ignore[arg-type]


def test_lab_config_errors_and_warnings() -> None:
    problems = lint(sorted(str(p) for p in LAB.glob("*.conf")))
    errors = {(Path(p.path).name, p.line, p.message.split(":")[0]) for p in problems if p.severity == "error"}
    assert errors == {
        ("extensions.conf", 9, "[from-pstn] never tests AGISTATUS"),
        ("manager.conf", 8, "[ccserver] write grants system"),
    }
    warnings = [p for p in problems if p.severity == "warning"]
    assert any("static member 'Local/8001@agent-phones/n'" in p.message and p.line == 12 for p in warnings)
    assert any("CC_PRIO" in p.message for p in warnings)
    assert any("ringinuse" in p.message and "[complaints]" in p.message for p in warnings)


def test_missing_queue_and_manager_rights(tmp_path: Path) -> None:
    dialplan = write(tmp_path, "extensions_custom.conf", """
[from-trunk]
exten => _X.,1,Answer()
 same => n,AGI(agi://10.0.0.5:4573/incoming,${CC_CAMPAIGN_ID})
 same => n,GotoIf($["${AGISTATUS}" = "FAILURE"]?fb)
 same => n,Set(QUEUE_PRIO=${CC_PRIORITY})
 same => n,Queue(${CC_QUEUE})
 same => n(fb),Queue(default)
""")
    queues = write(tmp_path, "queues_custom.conf",
                   "[sales]\nstrategy = ringall\nringinuse = no\nsetinterfacevar = yes\n")
    manager = write(tmp_path, "manager_custom.conf", "[general]\nenabled = yes\n\n[cc]\nsecret = x\n"
                                                     "read = call,agent\nwrite = call,command,config\n")
    problems = lint([dialplan, queues, manager])
    errors = sorted((Path(p.path).name, p.line, p.message) for p in problems if p.severity == "error")
    assert errors[0] == ("extensions_custom.conf", 8, "queue 'default' is not defined in the queues file(s) given")
    messages = [m for _, _, m in errors[1:]]
    assert any("read lacks 'system'" in m for m in messages)
    assert any("write grants command, config" in m for m in messages)
    assert any("has no permit" in m for m in messages)
    assert any("channelvars lacks CC_DECISION_ID" in p.message for p in problems if p.severity == "warning")


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("[general]\nenabled = yes\n[broken\nread = all\n", 3, "Missing '[' or ']'"),
    ("[general]\nthis line has no equals sign\n", 2, "Item must be in name = value pairs"),
    (b"[general]\nname = caf\xe9\n", 2, "not UTF-8"),
])  # fmt: skip
def test_unparsable_files_are_reported_with_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                                 line: int, reason: str) -> None:
    path = write(tmp_path, "manager.conf", text)
    problems = lint([path])
    assert len(problems) == 1
    assert problems[0].severity == "error" and problems[0].line == line and reason in problems[0].message
    assert lint_main([path]) == 1
    out = capsys.readouterr().out
    assert f"{path}:{line}: error:" in out and "Traceback" not in out


def test_missing_file_orphan_items_includes_and_templates(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.conf")
    assert [(p.line, p.severity) for p in lint([missing])] == [(None, "error")]
    assert "cannot read" in lint([missing])[0].message
    path = write(tmp_path, "queues.conf", "persistentmembers = yes\n#include queues_extra.conf\n"
                                          "[tpl](!)\nringinuse = no\nsetinterfacevar = yes\nstrategy = linear\n"
                                          "[q1](tpl)\nnote = semi\\;colon ; comment\n")
    conf, problems = parse_conf(path)
    assert problems == [] and conf is not None
    assert conf.includes == [(2, "queues_extra.conf")]
    q1 = conf.section("q1")
    assert q1 is not None and q1.parents == ("tpl",) and q1.get("note") == "semi;colon"
    assert conf.section("tpl").template  # type: ignore[union-attr]
    assert [(p.line, p.message) for p in lint([path])] == [(1, "'persistentmembers' outside any [section]")]
    assert str(Problem("f.conf", 3, "error", "x")) == "f.conf:3: error: x"


def test_unknown_file_kind_is_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "sip.conf", "[general]\nbindport = 5060\n")
    assert [(p.severity, p.message.split(":")[0]) for p in lint([path])] == [
        ("warning", "not recognised as a dialplan, queues or manager file")]
    assert lint_main([]) == 2


def test_import_queues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'q.sqlite3'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    shipped = str(REPO_ROOT / "config" / "asterisk" / "queues_ccserver.conf")
    summary = import_queues(shipped, sessions)
    assert summary["problems"] == [] and summary["static_members"] == {}
    assert set(summary["created"]) == {"sales", "service", "complaints", "insurance", "vip", "hotline", "english",
                                       "callback", "default", "agent-8001", "agent-8002", "agent-8003"}
    with sessions() as s:
        rows = {q.name: (q.strategy, q.line) for q in s.scalars(select(Queue))}
    assert rows["service"] == ("linear", "service") and rows["vip"] == ("leastrecent", None)
    assert rows["agent-8001"] == ("ringall", None)
    again = import_queues(shipped, sessions)
    assert again["created"] == [] and again["updated"] == [] and len(again["unchanged"]) == 12
    lab = import_queues(LAB / "queues.conf", sessions)
    assert lab["created"] == ["bulk"] and lab["updated"] == [] and "sales" in lab["unchanged"]
    assert lab["static_members"]["bulk"] == 20
    changed = import_queues(write(tmp_path, "queues_changed.conf", "[sales]\nstrategy = rrmemory\n"), sessions)
    assert changed["updated"] == ["sales"]
    engine.dispose()
    assert import_queues_main(str(LAB / "queues.conf"), url) == 0
    assert "note: [bulk] has 20 static member(s)" in capsys.readouterr().out
    broken = write(tmp_path, "queues.conf", "[sales\n")
    assert import_queues_main(broken, url) == 1
    out = capsys.readouterr().out
    assert f"{broken}:1: error:" in out and "nothing imported" in out
