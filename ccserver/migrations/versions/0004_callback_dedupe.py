"""Callback de-duplication: tickets.dedupe_key, unique where set (a partial unique index).

Set only on callback requests ("callback:<e164>:<local day the callback is due>"), so two requests for the
same number and day — however concurrent — make one ticket: the insert is INSERT … ON CONFLICT DO NOTHING.

Revision ID: 0004_callback_dedupe
Revises: 0003_survey
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_callback_dedupe"
down_revision = "0003_survey"
branch_labels = None
depends_on = None

WHERE_SET = sa.text("dedupe_key IS NOT NULL")


def upgrade() -> None:
    op.add_column("tickets", sa.Column("dedupe_key", sa.String(length=120), nullable=True))
    op.create_index("ix_tickets_dedupe_key", "tickets", ["dedupe_key"], unique=True,
                    postgresql_where=WHERE_SET, sqlite_where=WHERE_SET)


def downgrade() -> None:
    op.drop_index("ix_tickets_dedupe_key", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("dedupe_key")
