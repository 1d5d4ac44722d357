"""The record of every read of a confidential address, by anyone, the facility's own organisation included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from beds.timeutil import UTCDateTime, utcnow

# The grounds of a read by the facility's own organisation (its staff, its organisation's admin): they need no
# hold, and they are recorded all the same, so an account created inside a shelter's organisation is seen.
OWN_ORGANISATION = "own_organisation"
RELEASES_PAGE = 200


class AddressRelease(SQLModel, table=True):
    __tablename__ = "address_release"

    id: int | None = Field(default=None, primary_key=True)
    facility_id: str = Field(foreign_key="facility.id", index=True)
    user_id: str = Field(index=True)
    organisation_id: str = Field(index=True)
    # Why this person may see it: the confirmed hold or placement that grants it, or `OWN_ORGANISATION`.
    grounds: str
    channel: str  # api | page
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True))


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


@dataclass(frozen=True)
class ReleaseFilter:
    """Which releases to list; None is any. `since` and `until` bound `at` (`until` excluded)."""

    facility_id: str | None = None
    organisation_id: str | None = None
    user_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def address_releases(
    session: AsyncSession, release_filter: ReleaseFilter, *, limit: int = RELEASES_PAGE
) -> list[AddressRelease]:
    """The releases the filter matches, newest first, at most `limit`."""
    stmt = select(AddressRelease)
    if release_filter.facility_id:
        stmt = stmt.where(AddressRelease.facility_id == release_filter.facility_id)
    if release_filter.organisation_id:
        stmt = stmt.where(AddressRelease.organisation_id == release_filter.organisation_id)
    if release_filter.user_id:
        stmt = stmt.where(AddressRelease.user_id == release_filter.user_id)
    if release_filter.since:
        stmt = stmt.where(AddressRelease.at >= release_filter.since)  # type: ignore[operator]
    if release_filter.until:
        stmt = stmt.where(AddressRelease.at < release_filter.until)  # type: ignore[operator]
    stmt = stmt.order_by(AddressRelease.at.desc(), AddressRelease.id.desc()).limit(limit)  # type: ignore[attr-defined,union-attr]
    return list((await session.execute(stmt)).scalars().all())
