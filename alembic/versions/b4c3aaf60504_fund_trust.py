"""fund trust: caps, exceptions, idempotent approvals and cases

Revision ID: b4c3aaf60504
Revises: b3d2b9e5f403
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "b4c3aaf60504"
down_revision: str | None = "b3d2b9e5f403"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXCEPTIONS_ACCOUNT = "expenses:exceptions"


def upgrade() -> None:
    with op.batch_alter_table("ledger_case") as batch:
        batch.add_column(sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.create_unique_constraint("uq_ledger_case_idempotency", ["created_by_user_id", "idempotency_key"])
        batch.create_index("ix_ledger_case_creator_created", ["created_by_user_id", "created_at"])
    with op.batch_alter_table("ledger_approval") as batch:
        batch.add_column(sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.create_unique_constraint("uq_ledger_approval_idempotency", ["approver_id", "idempotency_key"])
    with op.batch_alter_table("ledger_card_transaction") as batch:
        batch.add_column(sa.Column("exception", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Every existing fund gets the exceptions account (new funds are created with it).
    conn = op.get_bind()
    funds = conn.execute(
        sa.text(
            "SELECT f.id FROM ledger_fund f WHERE NOT EXISTS "
            "(SELECT 1 FROM ledger_account a WHERE a.fund_id = f.id AND a.code = :code)"
        ),
        {"code": EXCEPTIONS_ACCOUNT},
    ).scalars()
    for fund_id in list(funds):
        account_id = uuid.uuid4().hex
        conn.execute(
            sa.text("INSERT INTO ledger_account (id, fund_id, code, kind) VALUES (:id, :fund, :code, 'EXPENSE')"),
            {"id": account_id, "fund": fund_id, "code": EXCEPTIONS_ACCOUNT},
        )
        conn.execute(
            sa.text(
                "INSERT INTO ledger_account_balance (account_id, fund_id, balance_cents, committed_cents) "
                "VALUES (:id, :fund, 0, 0)"
            ),
            {"id": account_id, "fund": fund_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_card_transaction") as batch:
        batch.drop_column("exception")
    with op.batch_alter_table("ledger_approval") as batch:
        batch.drop_constraint("uq_ledger_approval_idempotency", type_="unique")
        batch.drop_column("request_hash")
        batch.drop_column("idempotency_key")
    with op.batch_alter_table("ledger_case") as batch:
        batch.drop_index("ix_ledger_case_creator_created")
        batch.drop_constraint("uq_ledger_case_idempotency", type_="unique")
        batch.drop_column("request_hash")
        batch.drop_column("idempotency_key")
