"""Alembic migration scripts, run programmatically by ccserver.db.migrate (no alembic.ini)."""
