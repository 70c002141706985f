"""Administration: a user may be made to choose a new password at the next login.

Revision ID: 0013_admin
Revises: 0009_kpi
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_admin"
down_revision = "0009_kpi"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("must_change_password")
