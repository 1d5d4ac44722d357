"""HSDS directory ids and imports

Revision ID: d5e0f5000005
Revises: d4d0f4000004
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from beds.timeutil import UTCDateTime

revision: str = "d5e0f5000005"
down_revision: str | None = "d4d0f4000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "directory_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("hsds_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("local_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "hsds_id", name="uq_directory_link_kind_hsds_id"),
    )
    op.create_index(op.f("ix_directory_link_local_id"), "directory_link", ["local_id"], unique=False)
    op.create_table(
        "directory_listing",
        sa.Column("facility_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("service_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("location_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("service_at_location_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("address_public", sa.Boolean(), nullable=False),
        sa.Column("address_1", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("address_2", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("postal_code", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["facility_id"], ["facility.id"]),
        sa.PrimaryKeyConstraint("facility_id"),
    )


def downgrade() -> None:
    op.drop_table("directory_listing")
    op.drop_index(op.f("ix_directory_link_local_id"), table_name="directory_link")
    op.drop_table("directory_link")
