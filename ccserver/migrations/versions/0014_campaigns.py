"""Outbound campaigns: campaigns, their targets and attempts, the number-level do-not-call list.

Revision ID: 0014_campaigns
Revises: 0013_admin (re-chained at the merge of main; was 0009_kpi)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_campaigns"
down_revision = "0013_admin"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)

TYPES = ("return_visit", "satisfaction", "maintenance", "insurance", "member_event", "complaint_callback",
         "callback_request", "abandoned_caller")
MODES = ("preview", "progressive", "predictive")
STATUSES = ("draft", "running", "paused", "finished")
TARGET_STATUSES = ("pending", "active", "done", "dropped")
OUTCOMES = ("busy", "no_answer", "failed", "machine", "abandoned", "reached", "refused", "invalid")


def _in(column: str, values: tuple[str, ...], nullable: bool = False) -> sa.CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    sql = f"{column} IN ({listed})"
    return sa.CheckConstraint(f"{column} IS NULL OR {sql}" if nullable else sql, name=column)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("mode", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("queue", sa.String(length=80), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("window", sa.JSON(), nullable=False),
        sa.Column("targets_spec", sa.JSON(), nullable=False),
        sa.Column("tiers_first", sa.Boolean(), nullable=False),
        sa.Column("max_attempts", sa.SmallInteger(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("started_at", WHEN, nullable=True),
        _in("type", TYPES), _in("mode", MODES), _in("status", STATUSES),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name="fk_campaigns_store_id_stores", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name="fk_campaigns_created_by_users",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
    )
    op.create_index("ix_campaigns_status", "campaigns", ["status"])
    op.create_index("ix_campaigns_store_id", "campaigns", ["store_id"])
    op.create_table(
        "campaign_targets",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("campaign_id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=True),
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("tier", sa.String(length=10), nullable=True),
        sa.Column("order_at", WHEN, nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("last_outcome", sa.String(length=12), nullable=True),
        sa.Column("last_attempt_at", WHEN, nullable=True),
        sa.Column("next_attempt_at", WHEN, nullable=True),
        sa.Column("drop_reason", sa.String(length=24), nullable=True),
        _in("status", TARGET_STATUSES),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_campaign_targets_campaign_id_campaigns",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_campaign_targets_customer_id_customers",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_targets"),
        sa.UniqueConstraint("campaign_id", "e164", name="uq_campaign_targets_campaign_id_e164"),
    )
    op.create_index("ix_campaign_targets_campaign_id_status", "campaign_targets", ["campaign_id", "status"])
    op.create_index("ix_campaign_targets_customer_id", "campaign_targets", ["customer_id"])
    op.create_table(
        "campaign_attempts",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("campaign_id", BIG_ID, nullable=False),
        sa.Column("target_id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=True),
        sa.Column("action_id", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=120), nullable=True),
        sa.Column("server", sa.String(length=64), nullable=True),
        sa.Column("uniqueid", sa.String(length=64), nullable=True),
        sa.Column("originated_at", WHEN, nullable=False),
        sa.Column("answered_at", WHEN, nullable=True),
        sa.Column("ended_at", WHEN, nullable=True),
        sa.Column("outcome", sa.String(length=12), nullable=True),
        sa.Column("agent_interface", sa.String(length=80), nullable=True),
        sa.Column("disposition", sa.String(length=40), nullable=True),
        sa.Column("ticket_id", BIG_ID, nullable=True),
        _in("outcome", OUTCOMES, nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_campaign_attempts_campaign_id_campaigns",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["target_id"], ["campaign_targets.id"],
                                name="fk_campaign_attempts_target_id_campaign_targets", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name="fk_campaign_attempts_customer_id_customers", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name="fk_campaign_attempts_ticket_id_tickets",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_attempts"),
        sa.UniqueConstraint("action_id", name="uq_campaign_attempts_action_id"),
    )
    op.create_index("ix_campaign_attempts_campaign_id_originated_at", "campaign_attempts",
                    ["campaign_id", "originated_at"])
    op.create_index("ix_campaign_attempts_target_id", "campaign_attempts", ["target_id"])
    op.create_index("ix_campaign_attempts_customer_id", "campaign_attempts", ["customer_id"])
    op.create_table(
        "dnc_numbers",
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("added_at", WHEN, nullable=False),
        sa.Column("added_by", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["added_by"], ["users.id"], name="fk_dnc_numbers_added_by_users", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("e164", name="pk_dnc_numbers"),
    )


def downgrade() -> None:
    op.drop_table("dnc_numbers")
    op.drop_index("ix_campaign_attempts_customer_id", table_name="campaign_attempts")
    op.drop_index("ix_campaign_attempts_target_id", table_name="campaign_attempts")
    op.drop_index("ix_campaign_attempts_campaign_id_originated_at", table_name="campaign_attempts")
    op.drop_table("campaign_attempts")
    op.drop_index("ix_campaign_targets_customer_id", table_name="campaign_targets")
    op.drop_index("ix_campaign_targets_campaign_id_status", table_name="campaign_targets")
    op.drop_table("campaign_targets")
    op.drop_index("ix_campaigns_store_id", table_name="campaigns")
    op.drop_index("ix_campaigns_status", table_name="campaigns")
    op.drop_table("campaigns")
