"""anchored chain: rule set approvals, checkpoints, admin audit

Revision ID: b5b4bb070605
Revises: b4c3aaf60504
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import ledger.timeutil
from alembic import op

revision: str = "b5b4bb070605"
down_revision: str | None = "b4c3aaf60504"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_rule_set") as batch:
        batch.add_column(sa.Column("created_by_org_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("approved_by_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("approved_at", ledger.timeutil.UTCDateTime(timezone=True), nullable=True))
    # The rule sets saved before this revision were in force at once: they stay in force.
    op.execute("UPDATE ledger_rule_set SET approved_at = created_at")
    op.create_table(
        "ledger_checkpoint",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("chain", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("journal_count", sa.Integer(), nullable=False),
        sa.Column("journal_head", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("audit_count", sa.Integer(), nullable=False),
        sa.Column("audit_head", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("signed_at", ledger.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.Column("public_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("signature", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("chain", "journal_count", "audit_count", name="uq_ledger_checkpoint_head"),
    )
    with op.batch_alter_table("ledger_checkpoint") as batch:
        batch.create_index(batch.f("ix_ledger_checkpoint_chain"), ["chain"], unique=False)
    op.create_table(
        "ledger_network_event",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", ledger.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("actor_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("seq", name="uq_ledger_network_event_seq"),
    )
    op.create_table(
        "ledger_network_head",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("head_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("ledger_network_head")
    op.drop_table("ledger_network_event")
    with op.batch_alter_table("ledger_checkpoint") as batch:
        batch.drop_index(batch.f("ix_ledger_checkpoint_chain"))
    op.drop_table("ledger_checkpoint")
    with op.batch_alter_table("ledger_rule_set") as batch:
        batch.drop_column("approved_at")
        batch.drop_column("approved_by_user_id")
        batch.drop_column("created_by_org_id")
