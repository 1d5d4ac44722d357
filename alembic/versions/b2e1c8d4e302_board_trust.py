"""board trust: address releases, pool ceilings, idempotent pool writes

Every read of an address is recorded now (the facility's own organisation's too) and read back filtered by
facility, organisation, user and date: indexes for those filters. A shelter's +1/-1 and surge carry their
Idempotency-Key (scoped to the user) and the hash of their body on the history row they write, under a unique
constraint, with the pool's version after the change so a replay answers what the first request did.

Revision ID: b2e1c8d4e302
Revises: b1f0a7c3d201
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "b2e1c8d4e302"
down_revision: str | None = "b1f0a7c3d201"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("address_release", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_address_release_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_address_release_organisation_id"), ["organisation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_address_release_at"), ["at"], unique=False)

    with op.batch_alter_table("pool_change", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version_after", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("idempotency_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_unique_constraint("uq_pool_change_idempotency", ["idempotency_user_id", "idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("pool_change", schema=None) as batch_op:
        batch_op.drop_constraint("uq_pool_change_idempotency", type_="unique")
        batch_op.drop_column("request_hash")
        batch_op.drop_column("idempotency_key")
        batch_op.drop_column("idempotency_user_id")
        batch_op.drop_column("version_after")

    with op.batch_alter_table("address_release", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_address_release_at"))
        batch_op.drop_index(batch_op.f("ix_address_release_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_address_release_user_id"))
