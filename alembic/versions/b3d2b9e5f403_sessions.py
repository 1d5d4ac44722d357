"""sessions: token expiry and last use, login failures

Revision ID: b3d2b9e5f403
Revises: b2e1c8d4e302
"""

from collections.abc import Sequence

import sqlalchemy as sa

import beds.timeutil
from alembic import op

revision: str = "b3d2b9e5f403"
down_revision: str | None = "b2e1c8d4e302"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_account") as batch:
        batch.add_column(sa.Column("sessions_valid_after", beds.timeutil.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("expires_at", beds.timeutil.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_used_at", beds.timeutil.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
    with op.batch_alter_table("user_account") as batch:
        batch.drop_column("sessions_valid_after")
