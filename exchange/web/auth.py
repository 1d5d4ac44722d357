"""Who is calling: bearer tokens for the API, server-side sessions for pages; guards by role."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.stores.base import Store
from sqlalchemy.ext.asyncio import async_sessionmaker

from beds.visibility import Viewer
from exchange.accounts.models import Role, User
from exchange.accounts.service import token_user

SESSION_USER_KEY = "uid"
# When the session started (epoch seconds): a password change ends every session started before it.
SESSION_STARTED_KEY = "at"


class RotatingSessionBackend(ServerSideSessionBackend):
    """Gives a fresh session id when the handler asks (at login), so a planted session id is worthless."""

    def get_session_id(self, connection: ASGIConnection) -> str:
        state = connection.scope.setdefault("state", {})
        if state.get("rotate_session"):
            new_id = state.get("rotated_session_id")
            if new_id is None:
                new_id = state["rotated_session_id"] = self.generate_session_id()
            return new_id
        return super().get_session_id(connection)


@dataclass
class RotatingSessionConfig(ServerSideSessionConfig):
    _backend_class = RotatingSessionBackend


def bearer_token(connection: ASGIConnection) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None."""
    header = connection.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


async def rotate_session(connection: ASGIConnection, store: Store) -> None:
    old_id = connection.cookies.get("session")
    if old_id and old_id != "null":
        await store.delete(old_id)
    connection.scope.setdefault("state", {})["rotate_session"] = True


async def start_session(request: Request, user_id: str) -> None:
    """A new session id for this user after every credential check (a login, a new password)."""
    await rotate_session(request, request.app.stores.get("sessions"))
    request.set_session({SESSION_USER_KEY: user_id, SESSION_STARTED_KEY: time.time()})


def session_key(connection: ASGIConnection) -> str | None:
    """A hash of this connection's session id: names the session on the live channel without revealing it."""
    session_id = connection.cookies.get("session")
    if not session_id or session_id == "null":
        return None
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]


class AuthMiddleware(AbstractAuthenticationMiddleware):
    """Sets `request.user` to the User or None. Guards decide what an anonymous caller may reach.

    The JSON API takes bearer tokens only, so a browser's cookie can never drive it from another site;
    pages and websockets take the session cookie (forms carry a CSRF token, sockets check Origin).
    """

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        sessionmaker: async_sessionmaker = connection.app.state.sessionmaker
        token = bearer_token(connection)
        if token is not None:
            async with sessionmaker() as session:
                found = await token_user(session, token)
            if found is None:
                raise NotAuthorizedException("The bearer token is not valid.")
            user, token_id = found
            connection.scope.setdefault("state", {})["token_id"] = token_id  # the live sockets close on its revocation
            return AuthenticationResult(user=user, auth="token")
        path = connection.scope["path"]
        is_api_http = path.startswith("/api/") and connection.scope["type"] == "http"
        user_id = None
        session_data: Any = {}
        if not is_api_http and "session" in connection.scope:
            session_data = connection.scope.get("session") or {}
            user_id = session_data.get(SESSION_USER_KEY) if isinstance(session_data, dict) else None
        if user_id:
            async with sessionmaker() as session:
                user = await session.get(User, user_id)
            started = session_data.get(SESSION_STARTED_KEY) or 0
            ended = user is not None and user.sessions_valid_after is not None
            if ended and float(started) < user.sessions_valid_after.timestamp():  # type: ignore[union-attr]
                return AuthenticationResult(user=None, auth=None)
            if user is not None and user.active:
                return AuthenticationResult(user=user, auth="session")
        return AuthenticationResult(user=None, auth=None)


def current_user(connection: ASGIConnection) -> User | None:
    return connection.scope.get("user")


def viewer_for(user: User, address_grants: frozenset[str] = frozenset()) -> Viewer:
    return Viewer(
        user_id=user.id,
        organisation_id=user.organisation_id,
        roles=frozenset(user.roles),
        address_grants=address_grants,
    )


def requires_login(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """App-wide guard: every route needs a user unless it says `public=True` in its opts."""
    if handler.opt.get("public"):
        return
    user = current_user(connection)
    if user is None:
        raise NotAuthorizedException("Log in first.")
    # A partner system's account reads only what is opened to it (`partner=True` in opts), so a route that forgets
    # to name its roles can never leak to it.
    if user.has(Role.PARTNER) and not handler.opt.get("partner"):
        raise PermissionDeniedException("A partner account reads the availability feed and the directory only.")


def requires_roles(*roles: Role) -> Any:
    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        user = current_user(connection)
        if user is None:
            raise NotAuthorizedException("Log in first.")
        if not user.has(*roles):
            raise PermissionDeniedException("Your role does not allow this.")

    guard.__name__ = "requires_" + "_or_".join(r.value for r in roles)
    return guard


def new_csrf_secret() -> str:
    return secrets.token_hex(32)
