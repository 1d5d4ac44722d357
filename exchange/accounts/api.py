"""`POST /api/v1/auth/token`: a bearer token for a username and password; list and revoke one's own tokens."""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts.models import ApiToken, User, authenticate, hash_token, issue_token, revoke_token
from exchange.board.schemas import Body, TokenRequest, TokenResponse, UserOut
from exchange.web import throttle
from ledger.errors import NotFound


class TokenOut(msgspec.Struct):
    id: str
    created_at: datetime
    revoked_at: datetime | None
    current: bool


class RevokeRequest(Body):
    # Without an id, the token that carries this request is revoked.
    token_id: str | None = None


async def _current_token_id(db: AsyncSession, request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() != "bearer ":
        return None
    digest = hash_token(header[7:].strip())
    return (await db.execute(select(ApiToken.id).where(ApiToken.token_hash == digest))).scalar_one_or_none()


class TokenController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/token", opt={"public": True}, status_code=200)
    async def create_token(self, request: Request, data: TokenRequest, db: AsyncSession) -> TokenResponse:
        store = request.app.stores.get("login_failures")
        if await throttle.is_locked(store, data.username):
            raise TooManyRequestsException("Too many failed logins for this account; try again later.")
        user = await authenticate(db, data.username, data.password)
        if user is None:
            await throttle.record_failure(store, data.username)
            # One message whether the user exists or not, so logins cannot list accounts.
            raise NotAuthorizedException("Wrong username or password.")
        await throttle.clear_failures(store, data.username)
        token = await issue_token(db, user)
        return TokenResponse(
            token=token,
            user=UserOut(
                id=user.id,
                username=user.username,
                display_name=user.display_name,
                organisation_id=user.organisation_id,
                roles=list(user.roles),
            ),
        )

    @get("/tokens")
    async def list_tokens(self, request: Request[User, str, object], db: AsyncSession) -> list[TokenOut]:
        """The caller's own tokens (never their values: only a hash is stored)."""
        current = await _current_token_id(db, request)
        rows = (
            await db.execute(
                select(ApiToken).where(ApiToken.user_id == request.user.id).order_by(ApiToken.created_at.desc())  # type: ignore[attr-defined]
            )
        ).scalars()
        return [
            TokenOut(id=t.id, created_at=t.created_at, revoked_at=t.revoked_at, current=t.id == current) for t in rows
        ]

    @post("/token/revoke", status_code=204)
    async def revoke(
        self, request: Request[User, str, object], db: AsyncSession, data: RevokeRequest | None = None
    ) -> None:
        """Revoke one of the caller's own tokens (a lost phone's), or the one making this request."""
        token_id = (data.token_id if data else None) or await _current_token_id(db, request)
        if token_id is None or not await revoke_token(db, request.user.id, token_id):
            raise NotFound("not_found", "No such active token of yours.")

    @delete("/token", status_code=204)
    async def revoke_current(self, request: Request[User, str, object], db: AsyncSession) -> None:
        """Log out of the API: the bearer token of this request stops working at once."""
        token_id = await _current_token_id(db, request)
        if token_id is None or not await revoke_token(db, request.user.id, token_id):
            raise NotFound("not_found", "No such active token of yours.")
