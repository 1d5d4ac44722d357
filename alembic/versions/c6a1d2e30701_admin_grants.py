"""admin grants: role grants in another organisation wait for a second person; cases close

Revision ID: c6a1d2e30701
Revises: b5b4bb070605
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import beds.timeutil
import ledger.timeutil
from alembic import op

revision: str = "c6a1d2e30701"
down_revision: str | None = "b5b4bb070605"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "role_grant",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("organisation_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("lead_worker", sa.Boolean(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("requested_by_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("requested_by_org_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("requested_at", beds.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("decided_at", beds.timeutil.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("role_grant") as batch:
        batch.create_index(batch.f("ix_role_grant_user_id"), ["user_id"], unique=False)
        batch.create_index(batch.f("ix_role_grant_state"), ["state"], unique=False)
    with op.batch_alter_table("ledger_case") as batch:
        batch.add_column(sa.Column("closed_at", ledger.timeutil.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("closed_by_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_case") as batch:
        batch.drop_column("closed_by_user_id")
        batch.drop_column("closed_at")
    with op.batch_alter_table("role_grant") as batch:
        batch.drop_index(batch.f("ix_role_grant_state"))
        batch.drop_index(batch.f("ix_role_grant_user_id"))
    op.drop_table("role_grant")
