"""team mode: the change feed every console follows, and the team's members (who leads)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "change_feed",
        # bigint identity on PostgreSQL; SQLite needs INTEGER PRIMARY KEY AUTOINCREMENT
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True, nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("operation", sa.String(length=200), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("initiator", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_change_feed")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_change_feed_at"), "change_feed", ["at"])
    op.create_table(
        "team_members",
        sa.Column("console_id", sa.String(length=200), nullable=False),
        sa.Column("user", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("heartbeat_at", UTC, nullable=False),
        sa.Column("leader_since", UTC, nullable=True),
        sa.PrimaryKeyConstraint("console_id", name=op.f("pk_team_members")),
    )
    op.create_index(op.f("ix_team_members_heartbeat_at"), "team_members", ["heartbeat_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_team_members_heartbeat_at"), table_name="team_members")
    op.drop_table("team_members")
    op.drop_index(op.f("ix_change_feed_at"), table_name="change_feed")
    op.drop_table("change_feed")
