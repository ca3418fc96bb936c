"""Mass-delete guard: when an admin confirmed a rep's held-back deletions.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reps") as batch:
        batch.add_column(sa.Column("deletes_confirmed_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("reps") as batch:
        batch.drop_column("deletes_confirmed_at")
