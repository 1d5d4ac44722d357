"""Accounts: passwords, logins, API tokens, organisations, users and their roles.

The API and the pages call these; the tables are in `exchange/accounts/models.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import weakref
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from beds.timeutil import utcnow
from exchange.accounts.models import ApiToken, Organisation, OrgKind, Role, User
from exchange.web import throttle

PASSWORD_MIN = 12
TOKEN_LIFETIME = timedelta(days=90)
# A token's last use is written at most this often, so that a token request does not always write.
LAST_USED_EVERY = timedelta(seconds=60)

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


@dataclass
class PasswordChecks:
    """argon2 runs in worker threads, at most `at_once` at a time per process: a burst of logins waits its
    turn there, and the event loop goes on serving everyone else. The counts are for metrics and tests."""

    at_once: int = 2
    queued: int = 0
    ran: int = 0
    _limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def _limit(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        limit = self._limits.get(loop)
        if limit is None:
            limit = self._limits[loop] = asyncio.Semaphore(self.at_once)
        return limit

    async def verify(self, password_hash: str | None, password: str) -> bool:
        self.queued += 1
        async with self._limit():
            self.ran += 1
            return await asyncio.to_thread(verify_password, password_hash, password)

    async def hash(self, password: str) -> str:
        async with self._limit():
            return await asyncio.to_thread(hash_password, password)


PASSWORD_CHECKS = PasswordChecks()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def authenticate(session: AsyncSession, username: str, password: str) -> User | None:
    user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    ok = await PASSWORD_CHECKS.verify(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        return None
    return user


async def log_in(
    session: AsyncSession, limiter: throttle.LoginThrottle, username: str, password: str, address: str
) -> User:
    """The user these credentials name. The throttle admits the attempt before any password is checked.

    Raises TooManyRequestsException when this account and address (or this address) must wait,
    NotAuthorizedException otherwise; one message whether the user exists or not, so logins cannot list accounts.
    """
    attempt = await limiter.admit(username, address)
    if attempt is None:
        raise TooManyRequestsException("Too many failed logins; try again later.")
    user = await authenticate(session, username, password)
    if user is None:
        raise NotAuthorizedException("Wrong username or password.")
    await limiter.succeeded(attempt)
    return user


async def issue_token(session: AsyncSession, user: User, lifetime: timedelta = TOKEN_LIFETIME) -> str:
    token = "rfx_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), expires_at=utcnow() + lifetime))
    await session.commit()
    return token


async def token_user(session: AsyncSession, token: str) -> tuple[User, str] | None:
    """The active user of an unrevoked, unexpired token, and the token's id; notes the token's last use."""
    now = utcnow()
    row = (
        await session.execute(
            select(User, ApiToken.id, ApiToken.last_used_at)
            .join(ApiToken, ApiToken.user_id == User.id)  # type: ignore[arg-type]
            .where(
                ApiToken.token_hash == hash_token(token),
                ApiToken.revoked_at.is_(None),  # type: ignore[union-attr]
                or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now),  # type: ignore[union-attr,operator]
            )
        )
    ).one_or_none()
    if row is None or not row[0].active:
        return None
    user, token_id, last_used_at = row
    stale = now - LAST_USED_EVERY
    if last_used_at is None or last_used_at < stale:
        # At most one write a minute per token; conditional, so concurrent requests write it once.
        await session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == token_id,  # type: ignore[arg-type]
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < stale),  # type: ignore[union-attr,operator]
            )
            .values(last_used_at=now)
        )
        await session.commit()
    return user, token_id


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    found = await token_user(session, token)
    return found[0] if found else None


async def token_id(session: AsyncSession, token: str | None) -> str | None:
    """The id of the stored token with this value (revoked or not), or None."""
    if token is None:
        return None
    return (
        await session.execute(select(ApiToken.id).where(ApiToken.token_hash == hash_token(token)))
    ).scalar_one_or_none()


async def tokens_of(session: AsyncSession, user_id: str) -> list[ApiToken]:
    """A user's tokens, newest first (never their values: only a hash is stored)."""
    rows = await session.execute(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at.desc())  # type: ignore[attr-defined]
    )
    return list(rows.scalars().all())


async def revoke_all_tokens(session: AsyncSession, user_id: str) -> None:
    await session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))  # type: ignore[arg-type,union-attr]
        .values(revoked_at=utcnow())
    )
    await session.commit()


async def revoke_token(session: AsyncSession, user_id: str, token_id: str | None) -> bool:
    """False unless `token_id` is an active token of this user (another's is not even said to exist)."""
    token = await session.get(ApiToken, token_id) if token_id else None
    if token is None or token.user_id != user_id or token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    await session.commit()
    return True


async def create_organisation(
    session: AsyncSession, *, name: str, kind: OrgKind | str, province: str = ""
) -> Organisation:
    org = Organisation(name=name.strip(), kind=OrgKind(kind), province=province)
    session.add(org)
    await session.commit()
    return org


async def organisations(session: AsyncSession) -> list[Organisation]:
    return list((await session.execute(select(Organisation).order_by(Organisation.name))).scalars().all())


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
        password_hash=await PASSWORD_CHECKS.hash(password),
        organisation_id=organisation_id,
        roles=[Role(r).value for r in roles],
        lead_worker=lead_worker,
        locale=locale,
    )
    session.add(user)
    await session.commit()
    return user


async def users(session: AsyncSession) -> list[User]:
    return list((await session.execute(select(User).order_by(User.username))).scalars().all())


async def _update_user(session: AsyncSession, user_id: str, **fields: Any) -> User | None:
    user = await session.get(User, user_id)
    if user is None:
        return None
    for name, value in fields.items():
        setattr(user, name, value)
    session.add(user)
    await session.commit()
    return user


async def set_user_active(session: AsyncSession, user_id: str, active: bool) -> User | None:
    """Disabling a user ends their sessions and tokens at once: both are re-checked on every request."""
    return await _update_user(session, user_id, active=active)


async def set_user_roles(session: AsyncSession, user_id: str, roles: list[str], lead_worker: bool) -> User | None:
    """Roles are read from the database on every request, so a change applies at the user's next click."""
    return await _update_user(session, user_id, roles=[Role(r).value for r in roles], lead_worker=lead_worker)


async def set_locale(session: AsyncSession, user_id: str, locale: str) -> None:
    """The language a user's pages and e-mails are in; the caller checks it is one we have."""
    await _update_user(session, user_id, locale=locale)


async def set_time_zone(session: AsyncSession, user_id: str, time_zone: str | None) -> None:
    """The zone a user's own times are shown in (None: their organisation's province's); the caller checks it."""
    await _update_user(session, user_id, time_zone=time_zone)


async def change_password(session: AsyncSession, user_id: str, current: str, new: str) -> bool:
    """False when the current password is wrong; the caller answers without saying more.

    A new password ends every session started before it (AuthMiddleware compares the session's start with
    `sessions_valid_after`) and revokes every token: the caller starts a fresh session for the person."""
    user = await session.get(User, user_id)
    if user is None or not await PASSWORD_CHECKS.verify(user.password_hash, current):
        return False
    new_hash = await PASSWORD_CHECKS.hash(new)
    await _update_user(session, user_id, password_hash=new_hash, sessions_valid_after=utcnow())
    await revoke_all_tokens(session, user_id)
    return True
