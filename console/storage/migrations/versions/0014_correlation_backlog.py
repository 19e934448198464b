"""the correlation backlog: stored deliveries whose signals are not correlated yet (the
receiver answers before it correlates; a crash in between must not lose them)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "correlation_backlog",
        sa.Column("delivery_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["inbound_payloads.id"],
                                name=op.f("fk_correlation_backlog_delivery_id_inbound_payloads")),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_correlation_backlog")),
    )


def downgrade() -> None:
    op.drop_table("correlation_backlog")
