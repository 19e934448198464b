"""log lines looked up by service and time together (the investigator's new-template
query filters both; one index on each made it read every line of the window)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_log_records_service_at", "log_records", ["service", "at"])
    op.drop_index(op.f("ix_log_records_service"), table_name="log_records")


def downgrade() -> None:
    op.create_index(op.f("ix_log_records_service"), "log_records", ["service"])
    op.drop_index("ix_log_records_service_at", table_name="log_records")
