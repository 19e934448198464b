"""assessment details: the claimed and evidence levels, the rest of the placement (traps,
next steps, per-level checks, a shadow replay) and an index on the time, for the trend

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assessments") as batch:
        batch.add_column(sa.Column("claimed_level", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("evidence_level", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("details", sa.JSON(), nullable=False, server_default="{}"))
        batch.create_index(batch.f("ix_assessments_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("assessments") as batch:
        batch.drop_index(batch.f("ix_assessments_at"))
        batch.drop_column("details")
        batch.drop_column("evidence_level")
        batch.drop_column("claimed_level")
