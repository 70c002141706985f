"""Post-call survey results (a 1-5 score keyed in after the agent hung up).

Revision ID: 0003_survey
Revises: 0002_routing
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_survey"
down_revision = "0002_routing"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "survey_results",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("decision_id", sa.String(length=64), nullable=True),
        sa.Column("uniqueid", sa.String(length=64), nullable=True),
        sa.Column("server", sa.String(length=64), nullable=True),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name="ck_survey_results_score"),
        sa.PrimaryKeyConstraint("id", name="pk_survey_results"),
    )
    op.create_index("ix_survey_results_decision_id", "survey_results", ["decision_id"])
    op.create_index("ix_survey_results_uniqueid", "survey_results", ["uniqueid"])
    op.create_index("ix_survey_results_at", "survey_results", ["at"])


def downgrade() -> None:
    op.drop_index("ix_survey_results_at", table_name="survey_results")
    op.drop_index("ix_survey_results_uniqueid", table_name="survey_results")
    op.drop_index("ix_survey_results_decision_id", table_name="survey_results")
    op.drop_table("survey_results")
