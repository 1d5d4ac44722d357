"""Login, logout, the user's language and password."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.response import Redirect, Template
from msgspec import Struct
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts import service
from exchange.accounts.models import User
from exchange.web import i18n
from exchange.web.auth import start_session
from exchange.web.forms import FORM, safe_next
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


class AuthPages(Controller):
    @get("/login", opt={"public": True})
    async def login_page(self, next: str = "/") -> Template:
        return Template("login.html", context={"next": safe_next(next), "error": None})

    @post("/login", opt={"public": True}, status_code=200)
    async def login(self, request: Request, db: AsyncSession, data: Annotated[LoginForm, FORM]) -> Template | Redirect:
        try:
            user = await service.log_in(db, request.app.stores.get("login_failures"), data.username, data.password)
        except TooManyRequestsException:
            return self._refused(data, _("Too many failed attempts. Wait a few minutes and try again."), 429)
        except NotAuthorizedException:
            return self._refused(data, _("Wrong username or password."), 401)
        await start_session(request, user.id)
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
        self, request: Request[User, str, object], db: AsyncSession, data: Annotated[LocaleForm, FORM]
    ) -> Redirect:
        if data.locale in i18n.LOCALES:
            await service.set_locale(db, request.user.id, data.locale)
        return Redirect(path="/", status_code=303)

    @get("/account")
    async def account(self, request: Request[User, str, object], changed: bool = False) -> Template:
        return Template("account.html", context=page_context(request, error=None, changed=changed))

    @post("/account/password", status_code=303)
    async def set_password(
        self, request: Request[User, str, object], db: AsyncSession, data: Annotated[PasswordForm, FORM]
    ) -> Template | Redirect:
        error = None
        if len(data.new_password) < service.PASSWORD_MIN:
            error = _("The new password needs at least 12 characters.")
        elif data.new_password != data.repeat_password:
            error = _("The two new passwords differ.")
        elif not await service.change_password(db, request.user.id, data.current_password, data.new_password):
            error = _("The current password is wrong.")
        if error:
            return Template("account.html", context=page_context(request, error=error, changed=False), status_code=422)
        # A new session id after a credential change, as after a login.
        await start_session(request, request.user.id)
        return Redirect(path="/account", query_params={"changed": "true"}, status_code=303)
