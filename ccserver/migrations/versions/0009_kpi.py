"""KPI interval rows: per queue and per agent, one row per 15-minute interval and Asterisk server.

Revision ID: 0009_kpi
Revises: 0005_agent_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_kpi"
down_revision = "0006_tickets"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SECONDS = sa.Numeric(14, 3, asdecimal=False)


def _counts(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def _seconds(*names: str) -> list[sa.Column]:
    return [sa.Column(name, SECONDS, nullable=False) for name in names]


def upgrade() -> None:
    op.create_table(
        "kpi_queue_intervals",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("server", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=80), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sl_threshold", sa.Numeric(8, 2, asdecimal=False), nullable=False),
        *_counts("offered", "answered", "abandoned", "short_abandoned", "unanswered", "answered_in_sl"),
        *_seconds("wait_answered", "wait_abandoned", "max_wait"),
        *_counts("handled"),
        *_seconds("talk", "wrapup"),
        *_counts("transfers", "callbacks"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_kpi_queue_intervals"),
        sa.UniqueConstraint("server", "queue", "interval_start", name="uq_kpi_queue_intervals_slot"),
    )
    op.create_index("ix_kpi_queue_intervals_interval_start", "kpi_queue_intervals", ["interval_start"])
    op.create_index("ix_kpi_queue_intervals_day", "kpi_queue_intervals", ["day"])
    op.create_table(
        "kpi_agent_intervals",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("server", sa.String(length=64), nullable=False),
        sa.Column("interface", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *_counts("handled"),
        *_seconds("talk"),
        *_counts("transfers", "missed"),
        *_seconds("available", "ringing", "talking", "wrapup", "paused"),
        sa.Column("paused_by_reason", sa.JSON(), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_kpi_agent_intervals"),
        sa.UniqueConstraint("server", "interface", "interval_start", name="uq_kpi_agent_intervals_slot"),
    )
    op.create_index("ix_kpi_agent_intervals_interval_start", "kpi_agent_intervals", ["interval_start"])
    op.create_index("ix_kpi_agent_intervals_day", "kpi_agent_intervals", ["day"])


def downgrade() -> None:
    op.drop_index("ix_kpi_agent_intervals_day", table_name="kpi_agent_intervals")
    op.drop_index("ix_kpi_agent_intervals_interval_start", table_name="kpi_agent_intervals")
    op.drop_table("kpi_agent_intervals")
    op.drop_index("ix_kpi_queue_intervals_day", table_name="kpi_queue_intervals")
    op.drop_index("ix_kpi_queue_intervals_interval_start", table_name="kpi_queue_intervals")
    op.drop_table("kpi_queue_intervals")
