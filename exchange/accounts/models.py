"""Tables of organisations, users (with their roles) and API tokens; `service.py` works with them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from beds.models import new_id
from beds.timeutil import UTCDateTime, utcnow


class OrgKind(StrEnum):
    SHELTER = "shelter"
    POLICE = "police"
    COALITION = "coalition"
    COMMUNITY = "community"


class Role(StrEnum):
    SHELTER_STAFF = "shelter_staff"
    POLICE_PLANNER = "police_planner"
    CASE_WORKER = "case_worker"
    FUND_APPROVER = "fund_approver"
    AUDITOR = "auditor"
    NETWORK_ADMIN = "network_admin"
    COORDINATOR = "coordinator"
    # A system (211 line, provincial board): reads the availability feed and the public directory, nothing else.
    PARTNER = "partner"


class Organisation(SQLModel, table=True):
    __tablename__ = "organisation"

    id: str = Field(default_factory=new_id, primary_key=True)
    name: str = Field(unique=True)
    kind: OrgKind
    province: str = ""
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: str = Field(default_factory=new_id, primary_key=True)
    username: str = Field(unique=True, index=True)
    display_name: str = ""
    email: str = ""
    password_hash: str
    organisation_id: str = Field(foreign_key="organisation.id", index=True)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # A designated lead worker may use the emergency fund's fast path.
    lead_worker: bool = False
    locale: str | None = None
    # An IANA zone the person chose (exchange/web/localtime.py ZONE_CHOICES); None: their organisation's province's.
    time_zone: str | None = None
    active: bool = True
    # Sessions started before this are over (set by a password change).
    sessions_valid_after: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))

    def has(self, *roles: Role) -> bool:
        return any(role.value in self.roles for role in roles)


class GrantState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    # A later change of the same user's roles replaced it before anyone decided.
    SUPERSEDED = "superseded"


class RoleGrant(SQLModel, table=True):
    """Roles a network admin asked to give a user, waiting for a second person (exchange/admin/grants.py).

    The user does not hold them until someone else approves: `User.roles` is the only thing guards, visibility,
    tokens and sockets read, and the approval adds them there."""

    __tablename__ = "role_grant"

    id: str = Field(default_factory=new_id, primary_key=True)
    user_id: str = Field(foreign_key="user_account.id", index=True)
    # The user's organisation when asked: whose members may approve a role of that organisation.
    organisation_id: str
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The fund's fast path, a power over money like a role.
    lead_worker: bool = False
    state: str = Field(default=GrantState.PENDING.value, index=True)
    requested_by_user_id: str
    requested_by_org_id: str
    requested_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    decided_by_user_id: str | None = None
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class ApiToken(SQLModel, table=True):
    """Bearer tokens. Only a SHA-256 of the token is stored, so a copy of the database cannot be replayed."""

    __tablename__ = "api_token"

    id: str = Field(default_factory=new_id, primary_key=True)
    user_id: str = Field(foreign_key="user_account.id", index=True)
    token_hash: str = Field(unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Written at most once a minute (exchange/accounts/service.py `token_user`).
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
