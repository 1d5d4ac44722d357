"""Organisations, users, roles and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import JSON, Column, select
from sqlalchemy.ext.asyncio import AsyncSession
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
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))

    def has(self, *roles: Role) -> bool:
        return any(role.value in self.roles for role in roles)


class ApiToken(SQLModel, table=True):
    """Bearer tokens. Only a SHA-256 of the token is stored, so a copy of the database cannot be replayed."""

    __tablename__ = "api_token"

    id: str = Field(default_factory=new_id, primary_key=True)
    user_id: str = Field(foreign_key="user_account.id", index=True)
    token_hash: str = Field(unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


_hasher = PasswordHasher()
# Verifying against this keeps the time of a login for an unknown user equal to a known one.
_DUMMY_HASH = _hasher.hash("not a real password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def authenticate(session: AsyncSession, username: str, password: str) -> User | None:
    user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        return None
    return user


async def issue_token(session: AsyncSession, user: User) -> str:
    token = "rfx_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token)))
    await session.commit()
    return token


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    row = (
        await session.execute(
            select(User)
            .join(ApiToken, ApiToken.user_id == User.id)  # type: ignore[arg-type]
            .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))  # type: ignore[union-attr]
        )
    ).scalar_one_or_none()
    return row if row is not None and row.active else None


async def revoke_token(session: AsyncSession, user_id: str, token_id: str) -> bool:
    token = await session.get(ApiToken, token_id)
    if token is None or token.user_id != user_id or token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    await session.commit()
    return True


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    organisation_id: str,
    roles: list[Role] | list[str],
    display_name: str = "",
    email: str = "",
    lead_worker: bool = False,
    locale: str | None = None,
) -> User:
    user = User(
        username=username,
        display_name=display_name or username,
        email=email,
        password_hash=hash_password(password),
        organisation_id=organisation_id,
        roles=[Role(r).value for r in roles],
        lead_worker=lead_worker,
        locale=locale,
    )
    session.add(user)
    await session.commit()
    return user


async def create_organisation(
    session: AsyncSession, *, name: str, kind: OrgKind | str, province: str = ""
) -> Organisation:
    org = Organisation(name=name.strip(), kind=OrgKind(kind), province=province)
    session.add(org)
    await session.commit()
    return org


async def set_user_active(session: AsyncSession, user_id: str, active: bool) -> User | None:
    """Disabling a user ends their sessions and tokens at once: both are re-checked on every request."""
    user = await session.get(User, user_id)
    if user is None:
        return None
    user.active = active
    session.add(user)
    await session.commit()
    return user


async def set_user_roles(session: AsyncSession, user_id: str, roles: list[str], lead_worker: bool) -> User | None:
    """Roles are read from the database on every request, so a change applies at the user's next click."""
    user = await session.get(User, user_id)
    if user is None:
        return None
    user.roles = [Role(r).value for r in roles]
    user.lead_worker = lead_worker
    session.add(user)
    await session.commit()
    return user


async def change_password(session: AsyncSession, user_id: str, current: str, new: str) -> bool:
    """False when the current password is wrong; the caller answers without saying more."""
    user = await session.get(User, user_id)
    if user is None or not verify_password(user.password_hash, current):
        return False
    user.password_hash = hash_password(new)
    session.add(user)
    await session.commit()
    return True
