"""Initial schema: links, cursors, error report, rep statuses, activity, settings, secrets.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 22:11:23.335220
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activity",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "hour", name=op.f("pk_activity")),
    )
    op.create_table(
        "cursors",
        sa.Column("rep_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("side", sa.String(length=16), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("rep_id", "kind", "side", name=op.f("pk_cursors")),
    )
    op.create_table(
        "errors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rep_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("item_id", sa.Text(), nullable=True),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("error_type", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("suggestion", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_errors")),
    )
    with op.batch_alter_table("errors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_errors_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_errors_rep_id_at"), ["rep_id", "at"], unique=False)

    op.create_table(
        "links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rep_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("crm_id", sa.Text(), nullable=False),
        sa.Column("mail_id", sa.Text(), nullable=False),
        sa.Column("crm_version", sa.Text(), nullable=False),
        sa.Column("mail_version", sa.Text(), nullable=False),
        sa.Column("crm_hash", sa.Text(), nullable=False),
        sa.Column("mail_hash", sa.Text(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_links")),
        sa.UniqueConstraint("rep_id", "kind", "crm_id", name=op.f("uq_links_rep_id_kind_crm_id")),
        sa.UniqueConstraint("rep_id", "kind", "mail_id", name=op.f("uq_links_rep_id_kind_mail_id")),
    )
    op.create_table(
        "org_settings",
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_org_settings")),
    )
    op.create_table(
        "reps",
        sa.Column("rep_id", sa.Text(), nullable=False),
        sa.Column("mailbox_supported", sa.Boolean(), nullable=True),
        sa.Column("recognized", sa.Boolean(), nullable=True),
        sa.Column("contacts_folder_found", sa.Boolean(), nullable=True),
        sa.Column("calendar_found", sa.Boolean(), nullable=True),
        sa.Column("addresses_linked", sa.Boolean(), nullable=True),
        sa.Column("last_cycle_started", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_cycle_finished", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("reset_status", sa.String(length=32), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fence", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("rep_id", name=op.f("pk_reps")),
    )
    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reps_next_due"), ["next_due"], unique=False)

    op.create_table(
        "secrets",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("token", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_secrets")),
    )
    op.create_table(
        "sync_configs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_configs")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_sync_configs_org_id_name")),
    )
    op.create_table(
        "config_assignments",
        sa.Column("config_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["config_id"],
            ["sync_configs.id"],
            name=op.f("fk_config_assignments_config_id_sync_configs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "config_id", "subject", "subject_id", name=op.f("pk_config_assignments")
        ),
        sa.UniqueConstraint(
            "org_id",
            "subject",
            "subject_id",
            name=op.f("uq_config_assignments_org_id_subject_subject_id"),
        ),
    )
    op.create_table(
        "sync_statuses",
        sa.Column("rep_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["rep_id"],
            ["reps.rep_id"],
            name=op.f("fk_sync_statuses_rep_id_reps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("rep_id", "kind", "direction", name=op.f("pk_sync_statuses")),
    )


def downgrade() -> None:
    op.drop_table("sync_statuses")
    op.drop_table("config_assignments")
    op.drop_table("sync_configs")
    op.drop_table("secrets")
    with op.batch_alter_table("reps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reps_next_due"))

    op.drop_table("reps")
    op.drop_table("org_settings")
    op.drop_table("links")
    with op.batch_alter_table("errors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_errors_rep_id_at"))
        batch_op.drop_index(batch_op.f("ix_errors_at"))

    op.drop_table("errors")
    op.drop_table("cursors")
    op.drop_table("activity")
