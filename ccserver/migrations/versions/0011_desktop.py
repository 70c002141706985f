"""Agent desktop: notes, dispositions and click-to-dial records on calls (call_notes).

Revision ID: 0011_desktop
Revises: 0009_kpi
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_desktop"
down_revision = "0009_kpi"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "call_notes",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("server", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", BIG_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('note', 'disposition', 'dial')", name="ck_call_notes_kind"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_call_notes_user_id_users", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name="fk_call_notes_ticket_id_tickets",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_call_notes"),
    )
    op.create_index("ix_call_notes_uniqueid", "call_notes", ["uniqueid"])
    op.create_index("ix_call_notes_user_id", "call_notes", ["user_id"])
    op.create_index("ix_call_notes_ticket_id", "call_notes", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_call_notes_ticket_id", table_name="call_notes")
    op.drop_index("ix_call_notes_user_id", table_name="call_notes")
    op.drop_index("ix_call_notes_uniqueid", table_name="call_notes")
    op.drop_table("call_notes")
