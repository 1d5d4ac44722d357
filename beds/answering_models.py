"""When a facility answers and who is on call: one row per facility, edited by its staff."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from beds.timeutil import UTCDateTime, utcnow


class FacilityAnswering(SQLModel, table=True):
    """`hours` maps a weekday (0 = Monday) to [start, end] as "HH:MM" in the facility's own zone; an end at or
    before its start runs past midnight. `contacts` are role addresses (e-mail), called in this order."""

    __tablename__ = "facility_answering"

    facility_id: str = Field(foreign_key="facility.id", primary_key=True)
    round_the_clock: bool = True
    # The IANA zone the hours are read in: the facility's own, written with the hours.
    time_zone: str = "America/Toronto"
    hours: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    contacts: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_by: str | None = None
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
