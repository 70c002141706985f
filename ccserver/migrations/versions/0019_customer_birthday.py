"""A customer's birthday (nullable): imported from the CRM, shown on the screen-pop card as a care reminder.

Revision ID: 0019_customer_birthday
Revises: 0018_dialer
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_customer_birthday"
down_revision = "0018_dialer"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("birthday", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("birthday")
