"""Request dependencies (a database session, the settings) and the per-request locale."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar import Request
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.settings import Settings
from exchange.web import i18n, localtime


async def provide_db(state: State) -> AsyncGenerator[AsyncSession, None]:
    async with state.sessionmaker() as session:
        yield session


def provide_settings(state: State) -> Settings:
    return state.settings


async def set_request_locale(request: Request) -> None:
    # Async on purpose: Litestar runs a sync hook in a worker thread, where setting the context
    # variable would never reach the handler and its template.
    # Before logging in, the language chosen on the login page (a cookie) comes before the browser's.
    user = request.scope.get("user")
    chosen = user.locale if user else request.cookies.get(i18n.LOCALE_COOKIE)
    i18n.set_locale(i18n.negotiate(chosen, request.headers.get("accept-language")))
    # The zone of the person's own times (exchange/web/localtime.py); a page about a facility or an
    # operation names that one's zone itself.
    await localtime.set_request_zone(request)
