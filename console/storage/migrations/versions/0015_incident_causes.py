"""the causes of an incident: one row per cause (an incident may have several at once),
and the cause each stored hypothesis belongs to

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "causes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("fault_class", sa.String(length=64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("signals", sa.Integer(), nullable=False),
        sa.Column("keys", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_causes_incident_id_incidents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_causes")),
        sa.UniqueConstraint("incident_id", "ordinal", name=op.f("uq_causes_incident_id")),
    )
    with op.batch_alter_table("causes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_causes_incident_id"), ["incident_id"],
                              unique=False)
    with op.batch_alter_table("hypotheses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cause", sa.Integer(), nullable=False,
                                      server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("hypotheses", schema=None) as batch_op:
        batch_op.drop_column("cause")
    with op.batch_alter_table("causes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_causes_incident_id"))
    op.drop_table("causes")
