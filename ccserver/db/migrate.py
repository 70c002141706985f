"""Schema migrations, run programmatically (Alembic, scripts shipped inside the ccserver package).

A PostgreSQL URL may carry ``?options=-csearch_path%3D<schema>``: every table and Alembic's own version
table then go to that schema, because nothing here names a schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from ccserver.db.engine import make_engine

SchemaStatus = Literal["up_to_date", "outdated", "empty"]

# The migrations package folder; a plain path works for source trees and installed wheels alike.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolation: a literal '%' in the URL (e.g. %3D in options) must be doubled.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _run(url: str, fn: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            getattr(command, fn)(cfg, revision)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (one transaction on PostgreSQL)."""
    _run(url, "upgrade", revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate down to ``revision`` ('base' removes every ccserver table)."""
    _run(url, "downgrade", revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships the initial revision
        raise RuntimeError(f"no migration scripts in {MIGRATIONS_DIR}")
    return head


def _current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def current_revision(url: str) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    engine = make_engine(url)
    try:
        return _current(engine)
    finally:
        engine.dispose()


def schema_status(url: str) -> SchemaStatus:
    """'empty' (nothing migrated yet), 'up_to_date' (at head) or 'outdated' (needs ``upgrade``)."""
    engine = make_engine(url)
    try:
        current = _current(engine)
        if current is None:
            # Tables without a version row are someone else's schema or a half-done manual setup: outdated.
            with engine.connect() as connection:
                tables = set(inspect(connection).get_table_names())
            return "outdated" if tables & _our_tables() else "empty"
        return "up_to_date" if current == head_revision() else "outdated"
    finally:
        engine.dispose()


def _our_tables() -> set[str]:
    from ccserver.db.models import Base

    return set(Base.metadata.tables)
