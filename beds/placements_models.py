"""Tables of stays: a placement (one bed of a pool taken by one person, from a claim to a departure) and the
follow-up dates its case worker gets after it ends.

A claim of a hold opens one placement per bed claimed, so one Departure (-1 occupied) ends exactly one of them.
Only a pseudonymous case code is stored, never a name; after the retention period the case link is removed
(`case_code`, `case_worker_id` set to NULL, `unlinked_at` set) and only counts remain.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from beds.models import new_id
from beds.timeutil import UTCDateTime, utcnow


class Placement(SQLModel, table=True):
    __tablename__ = "placement"
    __table_args__ = (
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="placement_end_after_start"),
        CheckConstraint(
            "expected_end_at IS NULL OR expected_end_at >= started_at", name="placement_expected_after_start"
        ),
        Index("ix_placement_pool_open", "pool_id", "ended_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    pool_id: str = Field(foreign_key="bed_pool.id", index=True)
    facility_id: str = Field(foreign_key="facility.id", index=True)
    # The facility's organisation: whose staff see and end the placement, with no join.
    facility_org_id: str = Field(foreign_key="organisation.id", index=True)
    hold_id: str | None = Field(default=None, foreign_key="bed_hold.id", index=True)
    # The case's lead organisation (the hold's requester); None for an operation's placement.
    case_org_id: str | None = Field(default=None, foreign_key="organisation.id", index=True)
    case_code: str | None = Field(default=None, index=True)
    # The case worker whose case it is (the hold's requester): the follow-up dates go to their home.
    case_worker_id: str | None = Field(default=None, index=True)
    started_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    expected_end_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True, index=True))
    opened_by: str | None = None
    ended_by: str | None = None
    # When the retention step removed the case link.
    unlinked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


class FollowUp(SQLModel, table=True):
    """A date after a placement ended when its case worker checks on the person; done once, by whom."""

    __tablename__ = "placement_follow_up"
    __table_args__ = (UniqueConstraint("placement_id", "days_after", name="uq_follow_up_placement_days"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    placement_id: str = Field(foreign_key="placement.id", index=True)
    days_after: int
    due_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
    done_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    done_by: str | None = None
