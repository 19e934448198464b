"""metric_samples: the estate's recent metrics, for every console of a team

The leading console writes each snapshot of the estate's metrics in batches; the others
read them when the change feed names them, so their Services and Metrics panes and the
incident plot show what the leader's do.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_samples",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_samples")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_metric_samples_at"), "metric_samples", ["at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_metric_samples_at"), table_name="metric_samples")
    op.drop_table("metric_samples")
