"""`POST /api/v1/auth/token`: a bearer token for a username and password; list and revoke one's own tokens."""

from __future__ import annotations

from datetime import timedelta

from litestar import Controller, Request, delete, get, post
from litestar.channels import ChannelsPlugin
from litestar.middleware.rate_limit import get_remote_address
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts import service
from exchange.accounts.models import User
from exchange.accounts.schemas import RevokeRequest, TokenOut, TokenRequest, TokenResponse, UserOut
from exchange.live.events import publish_session_end
from exchange.web import throttle
from exchange.web.auth import bearer_token
from ledger.errors import NotFound


class TokenController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]
    opt = {"partner": True}  # a partner system manages its own tokens

    @post("/token", opt={"public": True}, status_code=200)
    async def create_token(self, request: Request, data: TokenRequest, db: AsyncSession) -> TokenResponse:
        limiter = throttle.for_app(request.app)
        user = await service.log_in(db, limiter, data.username, data.password, get_remote_address(request))
        lifetime = timedelta(days=request.app.state.settings.token_lifetime_days)
        return TokenResponse(token=await service.issue_token(db, user, lifetime), user=UserOut.of(user))

    @get("/tokens")
    async def list_tokens(self, request: Request[User, str, object], db: AsyncSession) -> list[TokenOut]:
        """The caller's own tokens (never their values: only a hash is stored)."""
        current = await service.token_id(db, bearer_token(request))
        return [TokenOut.of(t, current_id=current) for t in await service.tokens_of(db, request.user.id)]

    @post("/token/revoke", status_code=204)
    async def revoke(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        data: RevokeRequest | None = None,
    ) -> None:
        """Revoke one of the caller's own tokens (a lost phone's), or the one making this request; the sockets
        opened with it close."""
        token_id = (data.token_id if data else None) or await service.token_id(db, bearer_token(request))
        if not await service.revoke_token(db, request.user.id, token_id):
            raise NotFound("not_found", "No such active token of yours.")
        publish_session_end(channels, request.user.id, token_id=token_id)

    @delete("/token", status_code=204)
    async def revoke_current(
        self, request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin
    ) -> None:
        """Log out of the API: the bearer token of this request stops working at once, and its sockets close."""
        token_id = await service.token_id(db, bearer_token(request))
        if not await service.revoke_token(db, request.user.id, token_id):
            raise NotFound("not_found", "No such active token of yours.")
        publish_session_end(channels, request.user.id, token_id=token_id)
