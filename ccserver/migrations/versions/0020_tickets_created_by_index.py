"""An index on tickets.created_by: an agent's "my tickets" (``GET /api/tickets?mine=1``) reads the tickets they
opened as well as those assigned to them.

Revision ID: 0020_tickets_created_by
Revises: 0019_customer_birthday
"""

from __future__ import annotations

from alembic import op

revision = "0020_tickets_created_by"
down_revision = "0019_customer_birthday"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tickets_created_by", "tickets", ["created_by"])


def downgrade() -> None:
    op.drop_index("ix_tickets_created_by", table_name="tickets")
