"""Dialer: attempts written ahead of their Originate (``sent_at`` stays empty until the Originate left), and two
outcomes — ``unsent`` (written ahead, never sent: not an attempt) and ``undisposed`` (a preview call that ended
without the agent's disposition).

Revision ID: 0018_dialer
Revises: 0017_campaigns_more
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_dialer"
down_revision = "0017_campaigns_more"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)
OLD = ("busy", "no_answer", "failed", "machine", "abandoned", "reached", "refused", "invalid")
NEW = OLD + ("unsent", "undisposed")


def _in(values: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"outcome IS NULL OR outcome IN ({listed})"


def upgrade() -> None:
    with op.batch_alter_table("campaign_attempts") as batch:
        batch.add_column(sa.Column("sent_at", WHEN, nullable=True))
        batch.drop_constraint("outcome", type_="check")
        batch.create_check_constraint("outcome", _in(NEW))
    # Every attempt written so far was written just before its Originate: count it as sent.
    op.execute("UPDATE campaign_attempts SET sent_at = originated_at")


def downgrade() -> None:
    op.execute("DELETE FROM campaign_attempts WHERE outcome = 'unsent'")
    op.execute("UPDATE campaign_attempts SET outcome = 'failed' WHERE outcome = 'undisposed'")
    with op.batch_alter_table("campaign_attempts") as batch:
        batch.drop_constraint("outcome", type_="check")
        batch.create_check_constraint("outcome", _in(OLD))
        batch.drop_column("sent_at")
