"""The org's CRM section (built-in or Salesforce) and the CRM API calls made per hour.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crm_settings",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_crm_settings")),
    )
    op.create_table(
        "crm_api_calls",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("cycles", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("hour", name=op.f("pk_crm_api_calls")),
    )


def downgrade() -> None:
    op.drop_table("crm_api_calls")
    op.drop_table("crm_settings")
