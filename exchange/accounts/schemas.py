"""Request and response bodies of the accounts API (tokens). Unknown fields are refused."""

from __future__ import annotations

from datetime import datetime

import msgspec

from exchange.accounts.models import ApiToken, User
from exchange.web.schemas import Body


class TokenRequest(Body):
    username: str
    password: str


class RevokeRequest(Body):
    # Without an id, the token that carries this request is revoked.
    token_id: str | None = None


class UserOut(msgspec.Struct):
    id: str
    username: str
    display_name: str
    organisation_id: str
    roles: list[str]

    @classmethod
    def of(cls, user: User) -> UserOut:
        return msgspec.convert(user, cls, from_attributes=True)


class TokenResponse(msgspec.Struct):
    token: str
    user: UserOut


class TokenOut(msgspec.Struct):
    id: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None
    # To the minute: a token's use is noted at most once a minute.
    last_used_at: datetime | None
    current: bool

    @classmethod
    def of(cls, token: ApiToken, *, current_id: str | None) -> TokenOut:
        return cls(
            id=token.id,
            created_at=token.created_at,
            revoked_at=token.revoked_at,
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
            current=token.id == current_id,
        )
