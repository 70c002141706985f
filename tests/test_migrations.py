"""Programmatic Alembic migrations, on SQLite and on a PostgreSQL schema chosen by search_path."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, inspect, text

from ccserver.db import migrate
from ccserver.db.engine import make_engine
from ccserver.db.models import Base

OUR_TABLES = set(Base.metadata.tables)


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
    engine.dispose()
    return names


def _diffs(url: str, metadata: MetaData) -> list:
    engine = make_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(ctx, metadata)
    engine.dispose()
    return diffs


def test_upgrade_downgrade_upgrade(db_url):
    assert migrate.schema_status(db_url) == "empty"
    assert migrate.current_revision(db_url) is None

    migrate.upgrade(db_url)
    assert OUR_TABLES <= _tables(db_url)
    assert migrate.current_revision(db_url) == migrate.head_revision()
    assert migrate.schema_status(db_url) == "up_to_date"

    migrate.downgrade(db_url, "base")
    assert not (OUR_TABLES & _tables(db_url))
    assert migrate.current_revision(db_url) is None
    assert migrate.schema_status(db_url) == "empty"

    migrate.upgrade(db_url)
    assert OUR_TABLES <= _tables(db_url)
    assert migrate.schema_status(db_url) == "up_to_date"


def test_models_match_the_migrated_schema(db_url):
    migrate.upgrade(db_url)
    assert _diffs(db_url, Base.metadata) == []


def test_the_comparison_would_see_a_drift(db_url):
    """Guard for the test above: a model that differs from the schema must produce diffs."""
    migrate.upgrade(db_url)
    drifted = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    Table("not_migrated", drifted, Column("id", Integer, primary_key=True))
    drifted.tables["customers"].append_column(Column("extra", Integer))
    kinds = {d[0] if isinstance(d, tuple) else d[0][0] for d in _diffs(db_url, drifted)}
    assert {"add_table", "add_column"} <= kinds


def test_postgresql_ddl_and_version_table_follow_search_path(pg_url):
    migrate.upgrade(pg_url)
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        schema = conn.execute(text("select current_schema()")).scalar_one()
        found = set(
            conn.execute(
                text("select table_name from information_schema.tables where table_schema = :s"), {"s": schema}
            ).scalars()
        )
    engine.dispose()
    assert schema.startswith("t_")  # the fixture's private schema, not public
    assert OUR_TABLES | {"alembic_version"} <= found


def test_tables_without_version_are_outdated(sqlite_url):
    engine = make_engine(sqlite_url)
    Base.metadata.create_all(engine)
    engine.dispose()
    assert migrate.schema_status(sqlite_url) == "outdated"


def test_a_database_behind_head_is_outdated(sqlite_url):
    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:  # pretend an older release migrated it
        conn.execute(text("update alembic_version set version_num = '0000_older'"))
    engine.dispose()
    assert migrate.current_revision(sqlite_url) == "0000_older"
    assert migrate.schema_status(sqlite_url) == "outdated"


def test_migration_scripts_ship_as_package_data_and_do_not_import_models(monkeypatch):
    from tests.test_packaging import declared_packages

    folder = migrate.MIGRATIONS_DIR
    assert (folder / "env.py").is_file() and (folder / "script.py.mako").is_file()
    scripts = sorted((folder / "versions").glob("*.py"))
    assert scripts
    for script in scripts:
        # A revision must stay frozen: importing the live models would change old migrations.
        code = script.read_text(encoding="utf-8")
        assert "from ccserver" not in code and "import ccserver" not in code, script.name
    # Shipped: env.py and the revisions as modules of declared packages, the template as their package data.
    packages, package_data = declared_packages(monkeypatch)
    assert {"ccserver.migrations", "ccserver.migrations.versions"} <= packages
    assert "*.mako" in package_data["ccserver.migrations"]
