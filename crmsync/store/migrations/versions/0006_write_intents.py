"""Write intents: a write recorded before it is made, settled with its link.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "write_intents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rep_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("intent_key", sa.Text(), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("crm_id", sa.Text(), nullable=True),
        sa.Column("mail_id", sa.Text(), nullable=True),
        sa.Column("source_version", sa.Text(), nullable=False),
        sa.Column("source_hash", sa.Text(), nullable=False),
        sa.Column("previous_hash", sa.Text(), nullable=True),
        sa.Column("replaces", sa.Text(), nullable=True),
        sa.Column("previous_version", sa.Text(), nullable=True),
        sa.Column("target_cursor", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_write_intents")),
        sa.UniqueConstraint(
            "rep_id",
            "kind",
            "intent_key",
            name=op.f("uq_write_intents_rep_id_kind_intent_key"),
        ),
    )


def downgrade() -> None:
    op.drop_table("write_intents")
