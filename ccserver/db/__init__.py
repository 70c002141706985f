"""SQL system of record: ORM models, engine/session helpers, programmatic migrations."""

from __future__ import annotations
