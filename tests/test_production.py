"""README "Production": the backup and restore blocks, run as written against the local PostgreSQL (scratch
databases), and the shipped systemd unit and nginx site say what the README promises."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy

from tests.conftest import TEST_DATABASE_URL

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
TABLES = ("customers", "phone_numbers", "vehicles", "orders", "users", "stores", "dids", "audit_log")


def block(name: str) -> str:
    found = re.search(rf"<!-- {name} -->\n```sh\n(.*?)```\n<!-- /{name} -->", README, re.S)
    assert found, f"README has no {name} block"
    return found.group(1)


def _counts(url: str) -> dict[str, int]:
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        counts = {t: conn.execute(sqlalchemy.text(f"select count(*) from {t}")).scalar_one() for t in TABLES}  # noqa: S608
    engine.dispose()
    return counts


@pytest.fixture
def scratch(tmp_path):
    """Two scratch databases (the original, the restore target), dropped afterwards; the libpq environment."""
    base = urlsplit(TEST_DATABASE_URL.replace("postgresql+psycopg", "postgresql"))
    name = "ccbk_" + secrets.token_hex(4)
    admin = sqlalchemy.create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"create database {name}"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "ccserver"  # `ccserver` as the README runs it: this checkout's, with the test interpreter
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m ccserver \"$@\"\n")
    shim.chmod(0o755)
    env = {**os.environ, "PGHOST": base.hostname or "127.0.0.1", "PGPORT": str(base.port or 5432),
           "PGUSER": base.username or "root", "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT), "BACKUP_DIR": str(tmp_path / "backups"), "BACKUP_DB": name,
           "RESTORE_DB": name + "_restored", "CCSERVER_SERVER_DATA_DIR": str(tmp_path / "data")}
    (tmp_path / "backups").mkdir()
    url = f"{TEST_DATABASE_URL.rsplit('/', 1)[0]}/{name}"
    yield env, url, f"{TEST_DATABASE_URL.rsplit('/', 1)[0]}/{name}_restored"
    with admin.connect() as conn:
        for db in (name, name + "_restored"):
            conn.execute(sqlalchemy.text(f"drop database if exists {db} with (force)"))
    admin.dispose()


def test_the_readme_backup_and_restore_round_trip(scratch, tmp_path):
    env, url, restored = scratch
    run = {"env": env, "cwd": ROOT, "capture_output": True, "text": True, "timeout": 300}
    for args in (["db", "upgrade"], ["demo-data", "--customers", "300", "--seed", "4", "--as-of", "2026-11-23"]):
        done = subprocess.run([sys.executable, "-m", "ccserver", *args, "--database-url", url], **run)  # noqa: S603
        assert done.returncode == 0, done.stderr
    before = _counts(url)
    assert before["customers"] == 300
    backup = subprocess.run(["bash", "-c", block("backup")], **run)  # noqa: S603
    assert backup.returncode == 0, backup.stderr
    dumps = list((tmp_path / "backups").glob("ccserver-*.dump"))
    assert len(dumps) == 1 and dumps[0].stat().st_size > 10_000
    restore = subprocess.run(["bash", "-c", block("restore")], **run)  # noqa: S603
    assert restore.returncode == 0, restore.stderr
    assert "status: up_to_date" in restore.stdout
    assert _counts(restored) == before
    engine = sqlalchemy.create_engine(restored)
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("select max(value_score) from customers")).scalar_one() > 0
    engine.dispose()


def test_the_unit_and_the_proxy_say_what_the_readme_promises():
    unit = (ROOT / "config" / "systemd" / "ccserver.service").read_text(encoding="utf-8")
    for line in ("Restart=on-failure", "RestartPreventExitStatus=2", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "EnvironmentFile=/etc/ccserver/secrets.env", "ExecStart=/opt/ccserver/bin/ccserver run"):
        assert line in unit
    assert "db upgrade" not in unit.split("[Service]")[1]  # the schema upgrade is a one-off, never at start
    site = (ROOT / "config" / "nginx" / "ccserver.conf").read_text(encoding="utf-8")
    for line in ("listen 443 ssl", "proxy_set_header Upgrade $http_upgrade", "X-Forwarded-For",
                 "trusted_proxies", "location /ws"):
        assert line in site
