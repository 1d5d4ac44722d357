"""travel linked to a hold or placement, recurring travel

Revision ID: e8b0f8000008
Revises: d6f0f6000006
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "e8b0f8000008"
down_revision: str | None = "d6f0f6000006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Columns added in place (no table copy on SQLite: the requests' items, approvals and payments refer to it).
    with op.batch_alter_table("ledger_disbursement", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hold_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("placement_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("trips_max", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("trips_drawn", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "ledger_trip",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("disbursement_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("trip_date", sa.Date(), nullable=False),
        sa.Column("entry_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("actor_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idempotency_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.CheckConstraint("amount_cents > 0", name="ck_ledger_trip_positive"),
        sa.ForeignKeyConstraint(["disbursement_id"], ["ledger_disbursement.id"]),
        sa.ForeignKeyConstraint(["entry_id"], ["ledger_journal_entry.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("disbursement_id", "seq", name="uq_ledger_trip_seq"),
        sa.UniqueConstraint("idempotency_user_id", "idempotency_key", name="uq_ledger_trip_idempotency"),
    )
    with op.batch_alter_table("ledger_trip", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_trip_disbursement_id"), ["disbursement_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ledger_trip", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_trip_disbursement_id"))
    op.drop_table("ledger_trip")
    with op.batch_alter_table("ledger_disbursement", schema=None) as batch_op:
        batch_op.drop_column("trips_drawn")
        batch_op.drop_column("trips_max")
        batch_op.drop_column("placement_id")
        batch_op.drop_column("hold_id")
