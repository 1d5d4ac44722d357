"""The record of every release of a confidential address to someone outside the facility."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from beds.timeutil import UTCDateTime, utcnow


class AddressRelease(SQLModel, table=True):
    __tablename__ = "address_release"

    id: int | None = Field(default=None, primary_key=True)
    facility_id: str = Field(foreign_key="facility.id", index=True)
    user_id: str
    organisation_id: str
    # Why this person may see it: the confirmed hold or placement that grants it.
    grounds: str
    channel: str  # api | page
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


async def record_address_release(
    session: AsyncSession, *, facility_id: str, user_id: str, organisation_id: str, grounds: str, channel: str
) -> None:
    session.add(
        AddressRelease(
            facility_id=facility_id,
            user_id=user_id,
            organisation_id=organisation_id,
            grounds=grounds,
            channel=channel,
        )
    )
    await session.commit()
