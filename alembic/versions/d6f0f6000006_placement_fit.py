"""placement fit: places, languages, culturally specific support

Revision ID: d6f0f6000006
Revises: d5e0f5000005
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "d6f0f6000006"
down_revision: str | None = "d5e0f5000005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_PROFILES = ("WOMEN", "MEN", "YOUTH", "FAMILY", "ANY")
_NEW_PROFILES = (*_OLD_PROFILES, "YOUNG_ADULT")


def upgrade() -> None:
    # The bed profile for young adults (18-25). PostgreSQL keeps profiles in a native enum; SQLite in a VARCHAR
    # as long as the longest name, which the batch copy widens.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TYPE profile ADD VALUE IF NOT EXISTS 'YOUNG_ADULT'")
    else:
        with op.batch_alter_table("bed_pool") as batch:
            batch.alter_column(
                "profile",
                existing_type=sa.Enum(*_OLD_PROFILES, name="profile"),
                type_=sa.Enum(*_NEW_PROFILES, name="profile"),
                existing_nullable=False,
            )
    with op.batch_alter_table("facility") as batch:
        batch.add_column(sa.Column("indigenous_led", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("culturally_specific", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(
            sa.Column("cultural_support", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default="")
        )
    with op.batch_alter_table("operation") as batch:
        batch.add_column(sa.Column("max_per_facility", sa.Integer(), nullable=True))
    with op.batch_alter_table("operation_need") as batch:
        batch.add_column(sa.Column("language", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""))
        batch.add_column(sa.Column("keep_together", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(
            sa.Column("prefer_culturally_specific", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("operation_need") as batch:
        batch.drop_column("prefer_culturally_specific")
        batch.drop_column("keep_together")
        batch.drop_column("language")
    with op.batch_alter_table("operation") as batch:
        batch.drop_column("max_per_facility")
    with op.batch_alter_table("facility") as batch:
        batch.drop_column("cultural_support")
        batch.drop_column("culturally_specific")
        batch.drop_column("indigenous_led")
    # PostgreSQL cannot drop one value of an enum; pools of young adults would have to go first. The value stays.
