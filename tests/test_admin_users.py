"""`ccserver users add|passwd|deactivate|list` and the forced password change at the first login."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from ccserver.cli import main
from ccserver.db.engine import make_engine, session_factory
from ccserver.db.models import AuditLog, Customer, User
from ccserver.passwords import verify_password


@pytest.fixture
def data(tmp_path):
    args = ["--data-dir", str(tmp_path)]
    assert main(["db", "upgrade", *args]) == 0
    return args


def _users(capsys) -> dict[str, dict]:
    return {u["username"]: u for u in json.loads(capsys.readouterr().out)}


def _sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'ccserver.sqlite3'}")
    return engine, session_factory(engine)


def test_add_with_a_password_file_then_list(data, tmp_path, capsys):
    secret = tmp_path / "pw"
    secret.write_text("s3cret-pass\nignored second line\n", encoding="utf-8")
    assert main(["users", "add", "zhang.wei", "--role", "agent", "--password-file", str(secret),
                 "--extension", "8001", "--interface", "PJSIP/8001", "--skills", "sales,vip",
                 "--languages", "zh,en", *data]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["extension"] == "8001" and created["must_change_password"] is True
    assert "scrypt" not in json.dumps(created)  # no hash shown
    assert main(["users", "list", *data]) == 0
    listed = _users(capsys)["zhang.wei"]
    assert listed["interface"] == "PJSIP/8001" and listed["skills"] == ["sales", "vip"]
    engine, sessions = _sessions(tmp_path)
    with sessions() as s:
        user = s.scalars(select(User).where(User.username == "zhang.wei")).one()
        assert verify_password("s3cret-pass", user.password_hash or "")
        row = s.scalars(select(AuditLog).where(AuditLog.action == "user.created")).one()
        assert row.actor_name.startswith("cli:") and row.target == "user:zhang.wei"
        assert "scrypt" not in json.dumps(row.detail)
    engine.dispose()


def test_add_prompts_twice_and_refuses_bad_input(data, tmp_path, capsys, monkeypatch):
    answers = iter(["first-password", "second-password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["users", "add", "li", "--role", "agent", *data]) == 1
    assert "differ" in capsys.readouterr().err
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "short")
    assert main(["users", "add", "li", "--role", "agent", *data]) == 1
    assert "at least 8" in capsys.readouterr().err
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "long-enough")
    assert main(["users", "add", "li", "--role", "wizard", *data]) == 1
    assert "unknown role" in capsys.readouterr().err
    assert main(["users", "add", "li", "--role", "agent", "--store", "nowhere", *data]) == 1
    assert "unknown store 'nowhere'" in capsys.readouterr().err
    assert main(["users", "add", "li", "--role", "agent", "--interface", "PJSIP/80 01\r\n", *data]) == 1
    assert "interface" in capsys.readouterr().err
    assert main(["users", "add", "li", "--role", "department", "--department", "servise", *data]) == 1
    assert "unknown department 'servise'" in capsys.readouterr().err  # a typo: an inbox no ticket reaches
    assert main(["users", "add", "li", "--role", "agent", *data]) == 0
    assert main(["users", "add", "li", "--role", "agent", *data]) == 1
    assert "exists already" in capsys.readouterr().err


def test_a_password_is_never_taken_from_the_command_line(data):
    with pytest.raises(SystemExit):
        main(["users", "add", "li", "--role", "agent", "--password", "on-the-command-line", *data])


def test_passwd_sets_a_new_password_and_forces_a_change(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "first-password")
    assert main(["users", "add", "li", "--role", "agent", "--no-force-change", *data]) == 0
    assert json.loads(capsys.readouterr().out)["must_change_password"] is False
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "second-password")
    assert main(["users", "passwd", "li", *data]) == 0
    assert json.loads(capsys.readouterr().out)["must_change_password"] is True
    engine, sessions = _sessions(tmp_path)
    with sessions() as s:
        user = s.scalars(select(User).where(User.username == "li")).one()
        assert verify_password("second-password", user.password_hash or "")
    engine.dispose()
    assert main(["users", "passwd", "nobody", *data]) == 1
    assert "no user named 'nobody'" in capsys.readouterr().err


def test_deactivate_reassigns_a_departed_consultants_customers(data, tmp_path, capsys, monkeypatch):
    assert main(["demo-data", "--customers", "200", "--seed", "3", "--as-of", "2026-11-23", *data]) == 0
    engine, sessions = _sessions(tmp_path)
    with sessions() as s:
        consultant_id, owned = s.execute(
            select(Customer.sales_consultant_id, func.count()).where(Customer.sales_consultant_id.is_not(None))
            .group_by(Customer.sales_consultant_id).order_by(func.count().desc())).first()
        leaver = s.get(User, consultant_id)
        assert leaver is not None and owned > 0
        name = leaver.username
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "heir-password")
    assert main(["users", "add", "heir", "--role", "agent", *data]) == 0
    capsys.readouterr()
    assert main(["users", "deactivate", name, "--reassign-to", "nobody", *data]) == 1
    assert "no user named 'nobody'" in capsys.readouterr().err
    assert main(["users", "deactivate", name, "--reassign-to", "heir", *data]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sales_customers"] == owned
    with sessions() as s:
        heir_id = s.scalars(select(User.id).where(User.username == "heir")).one()
        assert s.scalar(select(func.count()).where(Customer.sales_consultant_id == consultant_id)) == 0
        assert s.scalar(select(func.count()).where(Customer.sales_consultant_id == heir_id)) == owned
        row = s.scalars(select(AuditLog).where(AuditLog.action == "user.deactivated")).one()
        assert row.detail["after"]["moved"]["sales_customers"] == owned
    engine.dispose()
    assert main(["users", "deactivate", name, *data]) == 1
    assert "already deactivated" in capsys.readouterr().err
    assert main(["users", "list", "--active", *data]) == 0
    assert name not in _users(capsys)


def test_first_login_must_change_the_password(data, tmp_path, capsys, monkeypatch):
    from ccserver.web.app import build_router
    from ccserver.web.sql_users import SQLUserStore
    from tests.web_support import call, make_context

    monkeypatch.setattr("getpass.getpass", lambda prompt="": "set-by-admin")
    assert main(["users", "add", "wang", "--role", "supervisor", *data]) == 0
    engine, sessions = _sessions(tmp_path)
    router = build_router(make_context(SQLUserStore(sessions)))
    login = call(router, "POST", "/api/login", json_body={"username": "wang", "password": "set-by-admin"})
    assert login.status == 200 and login.json()["must_change_password"] is True
    auth = {"Authorization": f"Bearer {login.json()['token']}"}
    refused = call(router, "GET", "/api/calls", headers=auth)
    assert refused.status == 403 and refused.json()["reason"] == "password_change_required"
    assert call(router, "GET", "/api/me", headers=auth).json()["must_change_password"] is True
    wrong = call(router, "POST", "/api/password", headers=auth,
                 json_body={"current_password": "not-it-at-all", "new_password": "my-own-password"})
    assert wrong.status == 403
    short = call(router, "POST", "/api/password", headers=auth,
                 json_body={"current_password": "set-by-admin", "new_password": "short"})
    assert short.status == 400
    ok = call(router, "POST", "/api/password", headers=auth,
              json_body={"current_password": "set-by-admin", "new_password": "my-own-password"})
    assert ok.status == 200
    assert call(router, "GET", "/api/me", headers=auth).json()["must_change_password"] is False
    assert call(router, "GET", "/api/calls", headers=auth).status != 403
    with sessions() as s:
        actions = list(s.scalars(select(AuditLog.action).where(AuditLog.target == "user:wang")))
        assert "user.password_changed" in actions
    engine.dispose()


def test_a_browser_is_sent_to_the_password_page(data, tmp_path, monkeypatch):
    from ccserver.web.app import build_router
    from ccserver.web.sql_users import SQLUserStore
    from tests.web_support import call, make_context

    monkeypatch.setattr("getpass.getpass", lambda prompt="": "set-by-admin")
    assert main(["users", "add", "zhao", "--role", "agent", *data]) == 0
    engine, sessions = _sessions(tmp_path)
    router = build_router(make_context(SQLUserStore(sessions)))
    page = call(router, "GET", "/login")
    csrf = page.body.decode().split('name="csrf_token" value="')[1].split('"')[0]
    nonce = page.cookies()["ccserver_login"]
    login = call(router, "POST", "/login", headers={"Cookie": f"ccserver_login={nonce}"},
                 form={"csrf_token": csrf, "username": "zhao", "password": "set-by-admin", "next": "/inbox"})
    assert login.status == 303 and login.header("location") == "/password"
    cookie = {"Cookie": f"ccserver_session={login.cookies()['ccserver_session']}"}
    home = call(router, "GET", "/", headers=cookie)
    assert home.status == 303 and home.header("location") == "/password"
    form = call(router, "GET", "/password", headers={**cookie, "Accept-Language": "zh-CN"})
    assert form.status == 200 and "修改密码" in form.body.decode()
    engine.dispose()


def test_add_without_a_terminal_says_how_to_give_the_password(data, capsys, monkeypatch):
    """A script or a pipe: getpass reads stdin, finds it at its end — an EOFError traceback before."""
    def no_terminal(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("getpass.getpass", no_terminal)
    assert main(["users", "add", "li", "--role", "agent", *data]) == 1
    assert "--password-file" in capsys.readouterr().err


def test_db_commands_against_a_database_that_is_not_there_say_so_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CCSERVER_DATABASE_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:9/none")
    for command in (["db", "current"], ["db", "upgrade"]):
        assert main([*command, "--data-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ccserver: cannot reach the database") and "Traceback" not in err
        assert "secret" not in err  # the password masked
