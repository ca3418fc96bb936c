"""Error report: a repeated failure is one row with a count and its first time.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("errors") as batch:
        batch.add_column(sa.Column("first_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("occurrences", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("errors") as batch:
        batch.drop_column("occurrences")
        batch.drop_column("first_at")
