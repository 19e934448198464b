"""governed execution: who asked, risk and autonomy on recommendations; approvals bound
to a preview with an expiry; executions with their stored plan, step counter and
validation deadline

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def _columns() -> dict[str, list[sa.Column]]:
    """Fresh Column objects each call (a Column belongs to one table once added)."""
    return {
        "recommendations": [
            sa.Column("requester", sa.String(200), nullable=False, server_default=""),
            sa.Column("action_class", sa.String(64), nullable=False, server_default=""),
            sa.Column("risk", sa.String(16), nullable=False, server_default="medium"),
            sa.Column("autonomous", sa.Boolean(), nullable=False, server_default=sa.false()),
        ],
        "approvals": [
            sa.Column("role", sa.String(64), nullable=False, server_default=""),
            sa.Column("expires_at", UTC, nullable=True),
            sa.Column("void", sa.Boolean(), nullable=False, server_default=sa.false()),
        ],
        "executions": [
            sa.Column("runbook_id", sa.String(128), nullable=False, server_default=""),
            sa.Column("plan", sa.JSON(), nullable=False, server_default="{}"),
            sa.Column("step", sa.Integer(), nullable=False, server_default="0"),
            sa.Column("validate_by", UTC, nullable=True),
        ],
    }


def upgrade() -> None:
    for table, columns in _columns().items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.add_column(column)


def downgrade() -> None:
    for table, columns in _columns().items():
        with op.batch_alter_table(table) as batch:
            for column in reversed(columns):
                batch.drop_column(column.name)
