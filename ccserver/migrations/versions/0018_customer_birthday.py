"""A customer's birthday (nullable): imported from the CRM, shown on the screen-pop card as a care reminder.

Revision ID: 0018_customer_birthday
Revises: 0017_campaigns_more
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_customer_birthday"
down_revision = "0017_campaigns_more"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("birthday", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("birthday")
