"""Preview mode: a campaign's own call script, and which agent holds a preview target until when.

Revision ID: 0017_campaigns_more
Revises: 0014_campaigns
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_campaigns_more"
down_revision = "0014_campaigns"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("script", sa.Text(), nullable=True))
    with op.batch_alter_table("campaign_targets") as batch:
        batch.add_column(sa.Column("held_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("held_until", WHEN, nullable=True))
        batch.create_foreign_key("fk_campaign_targets_held_by_users", "users", ["held_by"], ["id"],
                                 ondelete="SET NULL")
    op.create_index("ix_campaign_targets_held_by", "campaign_targets", ["held_by"])


def downgrade() -> None:
    op.drop_index("ix_campaign_targets_held_by", table_name="campaign_targets")
    with op.batch_alter_table("campaign_targets") as batch:
        batch.drop_constraint("fk_campaign_targets_held_by_users", type_="foreignkey")
        batch.drop_column("held_until")
        batch.drop_column("held_by")
    op.drop_column("campaigns", "script")
