"""answering hours, on-call contacts, escalation, push subscriptions

Revision ID: d3c0f3000003
Revises: d2b0f2000002
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import beds.timeutil
from alembic import op

revision: str = "d3c0f3000003"
down_revision: str | None = "d2b0f2000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_str = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "facility_answering",
        sa.Column("facility_id", _str(), sa.ForeignKey("facility.id"), primary_key=True),
        sa.Column("round_the_clock", sa.Boolean(), nullable=False),
        sa.Column("time_zone", _str(), nullable=False),
        sa.Column("hours", sa.JSON(), nullable=False),
        sa.Column("contacts", sa.JSON(), nullable=False),
        sa.Column("updated_by", _str(), nullable=True),
        sa.Column("updated_at", beds.timeutil.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "push_subscription",
        sa.Column("id", _str(), primary_key=True),
        sa.Column("user_id", _str(), sa.ForeignKey("user_account.id"), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False, unique=True),
        sa.Column("p256dh", _str(), nullable=False),
        sa.Column("auth", _str(), nullable=False),
        sa.Column("created_at", beds.timeutil.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_push_subscription_user_id", "push_subscription", ["user_id"])
    op.create_table(
        "approver_roster",
        sa.Column("id", _str(), primary_key=True),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("user_id", _str(), sa.ForeignKey("user_account.id"), nullable=False),
        sa.Column("set_by", _str(), sa.ForeignKey("user_account.id"), nullable=False),
        sa.Column("created_at", beds.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("night", "user_id", name="uq_approver_roster_night_user"),
    )
    op.create_index("ix_approver_roster_night", "approver_roster", ["night"])
    op.create_table(
        "escalation_step",
        sa.Column("id", _str(), primary_key=True),
        sa.Column("kind", _str(), nullable=False),
        sa.Column("subject_id", _str(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("done_at", beds.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "subject_id", "step", name="uq_escalation_step"),
    )
    op.create_index("ix_escalation_step_subject_id", "escalation_step", ["subject_id"])


def downgrade() -> None:
    op.drop_table("escalation_step")
    op.drop_table("approver_roster")
    op.drop_table("push_subscription")
    op.drop_table("facility_answering")
