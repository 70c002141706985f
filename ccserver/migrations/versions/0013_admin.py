"""Administration: a user may be made to choose a new password at the next login; settings changed by an admin
(the routing rules) that override the config file.

Revision ID: 0013_admin
Revises: 0011_desktop
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_admin"
down_revision = "0011_desktop"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "admin_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_admin_settings")),
    )


def downgrade() -> None:
    op.drop_table("admin_settings")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("must_change_password")
