"""fund requests with several items

Revision ID: d1a0f1000001
Revises: c7b2e3f40802
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "d1a0f1000001"
down_revision: str | None = "c7b2e3f40802"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INTERPRETATION_ACCOUNT = "expenses:interpretation"


def upgrade() -> None:
    with op.batch_alter_table("ledger_disbursement", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decided_by", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    op.create_table(
        "ledger_disbursement_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("disbursement_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("nights", sa.Integer(), nullable=True),
        sa.Column("payee", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint("amount_cents > 0", name="ck_ledger_disbursement_item_positive"),
        sa.ForeignKeyConstraint(["disbursement_id"], ["ledger_disbursement.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("disbursement_id", "position", name="uq_ledger_disbursement_item_position"),
    )
    with op.batch_alter_table("ledger_disbursement_item", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_disbursement_item_disbursement_id"), ["disbursement_id"], unique=False
        )
    # Every request made before items existed becomes a request of one item.
    op.execute(
        "INSERT INTO ledger_disbursement_item (disbursement_id, position, category, amount_cents, nights, payee, note) "
        "SELECT id, 0, category, amount_cents, nights, payee, '' FROM ledger_disbursement"
    )
    # The `interpretation` category posts to an expense account every existing fund now needs.
    bind = op.get_bind()
    funds = bind.execute(
        sa.text("SELECT id FROM ledger_fund WHERE id NOT IN (SELECT fund_id FROM ledger_account WHERE code = :code)"),
        {"code": INTERPRETATION_ACCOUNT},
    ).scalars()
    for fund_id in list(funds):
        account_id = uuid.uuid4().hex
        bind.execute(
            sa.text("INSERT INTO ledger_account (id, fund_id, code, kind) VALUES (:id, :fund, :code, 'EXPENSE')"),
            {"id": account_id, "fund": fund_id, "code": INTERPRETATION_ACCOUNT},
        )
        bind.execute(
            sa.text(
                "INSERT INTO ledger_account_balance (account_id, fund_id, balance_cents, committed_cents) "
                "VALUES (:id, :fund, 0, 0)"
            ),
            {"id": account_id, "fund": fund_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_disbursement_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_disbursement_item_disbursement_id"))
    op.drop_table("ledger_disbursement_item")
    with op.batch_alter_table("ledger_disbursement", schema=None) as batch_op:
        batch_op.drop_column("decided_by")
