"""Login, logout and the user's language."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from msgspec import Struct
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts.models import User, authenticate, change_password
from exchange.web import i18n, throttle
from exchange.web.auth import SESSION_USER_KEY, rotate_session
from exchange.web.i18n import gettext as _
from exchange.web.nav import page_context


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


def safe_next(target: str) -> str:
    """Only local paths, so the login form cannot bounce someone to another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


class AuthPages(Controller):
    @get("/login", opt={"public": True})
    async def login_page(self, next: str = "/") -> Template:
        return Template("login.html", context={"next": safe_next(next), "error": None})

    @post("/login", opt={"public": True}, status_code=200)
    async def login(
        self,
        request: Request,
        db: AsyncSession,
        data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        store = request.app.stores.get("login_failures")
        if await throttle.is_locked(store, data.username):
            return self._refused(data, _("Too many failed attempts. Wait a few minutes and try again."), 429)
        user = await authenticate(db, data.username, data.password)
        if user is None:
            await throttle.record_failure(store, data.username)
            return self._refused(data, _("Wrong username or password."), 401)
        await throttle.clear_failures(store, data.username)
        await rotate_session(request, request.app.stores.get("sessions"))
        request.set_session({SESSION_USER_KEY: user.id})
        return Redirect(path=safe_next(data.next), status_code=303)

    @staticmethod
    def _refused(data: LoginForm, error: str, status: int) -> Template:
        return Template("login.html", context={"next": safe_next(data.next), "error": error}, status_code=status)

    @post("/logout", status_code=303)
    async def logout(self, request: Request) -> Redirect:
        request.clear_session()
        return Redirect(path="/login", status_code=303)

    @post("/settings/locale", status_code=303)
    async def set_locale(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        data: Annotated[LocaleForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        user = await db.get(User, request.user.id)
        if user is not None and data.locale in i18n.LOCALES:
            user.locale = data.locale
            db.add(user)
            await db.commit()
        return Redirect(path="/", status_code=303)

    @get("/account")
    async def account(self, request: Request[User, str, object], changed: bool = False) -> Template:
        return Template("account.html", context=page_context(request, error=None, changed=changed))

    @post("/account/password", status_code=303)
    async def set_password(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        data: Annotated[PasswordForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        error = None
        if len(data.new_password) < 12:
            error = _("The new password needs at least 12 characters.")
        elif data.new_password != data.repeat_password:
            error = _("The two new passwords differ.")
        elif not await change_password(db, request.user.id, data.current_password, data.new_password):
            error = _("The current password is wrong.")
        if error:
            return Template("account.html", context=page_context(request, error=error, changed=False), status_code=422)
        # A new session id after a credential change, as after a login.
        await rotate_session(request, request.app.stores.get("sessions"))
        request.set_session({SESSION_USER_KEY: request.user.id})
        return Redirect(path="/account", query_params={"changed": "true"}, status_code=303)
