"""A version number per org, moved by every save of its settings, CRM section or
configurations: a process keeps them in memory and reads them again only when it moved.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "settings_versions",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_settings_versions")),
    )


def downgrade() -> None:
    op.drop_table("settings_versions")
