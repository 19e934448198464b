"""team members: what kind of member each is (a window or an engine)

A window that runs no agents of its own follows an engine process; the engine reads which
windows are connected to know when the last one has closed.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("team_members",
                  sa.Column("kind", sa.String(length=64), nullable=False,
                            server_default="console"))


def downgrade() -> None:
    with op.batch_alter_table("team_members") as batch:
        batch.drop_column("kind")
