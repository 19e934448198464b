"""causes.zone: the zone a zone-wide cause stands for

A partition of one zone shows on every service with instances there; the investigator
names the cause as the zone, and the console shows that name instead of whichever
service happened to lead the ranking.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("causes") as batch:
        batch.add_column(sa.Column("zone", sa.String(length=64), nullable=False,
                                   server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("causes") as batch:
        batch.drop_column("zone")
