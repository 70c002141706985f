"""Routing: tier cut-offs of the last score recompute, and the log of routing decisions.

Revision ID: 0002_routing
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_routing"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SCORE = sa.Numeric(precision=8, scale=2, asdecimal=False)


def upgrade() -> None:
    op.create_table(
        "value_cutoffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("diamond", SCORE, nullable=False),
        sa.Column("gold", SCORE, nullable=False),
        sa.Column("silver", SCORE, nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_value_cutoffs"),
    )
    op.create_index("ix_value_cutoffs_computed_at", "value_cutoffs", ["computed_at"])
    op.create_table(
        "routing_decisions",
        sa.Column("decision_id", sa.String(length=64), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("server", sa.String(length=64), nullable=True),
        sa.Column("uniqueid", sa.String(length=64), nullable=True),
        sa.Column("caller_raw", sa.String(length=64), nullable=True),
        sa.Column("caller_e164", sa.String(length=20), nullable=True),
        sa.Column("dialed", sa.String(length=32), nullable=True),
        sa.Column("customer_id", BIG_ID, nullable=True),
        sa.Column("tier", sa.String(length=10), nullable=True),
        sa.Column("queue", sa.String(length=80), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("preferred_agent_interface", sa.String(length=80), nullable=True),
        sa.Column("ewt_seconds", sa.Integer(), nullable=True),
        sa.Column("callback_offer", sa.Boolean(), nullable=False),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Numeric(precision=10, scale=3, asdecimal=False), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=True),
        sa.Column("variables", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_routing_decisions_customer_id_customers",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("decision_id", name="pk_routing_decisions"),
    )
    op.create_index("ix_routing_decisions_made_at", "routing_decisions", ["made_at"])
    op.create_index("ix_routing_decisions_uniqueid", "routing_decisions", ["uniqueid"])
    op.create_index("ix_routing_decisions_customer_id", "routing_decisions", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_routing_decisions_customer_id", table_name="routing_decisions")
    op.drop_index("ix_routing_decisions_uniqueid", table_name="routing_decisions")
    op.drop_index("ix_routing_decisions_made_at", table_name="routing_decisions")
    op.drop_table("routing_decisions")
    op.drop_index("ix_value_cutoffs_computed_at", table_name="value_cutoffs")
    op.drop_table("value_cutoffs")
