"""placements and follow-up

Revision ID: d4d0f4000004
Revises: d3c0f3000003
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import beds.timeutil
from alembic import op

revision: str = "d4d0f4000004"
down_revision: str | None = "d3c0f3000003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_str = sqlmodel.sql.sqltypes.AutoString
_at = beds.timeutil.UTCDateTime
# A closed hold may lose its case link after the retention period.
HOLD_PURPOSE_NEW = "operation_id IS NOT NULL OR case_code IS NOT NULL OR status NOT IN ('requested', 'confirmed')"
HOLD_PURPOSE_OLD = "operation_id IS NOT NULL OR case_code IS NOT NULL"


def _hold_purpose(condition: str) -> None:
    with op.batch_alter_table("bed_hold", recreate="auto") as batch_op:
        batch_op.drop_constraint("hold_has_purpose", type_="check")
        batch_op.create_check_constraint("hold_has_purpose", condition)


def upgrade() -> None:
    op.create_table(
        "placement",
        sa.Column("id", _str(), nullable=False),
        sa.Column("pool_id", _str(), nullable=False),
        sa.Column("facility_id", _str(), nullable=False),
        sa.Column("facility_org_id", _str(), nullable=False),
        sa.Column("hold_id", _str(), nullable=True),
        sa.Column("case_org_id", _str(), nullable=True),
        sa.Column("case_code", _str(), nullable=True),
        sa.Column("case_worker_id", _str(), nullable=True),
        sa.Column("started_at", _at(timezone=True), nullable=False),
        sa.Column("expected_end_at", _at(timezone=True), nullable=True),
        sa.Column("ended_at", _at(timezone=True), nullable=True),
        sa.Column("opened_by", _str(), nullable=True),
        sa.Column("ended_by", _str(), nullable=True),
        sa.Column("unlinked_at", _at(timezone=True), nullable=True),
        sa.CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="placement_end_after_start"),
        sa.CheckConstraint(
            "expected_end_at IS NULL OR expected_end_at >= started_at", name="placement_expected_after_start"
        ),
        sa.ForeignKeyConstraint(["pool_id"], ["bed_pool.id"]),
        sa.ForeignKeyConstraint(["facility_id"], ["facility.id"]),
        sa.ForeignKeyConstraint(["facility_org_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["hold_id"], ["bed_hold.id"]),
        sa.ForeignKeyConstraint(["case_org_id"], ["organisation.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("pool_id", "facility_id", "facility_org_id", "hold_id", "case_org_id", "case_code"):
        op.create_index(f"ix_placement_{column}", "placement", [column])
    op.create_index("ix_placement_case_worker_id", "placement", ["case_worker_id"])
    op.create_index("ix_placement_ended_at", "placement", ["ended_at"])
    op.create_index("ix_placement_pool_open", "placement", ["pool_id", "ended_at"])
    op.create_table(
        "placement_follow_up",
        sa.Column("id", _str(), nullable=False),
        sa.Column("placement_id", _str(), nullable=False),
        sa.Column("days_after", sa.Integer(), nullable=False),
        sa.Column("due_at", _at(timezone=True), nullable=False),
        sa.Column("done_at", _at(timezone=True), nullable=True),
        sa.Column("done_by", _str(), nullable=True),
        sa.ForeignKeyConstraint(["placement_id"], ["placement.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("placement_id", "days_after", name="uq_follow_up_placement_days"),
    )
    op.create_index("ix_placement_follow_up_placement_id", "placement_follow_up", ["placement_id"])
    op.create_index("ix_placement_follow_up_due_at", "placement_follow_up", ["due_at"])
    _hold_purpose(HOLD_PURPOSE_NEW)


def downgrade() -> None:
    _hold_purpose(HOLD_PURPOSE_OLD)
    op.drop_table("placement_follow_up")
    op.drop_table("placement")
