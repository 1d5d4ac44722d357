"""Login, logout, the user's language and password."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.channels import ChannelsPlugin
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.middleware.rate_limit import get_remote_address
from litestar.response import Redirect, Template
from msgspec import Struct
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts import service
from exchange.accounts.models import User
from exchange.live.events import publish_session_end
from exchange.web import i18n, localtime, throttle
from exchange.web.auth import session_key, start_session
from exchange.web.forms import FORM, safe_next
from exchange.web.i18n import gettext as _
from exchange.web.nav import page_context

# Where a login lands when no other page was asked for: each role's first screen.
HOME = "/home"


class LoginForm(Struct):
    username: str
    password: str
    next: str = "/"


class PasswordForm(Struct):
    current_password: str
    new_password: str
    repeat_password: str


class LocaleForm(Struct):
    locale: str
    # The page the switch was on: the person stays there, now in the other language.
    next: str = "/"


class TimeZoneForm(Struct):
    # An IANA name of localtime.ZONE_CHOICES, or "" for the organisation's province's zone; the form always
    # sends the field, so a post without it is a bad request, not a silent reset.
    time_zone: str


class AuthPages(Controller):
    @get("/login", opt={"public": True})
    async def login_page(self, request: Request, next: str = "/", lang: str | None = None) -> Template:
        """`?lang=fr` (the page's language switch) keeps the choice in a cookie until someone logs in."""
        cookies = []
        if lang in i18n.LOCALES:
            i18n.set_locale(lang)
            cookies.append(
                Cookie(
                    key=i18n.LOCALE_COOKIE,
                    value=lang,
                    max_age=365 * 24 * 3600,
                    httponly=True,
                    samesite="lax",
                    secure=request.app.state.settings.behind_tls,
                )
            )
        return Template("login.html", context={"next": safe_next(next), "error": None}, cookies=cookies)

    @get("/favicon.ico", opt={"public": True}, include_in_schema=False)
    async def favicon(self) -> Redirect:
        """Browsers ask for it on their own (pages link the SVG): send them to the static file."""
        return Redirect(path="/static/favicon.svg", status_code=301)

    @post("/login", opt={"public": True}, status_code=200)
    async def login(self, request: Request, db: AsyncSession, data: Annotated[LoginForm, FORM]) -> Template | Redirect:
        try:
            user = await service.log_in(
                db, throttle.for_app(request.app), data.username, data.password, get_remote_address(request)
            )
        except TooManyRequestsException:
            return self._refused(data, _("Too many failed attempts. Wait a few minutes and try again."), 429)
        except NotAuthorizedException:
            return self._refused(data, _("Wrong username or password."), 401)
        await start_session(request, user.id)
        # No page asked for (or the site's root, where every visit starts): the person's own home (exchange/home).
        target = safe_next(data.next)
        return Redirect(path=HOME if target == "/" else target, status_code=303)

    @staticmethod
    def _refused(data: LoginForm, error: str, status: int) -> Template:
        return Template("login.html", context={"next": safe_next(data.next), "error": error}, status_code=status)

    @post("/logout", status_code=303)
    async def logout(self, request: Request, channels: ChannelsPlugin) -> Redirect:
        """The session ends, and so do the live sockets opened in it (in every process)."""
        user = request.user
        ended = session_key(request)
        request.clear_session()
        if user is not None and ended is not None:
            publish_session_end(channels, user.id, session=ended)
        return Redirect(path="/login", status_code=303)

    @post("/settings/locale", status_code=303)
    async def set_locale(
        self, request: Request[User, str, object], db: AsyncSession, data: Annotated[LocaleForm, FORM]
    ) -> Redirect:
        cookies = []
        if data.locale in i18n.LOCALES:
            await service.set_locale(db, request.user.id, data.locale)
            # Also in the cookie: a page the router does not know (404) is answered before anyone is looked up.
            cookies.append(
                Cookie(
                    key=i18n.LOCALE_COOKIE,
                    value=data.locale,
                    max_age=365 * 24 * 3600,
                    httponly=True,
                    samesite="lax",
                    secure=request.app.state.settings.behind_tls,
                )
            )
        return Redirect(path=safe_next(data.next), status_code=303, cookies=cookies)

    @get("/account")
    async def account(self, request: Request[User, str, object], db: AsyncSession, changed: bool = False) -> Template:
        return Template("account.html", context=await self._account_context(request, db, error=None, changed=changed))

    # Not in the OpenAPI schema: a page form (its 303 has no documented body); tests/test_access_matrix.py covers it.
    @post("/account/time-zone", status_code=303, include_in_schema=False)
    async def set_time_zone(
        self, request: Request[User, str, object], db: AsyncSession, data: Annotated[TimeZoneForm, FORM]
    ) -> Template | Redirect:
        """The zone of the person's own times; "" goes back to their organisation's province's."""
        if data.time_zone and not localtime.is_known_zone(data.time_zone):
            context = await self._account_context(
                request, db, error=None, changed=False, zone_error=_("Choose one of the time zones in the list.")
            )
            return Template("account.html", context=context, status_code=422)
        await service.set_time_zone(db, request.user.id, data.time_zone or None)
        return Redirect(path="/account", status_code=303)

    @staticmethod
    async def _account_context(request: Request[User, str, object], db: AsyncSession, **context: object) -> dict:
        """The page, with the person's API tokens in use: when each was made, expires and was last used."""
        tokens = [t for t in await service.tokens_of(db, request.user.id) if t.revoked_at is None]
        context.setdefault("zone_error", None)
        return page_context(
            request, tokens=tokens, zone_choices=localtime.zone_choices(), time_zone=request.user.time_zone, **context
        )

    @post("/account/password", status_code=303)
    async def set_password(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        data: Annotated[PasswordForm, FORM],
    ) -> Template | Redirect:
        error = None
        if len(data.new_password) < service.PASSWORD_MIN:
            error = _("The new password needs at least 12 characters.")
        elif data.new_password != data.repeat_password:
            error = _("The two new passwords differ.")
        elif not await service.change_password(db, request.user.id, data.current_password, data.new_password):
            error = _("The current password is wrong.")
        if error:
            context = await self._account_context(request, db, error=error, changed=False)
            return Template("account.html", context=context, status_code=422)
        # Every other session and every token has ended (service.change_password), and their sockets close; this
        # browser goes on with a new session id, as after a login.
        publish_session_end(channels, request.user.id)
        await start_session(request, request.user.id)
        return Redirect(path="/account", query_params={"changed": "true"}, status_code=303)
