"""`ccserver asterisk lint` and `import-queues`: pyst2's parser on the shipped snippets, the lab's files and
broken ones (clear problems with file and line, never a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from ccserver.asterisk import Problem, import_queues, import_queues_main, lint, lint_main, parse_conf
from ccserver.asterisk.conf import Include, load_conf
from ccserver.asterisk.lint import CHANNELVARS
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
    assert [Path(p).name for p in SHIPPED] == [
        "extensions_ccserver.conf", "features_ccserver.conf", "manager_ccserver.conf",
        "manager_ccserver_general.conf", "queues_ccserver.conf",
        "queues_ccserver_custom.conf"]
    assert lint(SHIPPED) == []
    assert lint_main(SHIPPED) == 0
    assert "6 file(s): 0 error(s), 0 warning(s)" in capsys.readouterr().out


def test_shipped_dialplan_contract() -> None:
    conf, problems = parse_conf(REPO_ROOT / "config" / "asterisk" / "extensions_ccserver.conf")
    assert conf is not None and problems == []
    inbound = conf.section("ccserver-inbound")
    assert inbound is not None
    text = "\n".join(i.value for i in inbound.items)
    assert "AGI(agi://127.0.0.1:4573/incoming,${CC_CAMPAIGN_ID})" in text
    assert "AGI(agi://127.0.0.1:4573/survey,${CC_DECISION_ID})" in text
    assert "Queue(${CC_AGENT_QUEUE},ct,," in text and "Queue(${CC_QUEUE},ct,," in text
    assert "QUEUE_MAX_PENALTY=${CC_MAX_PENALTY}" in text and "Queue(default,ct" in text
    queues, _ = parse_conf(REPO_ROOT / "config" / "asterisk" / "queues_ccserver.conf")
    assert queues is not None
    names = {s.name for s in queues.sections if not s.template}
    assert {"sales", "service", "complaints", "insurance", "vip", "hotline", "default", "agent-8001"} <= names
    sales = queues.section("sales")
    assert sales is not None and queues.resolved_get(sales, "ringinuse") == "no"
    assert queues.resolved_get(sales, "autopause") == "all"


def test_lab_config_errors_and_warnings() -> None:
    problems = lint(sorted(str(p) for p in LAB.glob("*.conf")))
    errors = {(Path(p.path).name, p.line, p.message.split(":")[0]) for p in problems if p.severity == "error"}
    assert errors == {
        ("extensions.conf", 9, "[from-pstn] never tests AGISTATUS"),
        ("manager.conf", 8, "[ccserver] write grants system"),
        ("manager.conf", 1, "[general] channelvars lacks CC_DECISION_ID (only the last channelvars line counts)"),
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
    problems = lint([dialplan, queues, manager], ami_user="cc")
    errors = sorted((Path(p.path).name, p.line, p.message) for p in problems if p.severity == "error")
    assert errors[0] == ("extensions_custom.conf", 8, "queue 'default' is not defined in the queues file(s) given")
    messages = [m for _, _, m in errors[1:]]
    assert any("read lacks 'system'" in m for m in messages)
    assert any("write grants command, config" in m for m in messages)
    assert any("has no permit" in m for m in messages)
    assert any("[general] channelvars lacks CC_DECISION_ID" in m for m in messages)


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
    assert conf.includes == [Include(2, "include", "queues_extra.conf")]
    q1 = conf.section("q1")
    assert q1 is not None and q1.parents == ("tpl",) and q1.get("note") == "semi;colon"
    assert conf.section("tpl").template  # type: ignore[union-attr]
    assert [(p.line, p.severity, p.message.split(":")[0]) for p in lint([path])] == [
        (2, "error", "#include queues_extra.conf"),  # Asterisk refuses a file whose #include is missing
        (1, "error", "'persistentmembers' outside any [section]"),
        (7, "warning", "[q1] has no autopause")]
    assert str(Problem("f.conf", 3, "error", "x")) == "f.conf:3: error: x"


def test_unknown_file_kind_is_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "sip.conf", "[general]\nbindport = 5060\n")
    assert [(p.severity, p.message.split(":")[0]) for p in lint([path])] == [
        ("warning", "not recognised as a dialplan, queues, manager or features file")]
    assert lint_main([]) == 2


def test_import_queues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'q.sqlite3'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    shipped = str(REPO_ROOT / "config" / "asterisk" / "queues_ccserver.conf")
    summary = import_queues(shipped, sessions)
    assert summary["problems"] == [] and summary["static_members"] == {}
    shipped_names = {s.name for s in parse_conf(shipped)[0].sections if not s.template and s.name != "general"}
    assert set(summary["created"]) == shipped_names
    assert {"sales", "service", "vip", "hotline", "default", "bj-volvo-sales", "agent-8001"} <= shipped_names
    with sessions() as s:
        rows = {q.name: (q.strategy, q.line) for q in s.scalars(select(Queue))}
    assert rows["service"] == ("linear", "service") and rows["vip"] == ("leastrecent", None)
    assert rows["hotline"] == ("rrmemory", "hotline") and rows["default"] == ("ringall", None)
    assert rows["agent-8001"] == ("ringall", None)
    again = import_queues(shipped, sessions)
    assert again["created"] == [] and again["updated"] == [] and len(again["unchanged"]) == len(shipped_names)
    lab = import_queues(LAB / "queues.conf", sessions)
    assert lab["created"] == ["bulk"] and lab["updated"] == [] and "sales" in lab["unchanged"]
    assert lab["static_members"]["bulk"] == 20
    changed = import_queues(write(tmp_path, "queues_changed.conf", "[sales]\nstrategy = rrmemory\n"), sessions)
    assert changed["updated"] == ["sales"]
    # The strategy Asterisk runs is imported: a template's strategy line comes first and wins.
    templated = import_queues(write(tmp_path, "queues_tpl.conf", "[tpl](!)\nstrategy = ringall\n"
                                                                "[sales](tpl)\nstrategy = linear\n"), sessions)
    assert templated["updated"] == ["sales"]
    with sessions() as s:
        assert s.scalars(select(Queue.strategy).where(Queue.name == "sales")).one() == "ringall"
    engine.dispose()
    assert import_queues_main(str(LAB / "queues.conf"), url) == 0
    assert "note: [bulk] has 20 static member(s)" in capsys.readouterr().out
    broken = write(tmp_path, "queues.conf", "[sales\n")
    assert import_queues_main(broken, url) == 1
    out = capsys.readouterr().out
    assert f"{broken}:1: error:" in out and "nothing imported" in out


# --- what a real Asterisk 22 showed (issue 8 §2) -------------------------------------------------------------

STOCK_MANAGER = """\
;
; AMI - Asterisk Manager interface (shaped like Asterisk's stock manager.conf: it has block comments)
;
[general]
enabled = yes
port = 5038
bindaddr = 127.0.0.1

;-- eventfilter --------------------------------------------------------
Include and/or exclude events for this user.
    eventfilter(action(exclude),name(Newchannel),header(Channel),method(starts_with)) = Local/
  ;-- a nested block --; still inside the outer one
--;
;[mark]
;secret = mysecret
#include manager_ccserver_general.conf
#include "manager_ccserver.conf"
"""
STOCK_EXTENSIONS = """\
[general]
static = yes
writeprotect = no

[globals]
CONSOLE = Console/dsp

[from-trunk]
exten => _X.,1,Goto(ccserver-inbound,${EXTEN},1)

#include extensions_ccserver.conf
"""
STOCK_QUEUES = "[general]\npersistentmembers = yes\nmonitor-type = MixMonitor\n\n#include queues_ccserver.conf\n"


def stock_etc(tmp_path: Path) -> Path:
    """An /etc/asterisk as README "Connecting Asterisk" leaves it: stock files #including the shipped snippets,
    plus a stock dialplan file of its own (extensions_minivm.conf) that has nothing of ccserver."""
    etc = tmp_path / "etc"
    etc.mkdir()
    for snippet in SHIPPED:
        (etc / Path(snippet).name).write_bytes(Path(snippet).read_bytes())
    (etc / "manager.conf").write_text(STOCK_MANAGER, encoding="utf-8")
    (etc / "extensions.conf").write_text(STOCK_EXTENSIONS, encoding="utf-8")
    (etc / "extensions_minivm.conf").write_text("[minivm]\nexten => 1,1,Answer()\n", encoding="utf-8")
    (etc / "queues.conf").write_text(STOCK_QUEUES, encoding="utf-8")
    return etc


def readme_step5(etc: Path) -> list[str]:
    return [str(p) for pattern in ("extensions*.conf", "queues*.conf", "manager*.conf")
            for p in sorted(etc.glob(pattern))]


def test_readme_step5_on_a_stock_setup_that_includes_the_snippets_is_clean(tmp_path: Path) -> None:
    # Before: "no context runs the FastAGI incoming script" (includes not followed) and a parse error on the
    # stock manager.conf's block comment.
    etc = stock_etc(tmp_path)
    assert lint(readme_step5(etc)) == []


def test_block_comments_are_skipped_with_line_numbers_kept(tmp_path: Path) -> None:
    conf, problems = parse_conf(write(tmp_path, "manager.conf", STOCK_MANAGER + "[after]\nkey = v ;-- x --; w\n"))
    assert problems == [] and conf is not None
    general = conf.section("general")
    assert general is not None and [i.name for i in general.items] == ["enabled", "port", "bindaddr"]
    assert conf.section("after").items[0].value == "v  w" and conf.section("after").line == 18  # type: ignore[union-attr]
    assert [i.target for i in conf.includes] == ["manager_ccserver_general.conf", "manager_ccserver.conf"]


def test_include_continues_the_open_category_and_resolves_names(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "parts").mkdir()
    absolute = write(tmp_path, "abs.conf", "from_abs = 1\n")
    top = write(tmp_path, "queues.conf", "[one]\nx = 1\n#include sub/b.conf\ny = 2\n[three]\n"
                                         f"#include {absolute}\n#tryinclude nowhere.conf\n#include parts/*.conf\n")
    write(tmp_path / "sub", "b.conf", "z = 3\n#include d.conf\n#include e.conf\n[two]\nw = 4\n")
    write(tmp_path / "sub", "d.conf", "beside_b = 1\n")  # found beside the including file
    write(tmp_path, "e.conf", "beside_top = 1\n")  # not beside sub/b.conf: found beside the top file
    write(tmp_path / "parts", "2.conf", "[p2]\nk = 2\n")
    write(tmp_path / "parts", "1.conf", "[p1]\nk = 1\n")
    conf, problems = load_conf(top)
    assert problems == [] and conf is not None
    one = conf.section("one")
    assert one is not None
    assert [(i.name, Path(i.path).name) for i in one.items] == [
        ("x", "queues.conf"), ("z", "b.conf"), ("beside_b", "d.conf"), ("beside_top", "e.conf"), ("y", "queues.conf")]
    assert [s.name for s in conf.sections] == ["one", "two", "three", "p1", "p2"]  # glob matches sorted
    assert [i.name for i in conf.section("three").items] == ["from_abs"]  # type: ignore[union-attr]
    assert [Path(f).name for f in conf.files] == ["queues.conf", "b.conf", "d.conf", "e.conf", "abs.conf",
                                                  "1.conf", "2.conf"]


def test_missing_include_and_include_loops_are_errors_and_end(tmp_path: Path) -> None:
    a = write(tmp_path, "extensions.conf", "[a]\nexten => 1,1,NoOp()\n#include extensions_b.conf\n"
                                           "#include missing.conf\n")
    write(tmp_path, "extensions_b.conf", "[b]\nexten => 2,1,NoOp()\n#include extensions.conf\n")
    conf, problems = load_conf(a)
    assert conf is not None and [s.name for s in conf.sections] == ["a", "b"]
    assert [(Path(p.path).name, p.line, p.severity, p.message.split(":")[0]) for p in problems] == [
        ("extensions_b.conf", 3, "error", "#include extensions.conf includes itself (include loop)"),
        ("extensions.conf", 4, "error", "#include missing.conf")]
    # Given both on the command line, each problem is reported once, through the file that includes the other.
    both = lint([a, str(tmp_path / "extensions_b.conf")])
    assert sum("include loop" in p.message for p in both) == 1


def test_a_file_given_that_another_includes_is_checked_once(tmp_path: Path) -> None:
    etc = stock_etc(tmp_path)
    (etc / "manager_ccserver.conf").write_text("[ccserver]\nsecret = x\nread = call\nwrite = call\n"
                                               "permit = 127.0.0.1\n", encoding="utf-8")
    problems = lint(readme_step5(etc))
    assert [(Path(p.path).name, p.message.split(":")[0]) for p in problems] == [
        ("manager_ccserver.conf", "[ccserver] read lacks 'system'")]


def test_channelvars_only_counts_in_general(tmp_path: Path) -> None:
    # The shipped snippet before: channelvars in the user section; Asterisk's `manager show settings` then shows
    # "Channel vars:" empty.
    old = write(tmp_path, "manager.conf", "[general]\nenabled = yes\n\n[ccserver]\nsecret = x\n"
                                          "permit = 127.0.0.1/255.255.255.255\nread = system,call,agent\n"
                                          "write = call,agent\nchannelvars = CC_DECISION_ID,CC_CUSTOMER_ID\n")
    problems = [(p.line, p.severity, p.message.split(":")[0]) for p in lint([old])]
    assert problems == [
        (9, "warning", "[ccserver] channelvars does nothing in a user section"),
        (1, "error", "[general] channelvars lacks CC_DECISION_ID (only the last channelvars line counts)"),
        (1, "warning", "[general] channelvars lacks CC_CUSTOMER_ID, CC_DID, CC_CAMPAIGN_ID, CC_PRIORITY, "
                       "QUEUE_PRIO")]
    # Only the last channelvars line of [general] counts.
    last = write(tmp_path, "manager_last.conf", "[general]\nenabled = yes\nchannelvars = " + ",".join(CHANNELVARS)
                 + "\nchannelvars = FOO\n[ccserver]\nsecret = x\npermit = 127.0.0.1\nread = system\nwrite = call\n")
    assert [(p.line, p.severity) for p in lint([last]) if "channelvars" in p.message] == [(4, "error"), (4, "warning")]
    # Without any [general]: an error pointing at the shipped fragment.
    alone = str(REPO_ROOT / "config" / "asterisk" / "manager_ccserver.conf")
    assert [p.message.split(":")[0] for p in lint([alone])] == ["no [general] with channelvars"]


def test_general_fragment_adds_to_general_and_a_second_plain_general_is_ignored(tmp_path: Path) -> None:
    shipped_general = (REPO_ROOT / "config" / "asterisk" / "manager_ccserver_general.conf").read_text()
    fragment = write(tmp_path, "manager_ccserver_general.conf", shipped_general)
    write(tmp_path, "manager_ccserver.conf", (REPO_ROOT / "config" / "asterisk" / "manager_ccserver.conf").read_text())
    write(tmp_path, "manager_plain.conf", shipped_general.replace("[general](+)", "[general]"))
    top = write(tmp_path, "manager.conf", "[general]\nenabled = yes\n#include manager_plain.conf\n"
                                          "#include manager_ccserver.conf\n")
    problems = lint([top])
    assert [(Path(p.path).name, p.severity, p.message.split(":")[0]) for p in problems] == [
        ("manager_plain.conf", "warning", "a second [general]"),
        ("manager.conf", "error", "[general] channelvars lacks CC_DECISION_ID (only the last channelvars line counts)"),
        ("manager.conf", "warning", "[general] channelvars lacks CC_CUSTOMER_ID, CC_DID, CC_CAMPAIGN_ID, CC_PRIORITY, "
                                    "QUEUE_PRIO")]
    write(tmp_path, "manager.conf", "[general]\nenabled = yes\n#include manager_ccserver_general.conf\n"
                                    "#include manager_ccserver.conf\n")
    assert lint([top]) == []
    conf, _ = load_conf(top)
    assert conf is not None and [s.name for s in conf.sections] == ["general", "ccserver"]
    assert conf.section("general").get("channelvars") == ",".join(CHANNELVARS)  # type: ignore[union-attr]
    # (+) with nothing before it: Asterisk refuses the whole file.
    write(tmp_path, "manager.conf", "#include manager_ccserver_general.conf\n[general]\nenabled = yes\n")
    assert any(p.message.startswith("[general](+) adds to a category not defined before it") and p.path == fragment
               for p in load_conf(top)[1])


def test_channelvars_carry_what_the_tracker_reads() -> None:
    from ccserver.state import is_tracked_variable

    assert all(is_tracked_variable(name) for name in CHANNELVARS)
    assert CHANNELVARS.index("QUEUE_PRIO") > CHANNELVARS.index("CC_PRIORITY")  # app_queue's own value wins


def test_template_strategy_beats_the_queue_line(tmp_path: Path) -> None:
    # The shipped queues before: strategy = leastrecent in the template, service/hotline/default set their own;
    # Asterisk's `queue show` said leastrecent for all of them.
    path = write(tmp_path, "queues_custom.conf", "[tpl](!)\nstrategy = leastrecent\nringinuse = no\n"
                                                 "setinterfacevar = yes\nautopause = all\n"
                                                 "[service](tpl)\nstrategy = linear\n"
                                                 "[sales](tpl)\nstrategy = leastrecent\n"
                                                 "[odd](tpl)\n[base](!)\nringinuse = no\nsetinterfacevar = yes\n"
                                                 "autopause = bogus\n[hotline](base)\nstrategy = fast\n")
    problems = [(p.line, p.severity, p.message) for p in lint([path])]
    assert problems == [
        (7, "error", "[service] strategy = linear is ignored: app_queue takes the first strategy of the category, "
                     "'leastrecent' from its template (line 2); set strategy in each queue, not in a template it "
                     "also sets"),
        (16, "warning", "[hotline] strategy = fast is not one Asterisk knows: it runs ringall"),
        (14, "warning", "[hotline] autopause = bogus: Asterisk knows yes, no and all, and reads anything else as no"),
    ]
    shipped, _ = load_conf(REPO_ROOT / "config" / "asterisk" / "queues_ccserver.conf")
    assert shipped is not None
    runs = {name: shipped.resolved_first(shipped.section(name), "strategy").value  # type: ignore[arg-type,union-attr]
            for name in ("sales", "service", "hotline", "default", "vip", "agent-8001")}
    assert runs == {"sales": "leastrecent", "service": "linear", "hotline": "rrmemory", "default": "ringall",
                    "vip": "leastrecent", "agent-8001": "ringall"}


def test_queues_general_first_line_wins(tmp_path: Path) -> None:
    etc = stock_etc(tmp_path)
    (etc / "queues.conf").write_text(STOCK_QUEUES.replace("persistentmembers = yes", "persistentmembers = no"))
    problems = lint([str(etc / "queues.conf")])
    assert [(Path(p.path).name, p.message.split(":")[0]) for p in problems] == [
        ("queues_ccserver.conf", "[general] persistentmembers = yes is ignored")]


def test_shipped_autopause_and_vip_tuning() -> None:
    conf, problems = load_conf(REPO_ROOT / "config" / "asterisk" / "queues_ccserver.conf")
    assert problems == [] and conf is not None
    get = conf.resolved_get
    assert get(conf.section("sales"), "autopause") == "all"  # type: ignore[arg-type]
    assert get(conf.section("default"), "autopause") == "no"  # type: ignore[arg-type]
    assert get(conf.section("agent-8001"), "autopause") == "no"  # type: ignore[arg-type]
    assert get(conf.section("vip"), "weight") == "10"  # type: ignore[arg-type]  # from queues_ccserver_custom.conf


def test_only_the_ccserver_ami_user_is_checked(tmp_path: Path) -> None:
    etc = stock_etc(tmp_path)
    (etc / "manager_admin.conf").write_text("[admin]\nsecret = s\nread = all\nwrite = all\n")
    assert lint(readme_step5(etc)) == []
    assert [p.message.split(":")[0] for p in lint(readme_step5(etc), ami_user="admin")] == [
        "[admin] write grants all", "[admin] has no permit"]
    assert [p.message.split(" (")[0] for p in lint(readme_step5(etc), ami_user="cc")] == [
        "no AMI user [cc] in the manager files given"]


def test_cli_lint_names_the_ami_user(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ccserver.cli import main

    etc = stock_etc(tmp_path)
    (etc / "manager_admin.conf").write_text("[admin]\nsecret = s\nread = all\nwrite = all\n")
    assert main(["asterisk", "lint", *readme_step5(etc)]) == 0
    assert main(["asterisk", "lint", "--ami-user", "admin", *readme_step5(etc)]) == 1
    out = capsys.readouterr().out
    assert "[admin] write grants all" in out and "1 error(s)" not in out and "2 error(s), 0 warning(s)" in out


# -- what the IVR and the queue exit need ------------------------------------------------------------------------
def test_shipped_ivr_contract() -> None:
    conf, _ = parse_conf(REPO_ROOT / "config" / "asterisk" / "extensions_ccserver.conf")
    assert conf is not None
    inbound = "\n".join(i.value for i in conf.section("ccserver-inbound").items)
    assert "Set(CC_ARRIVED=${EPOCH})" in inbound and "Set(CHANNEL(language)=${CC_LANGUAGE})" in inbound
    callback = "\n".join(i.value for i in conf.section("ccserver-callback").items)
    assert "callback,${CC_DECISION_ID},${CC_DID},${CC_ARRIVED},${CC_LINE},${CC_QUEUE})" in callback
    exit_ = conf.section("ccserver-queue-exit")
    assert exit_ is not None and exit_.items[0].value.startswith("1,1,")
    assert "Goto(ccserver-callback,s,1)" in "\n".join(i.value for i in exit_.items)
    queues, _ = parse_conf(REPO_ROOT / "config" / "asterisk" / "queues_ccserver.conf")
    assert queues is not None
    sales = queues.section("sales")
    assert queues.resolved_get(sales, "context") == "ccserver-queue-exit"
    assert queues.resolved_get(sales, "periodic-announce").split(";")[0].strip() == "cc-queue-callback-hint"


def test_queue_exit_context_must_exist(tmp_path: Path) -> None:
    dialplan = write(tmp_path, "extensions_x.conf", "[from-trunk]\nexten => _X.,1,Goto(elsewhere,${EXTEN},1)\n")
    queues = write(tmp_path, "queues_x.conf", "[sales]\nstrategy = ringall\nringinuse = no\nsetinterfacevar = yes\n"
                                              "autopause = all\ncontext = ccserver-queue-exit\n")
    problems = lint([dialplan, queues])
    assert any(p.severity == "error" and "context = ccserver-queue-exit: no such context" in p.message
               for p in problems)
    assert not any("no such context" in p.message for p in lint([queues]))  # no dialplan given: not judged


def test_dialplan_without_language_or_arrival_is_warned(tmp_path: Path) -> None:
    text = (REPO_ROOT / "config" / "asterisk" / "extensions_ccserver.conf").read_text(encoding="utf-8")
    old = text.replace(" same => n,ExecIf($[\"${CC_LANGUAGE}\" != \"\"]?Set(CHANNEL(language)=${CC_LANGUAGE}))\n", "")
    old = old.replace(",${CC_ARRIVED},${CC_LINE},${CC_QUEUE})", ")")
    problems = lint([write(tmp_path, "extensions_old.conf", old)])
    messages = [p.message for p in problems]
    assert any("never sets CHANNEL(language)=${CC_LANGUAGE}" in m for m in messages)
    assert any("does not pass ${CC_ARRIVED}" in m for m in messages)
    assert all(p.severity == "warning" for p in problems)


def test_desktop_transfer_and_dial_contract(tmp_path: Path) -> None:
    """Queue option t, the desktop's contexts, the atxfer code and wrapuptime 0 are checked (the agent desktop)."""
    conf, _ = parse_conf(REPO_ROOT / "config" / "asterisk" / "extensions_ccserver.conf")
    assert conf is not None
    transfer, dial = conf.section("ccserver-transfer"), conf.section("ccserver-dial")
    assert transfer is not None and dial is not None
    assert {i.value.split(",")[0] for i in transfer.items if i.name == "exten"} == {"_q-.", "_a-.", "_AX.", "_X."}
    features, _ = parse_conf(REPO_ROOT / "config" / "asterisk" / "features_ccserver.conf")
    assert features is not None
    featuremap = features.section("featuremap")
    assert featuremap is not None and {i.name: i.value.split(";")[0].strip() for i in featuremap.items} == {
        "blindxfer": "#1", "atxfer": "*2"}
    queues, _ = parse_conf(REPO_ROOT / "config" / "asterisk" / "queues_ccserver.conf")
    assert queues is not None and queues.resolved_get(queues.section("sales"), "wrapuptime") == "0"

    text = (REPO_ROOT / "config" / "asterisk" / "extensions_ccserver.conf").read_text(encoding="utf-8")
    old = text.replace("Queue(${CC_QUEUE},ct,", "Queue(${CC_QUEUE},c,").split("[ccserver-transfer]")[0]
    messages = [(p.severity, p.message) for p in lint([write(tmp_path, "extensions_old.conf", old)])]
    assert ("warning", "[ccserver-inbound] Queue(${CC_QUEUE}) lacks option t: the agent cannot transfer the "
            "caller (desktop transfers fail)") in messages
    assert any(sev == "warning" and "no [ccserver-transfer] context" in m for sev, m in messages)
    assert any(sev == "warning" and "no [ccserver-dial] context" in m for sev, m in messages)

    no_atxfer = write(tmp_path, "features_x.conf", "[featuremap]\nblindxfer => #1\natxfer =>\n")
    problems = lint([no_atxfer])
    assert [(p.severity, p.message.split(":")[0]) for p in problems] == [
        ("error", "[featuremap] has no atxfer code")]
    queue = write(tmp_path, "queues_x.conf", "[sales]\nstrategy = ringall\nringinuse = no\nsetinterfacevar = yes\n"
                                             "autopause = all\nwrapuptime = 10\n")
    assert [p.message.split(":")[0] for p in lint([queue])] == ["[sales] wrapuptime = 10"]


def test_campaign_contexts_shipped_and_checked(tmp_path: Path) -> None:
    conf, _ = parse_conf(REPO_ROOT / "config" / "asterisk" / "extensions_ccserver.conf")
    assert conf is not None
    answered = conf.section("ccserver-campaign")
    outbound = conf.section("ccserver-outbound")
    assert answered is not None and outbound is not None
    text = "\n".join(i.value for i in answered.items)
    assert "Queue(${CC_QUEUE},ct,,," in text and "CC_ABANDON_AFTER" in text and "AMD()" in text
    assert "Playback(cc-campaign-abandon)" in text
    assert "Dial(${CC_DIAL}" in "\n".join(i.value for i in outbound.items)
    broken = (REPO_ROOT / "config" / "asterisk" / "extensions_ccserver.conf").read_text(encoding="utf-8")
    broken = "\n".join(" same => n,Queue(${CC_QUEUE})" if "Queue(${CC_QUEUE}" in line and "ABANDON" in line
                       else line for line in broken.replace("Playback(cc-campaign-abandon)", "Playback(beep)")
                       .splitlines())
    path = tmp_path / "extensions_ccserver.conf"
    path.write_text(broken, encoding="utf-8")
    messages = [p.message for p in lint([str(path)])]
    assert any("does not bound Queue() by ${CC_ABANDON_AFTER}" in m for m in messages)
    assert any("never plays cc-campaign-abandon" in m for m in messages)
