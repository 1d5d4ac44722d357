"""local time: a user's own time zone

Revision ID: c7b2e3f40802
Revises: c6a1d2e30701
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "c7b2e3f40802"
down_revision: str | None = "c6a1d2e30701"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: nobody has chosen yet, so everyone keeps their organisation's province's zone.
    with op.batch_alter_table("user_account") as batch:
        batch.add_column(sa.Column("time_zone", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_account") as batch:
        batch.drop_column("time_zone")
