"""holds trust: agreements name a partner (one active per pool and partner), idempotent operations,
the record of bulk steps on holds

Revision ID: b1f0a7c3d201
Revises: 76b9365cf973
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import beds.timeutil
from alembic import op

revision: str = "b1f0a7c3d201"
down_revision: str | None = "76b9365cf973"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Agreements made before this revision keep no partner: they confirm nothing at once any more.
    with op.batch_alter_table("standing_agreement", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner_org_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_foreign_key(
            "fk_standing_agreement_partner_org_id_organisation", "organisation", ["partner_org_id"], ["id"]
        )
    op.create_index(
        "uq_agreement_active_pool_partner",
        "standing_agreement",
        ["pool_id", "partner_org_id"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )

    with op.batch_alter_table("operation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_unique_constraint("uq_operation_idempotency", ["idempotency_user_id", "idempotency_key"])

    op.create_table(
        "hold_incident",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("actor_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("actor_org_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("target_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("target_org_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("holds", sa.Integer(), nullable=False),
        sa.Column("beds", sa.Integer(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("at", beds.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_org_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["actor_user_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("hold_incident", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hold_incident_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hold_incident", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hold_incident_at"))
    op.drop_table("hold_incident")
    with op.batch_alter_table("operation", schema=None) as batch_op:
        batch_op.drop_constraint("uq_operation_idempotency", type_="unique")
        batch_op.drop_column("request_hash")
        batch_op.drop_column("idempotency_key")
        batch_op.drop_column("idempotency_user_id")
    op.drop_index("uq_agreement_active_pool_partner", table_name="standing_agreement")
    with op.batch_alter_table("standing_agreement", schema=None) as batch_op:
        batch_op.drop_constraint("fk_standing_agreement_partner_org_id_organisation", type_="foreignkey")
        batch_op.drop_column("partner_org_id")
