"""Alembic environment: uses the connection handed over by ccserver.db.migrate (or a URL for --sql)."""

from __future__ import annotations

from alembic import context

from ccserver.db.models import Base

config = context.config
target_metadata = Base.metadata


def _configure_common() -> dict:
    return {
        "target_metadata": target_metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead. Harmless elsewhere.
        "render_as_batch": True,
        "compare_type": True,
    }


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **_configure_common())
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through ccserver.db.migrate, which passes a connection")
    # No version_table_schema: the version table lands in the connection's current schema (search_path),
    # like every other table, so one database can hold several ccserver schemas.
    context.configure(connection=connection, **_configure_common())
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
