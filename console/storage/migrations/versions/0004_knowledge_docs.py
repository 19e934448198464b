"""knowledge documents (imported Markdown runbooks)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "knowledge_docs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("alert", sa.String(length=200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_docs")),
        sa.UniqueConstraint("digest", name=op.f("uq_knowledge_docs_digest")),
    )
    op.create_index(op.f("ix_knowledge_docs_alert"), "knowledge_docs", ["alert"])


def downgrade() -> None:
    op.drop_index(op.f("ix_knowledge_docs_alert"), table_name="knowledge_docs")
    op.drop_table("knowledge_docs")
