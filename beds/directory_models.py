"""Tables of the directory exchange: which HSDS record became which organisation or facility, and the structured
address of a facility whose address the directory may publish (issue 14)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from beds.timeutil import UTCDateTime, utcnow


class DirectoryLink(SQLModel, table=True):
    """An HSDS record imported here: `kind` is `organization` (→ organisation id) or `service_at_location`
    (→ facility id). `content_hash` is the SHA-256 of what the record mapped to, so a re-import of an unchanged
    record touches nothing."""

    __tablename__ = "directory_link"
    __table_args__ = (UniqueConstraint("kind", "hsds_id", name="uq_directory_link_kind_hsds_id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    hsds_id: str
    local_id: str = Field(index=True)
    content_hash: str
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class DirectoryListing(SQLModel, table=True):
    """How a facility appears in the HSDS directory: the ids it is published under and, only when its address is
    public (never set by an import: beds/directory.py SHELTER_KINDS), the address lines, postal code and point.
    Without `address_public` the directory shows the city alone."""

    __tablename__ = "directory_listing"

    facility_id: str = Field(foreign_key="facility.id", primary_key=True)
    service_id: str
    location_id: str
    service_at_location_id: str
    address_public: bool = False
    address_1: str = ""
    address_2: str = ""
    postal_code: str = ""
    latitude: float | None = None
    longitude: float | None = None
