"""Admin console: local admin accounts, sessions, API tokens and failed sign-ins.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admins",
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_admins")),
    )
    for table in ("admin_sessions", "api_tokens"):
        columns = [
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("username", sa.String(length=128), nullable=False),
        ]
        if table == "admin_sessions":
            columns += [
                sa.Column("csrf_token", sa.String(length=64), nullable=False),
                sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            ]
        else:
            columns += [
                sa.Column("name", sa.Text(), nullable=False),
                sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            ]
        op.create_table(
            table,
            *columns,
            sa.ForeignKeyConstraint(
                ["username"],
                ["admins.username"],
                name=op.f(f"fk_{table}_username_admins"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("token_hash", name=op.f(f"pk_{table}")),
        )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_key_at"), "login_failures", ["key", "at"])


def downgrade() -> None:
    for table in ("login_failures", "api_tokens", "admin_sessions", "admins"):
        op.drop_table(table)
