"""`POST /api/v1/auth/token`: a bearer token for a username and password."""

from __future__ import annotations

from litestar import Controller, Request, post
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from sqlalchemy.ext.asyncio import AsyncSession

from exchange import throttle
from exchange.accounts import authenticate, issue_token
from exchange.api.schemas import TokenRequest, TokenResponse, UserOut


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
