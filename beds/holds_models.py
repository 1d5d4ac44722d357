"""Tables of police pre-reservation: operations and their needs, holds, standing agreements, allocations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, Index, UniqueConstraint, text
from sqlmodel import AutoString, Field, SQLModel

from beds.models import new_id
from beds.timeutil import UTCDateTime, utcnow


class HoldStatus(StrEnum):
    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    CLAIMED = "claimed"
    RELEASED = "released"
    DECLINED = "declined"
    EXPIRED = "expired"


# A hold in one of these states still takes beds out of "free".
ACTIVE_STATUSES: tuple[str, ...] = (HoldStatus.REQUESTED.value, HoldStatus.CONFIRMED.value)
_STATUS_SQL = ", ".join(f"'{s.value}'" for s in HoldStatus)


class AgreementScope(StrEnum):
    """Whose holds a standing agreement pre-approves."""

    POLICE = "police"
    CASE_WORKERS = "case_workers"
    ALL = "all"


class Operation(SQLModel, table=True):
    """A police operation. Its code name and details stay with its service and the coordinators."""

    __tablename__ = "operation"
    __table_args__ = (
        CheckConstraint("window_end > window_start", name="operation_window_order"),
        UniqueConstraint("idempotency_user_id", "idempotency_key", name="uq_operation_idempotency"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    organisation_id: str = Field(foreign_key="organisation.id", index=True)
    created_by: str = Field(foreign_key="user_account.id")
    code_name: str
    province: str
    city: str = ""
    window_start: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    window_end: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    notes: str = ""
    # At most this many of the operation's people in one facility (None: no limit): victims of one operation
    # placed together can contaminate evidence or recruit one another (beds/planner.py spreads them).
    max_per_facility: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    idempotency_user_id: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


class OperationNeed(SQLModel, table=True):
    __tablename__ = "operation_need"
    __table_args__ = (
        CheckConstraint("count > 0", name="operation_need_count_positive"),
        UniqueConstraint("operation_id", "profile", name="uq_operation_need_profile"),
    )

    id: int | None = Field(default=None, primary_key=True)
    operation_id: str = Field(foreign_key="operation.id", index=True)
    profile: str
    count: int
    # What the group asks of a facility (beds/planner.py): a language its staff speak, all of it in one facility
    # (a mother and her children), and a preference for Indigenous-led or culturally specific support.
    language: str = ""
    keep_together: bool = False
    prefer_culturally_specific: bool = False


class Agreement(SQLModel, table=True):
    """A shelter keeps `beds` of a pool for the holds of one named partner organisation (of `scope`);
    the partner's requests within it are confirmed at once, nobody else's.

    The `beds` are kept: not free to anyone else (the pool's `kept` is the sum over its active agreements).
    `beds_in_use` counts the kept beds the partner's active holds draw on; `beds_lent` the kept beds its
    people occupied at a claim that the pool had no free bed to keep again yet (they come back as beds free
    up: beds/pools.py `refill_kept`). The pool's `kept_in_use` is the sum of both, so kept-unused =
    `beds - beds_in_use - beds_lent`. They move under the pool's row lock (beds/agreements.py).
    At most one active agreement per pool and partner: a unique index on the active rows (partial, on
    SQLite and PostgreSQL alike). Agreements made before partners existed have no partner and confirm nothing.
    """

    __tablename__ = "standing_agreement"
    __table_args__ = (
        CheckConstraint("beds > 0", name="agreement_beds_positive"),
        CheckConstraint("beds_in_use >= 0", name="agreement_in_use_nonneg"),
        CheckConstraint("beds_lent >= 0 AND beds_in_use + beds_lent <= beds", name="agreement_kept_range"),
        CheckConstraint("scope IN ('police', 'case_workers', 'all')", name="agreement_scope_known"),
        Index(
            "uq_agreement_active_pool_partner",
            "pool_id",
            "partner_org_id",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    pool_id: str = Field(foreign_key="bed_pool.id", index=True)
    facility_id: str = Field(foreign_key="facility.id", index=True)
    partner_org_id: str | None = Field(default=None, foreign_key="organisation.id")
    beds: int
    beds_in_use: int = 0
    beds_lent: int = 0
    scope: str = AgreementScope.ALL.value
    note: str = ""
    active: bool = True
    created_by: str = Field(foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class Allocation(SQLModel, table=True):
    """One bulk allocation of an operation's holds; carries the Idempotency-Key of the request."""

    __tablename__ = "allocation"
    __table_args__ = (UniqueConstraint("idempotency_user_id", "idempotency_key", name="uq_allocation_idempotency"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    operation_id: str = Field(foreign_key="operation.id", index=True)
    created_by: str = Field(foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    idempotency_user_id: str | None = None
    idempotency_key: str | None = None
    # The column keeps its old name (renaming it needs a migration); the code says request_hash, as the ledger does.
    request_hash: str | None = Field(default=None, sa_column=Column("request_sha256", AutoString, nullable=True))


class Hold(SQLModel, table=True):
    """Beds of one pool taken out of "free" for an operation or a case until claimed, released or expired."""

    __tablename__ = "bed_hold"
    __table_args__ = (
        CheckConstraint("beds > 0", name="hold_beds_positive"),
        CheckConstraint(f"status IN ({_STATUS_SQL})", name="hold_status_known"),
        # A closed hold may lose its case link after the retention period (beds/placements.py unlink_expired).
        CheckConstraint(
            "operation_id IS NOT NULL OR case_code IS NOT NULL OR status NOT IN ('requested', 'confirmed')",
            name="hold_has_purpose",
        ),
        CheckConstraint("beds_used IS NULL OR (beds_used >= 0 AND beds_used <= beds)", name="hold_beds_used_range"),
        UniqueConstraint("idempotency_user_id", "idempotency_key", name="uq_hold_idempotency"),
        Index("ix_bed_hold_status_expires", "status", "expires_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True)
    pool_id: str = Field(foreign_key="bed_pool.id", index=True)
    facility_id: str = Field(foreign_key="facility.id", index=True)
    # The facility's organisation, kept here so "who are the parties" needs no join.
    facility_org_id: str = Field(foreign_key="organisation.id", index=True)
    beds: int
    status: str = HoldStatus.REQUESTED.value
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    operation_id: str | None = Field(default=None, foreign_key="operation.id", index=True)
    allocation_id: str | None = Field(default=None, foreign_key="allocation.id")
    case_code: str | None = Field(default=None, index=True)
    # The profile of the operation's need this hold covers (a pool of profile "any" can cover several).
    need_profile: str | None = None
    # What a shelter may know of an operation: the service's name and the window, never the code name.
    service_name: str = ""
    window_start: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    window_end: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    requested_by: str = Field(foreign_key="user_account.id")
    requested_by_org: str = Field(foreign_key="organisation.id", index=True)
    agreement_id: str | None = Field(default=None, foreign_key="standing_agreement.id")
    # How many of the hold's beds are the agreement's kept beds (the rest were free beds).
    kept_beds: int = 0
    auto_confirmed: bool = False
    respond_by: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    flagged_unanswered: bool = False
    decline_reason: str | None = None
    beds_used: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # Who did each step, and when (DESIGN.md: "who did each step").
    confirmed_by: str | None = None
    confirmed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    declined_by: str | None = None
    released_by: str | None = None
    claimed_by: str | None = None
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    idempotency_user_id: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = Field(default=None, sa_column=Column("request_sha256", AutoString, nullable=True))

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class HoldIncident(SQLModel, table=True):
    """A bulk step on holds, kept for the record: who did it, when, to whose holds, how many.

    `kind`: `release_all` (a coordinator released every active hold of a user or an organisation) or
    `decline_requester` (a shelter declined every open request of one requester)."""

    __tablename__ = "hold_incident"

    id: str = Field(default_factory=new_id, primary_key=True)
    kind: str
    actor_user_id: str = Field(foreign_key="user_account.id")
    actor_org_id: str = Field(foreign_key="organisation.id")
    target_user_id: str | None = None
    target_org_id: str | None = None
    holds: int
    beds: int
    reason: str = ""
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True))
