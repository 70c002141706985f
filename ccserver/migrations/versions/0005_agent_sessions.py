"""Agent sign-in: which agent is signed in to which queues, from which phone (interface), on which Asterisk.

Revision ID: 0005_agent_sessions
Revises: 0004_callback_dedupe
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_agent_sessions"
down_revision = "0004_callback_dedupe"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = sa.text("ended_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "agent_sessions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("extension", sa.String(length=20), nullable=False),
        sa.Column("interface", sa.String(length=80), nullable=False),
        sa.Column("state_interface", sa.String(length=80), nullable=True),
        sa.Column("member_name", sa.String(length=120), nullable=False),
        sa.Column("server", sa.String(length=64), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("pause_reason", sa.String(length=40), nullable=True),
        sa.Column("auth_session_id", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(length=64), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_agent_sessions_user_id_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_agent_sessions"),
    )
    # One live sign-in per extension and per phone; ended sessions stay as history.
    op.create_index("ix_agent_sessions_active_extension", "agent_sessions", ["extension"], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    op.create_index("ix_agent_sessions_active_interface", "agent_sessions", ["server", "interface"], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    op.create_index("ix_agent_sessions_user_id", "agent_sessions", ["user_id"])
    op.create_index("ix_agent_sessions_auth_session_id", "agent_sessions", ["auth_session_id"])
    op.create_index("ix_agent_sessions_started_at", "agent_sessions", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_agent_sessions_started_at", table_name="agent_sessions")
    op.drop_index("ix_agent_sessions_auth_session_id", table_name="agent_sessions")
    op.drop_index("ix_agent_sessions_user_id", table_name="agent_sessions")
    op.drop_index("ix_agent_sessions_active_interface", table_name="agent_sessions")
    op.drop_index("ix_agent_sessions_active_extension", table_name="agent_sessions")
    op.drop_table("agent_sessions")
