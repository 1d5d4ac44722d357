"""The home: each role's first screen after login (`/home`), the parts of it that are read again live, and the
navigation's counts as out-of-band fragments (`/home/counts`)."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.exceptions import PermissionDeniedException
from litestar.response import Template

from beds.timeutil import utcnow
from exchange.accounts.models import Role, User
from exchange.home.counts import counts_for
from exchange.home.service import SERVICE, HomeService, Section
from exchange.web.auth import requires_roles
from exchange.web.nav import page_context


def live_views(user: User) -> str:
    """What the home's board socket listens to: pool rows and holds for shelter staff (their Arrival / Departure
    rows stay true when a colleague taps), only the navigation's counts for anyone else who has one."""
    if user.has(Role.SHELTER_STAFF):
        return "pools,holds"
    return "nav" if counts_for(user) else ""


class HomePages(Controller):
    path = "/home"
    dependencies = SERVICE

    @get("/")
    async def home(self, request: Request[User, str, object], service: HomeService) -> Template:
        home = await service.home()
        context = page_context(request, home=home, now=home.now, live_views=live_views(request.user))
        return Template("home.html", context=context)

    @get("/counts")
    async def counts(self, request: Request[User, str, object], service: HomeService) -> Template:
        """The counts this user may see, each an out-of-band swap into the navigation (none for anyone else)."""
        return Template("home/counts.html", context={"counts": await service.counts()})

    @get("/requests", guards=[requires_roles(Role.SHELTER_STAFF)])
    async def requests(self, request: Request[User, str, object], service: HomeService) -> Template:
        """The shelter's open hold requests, read again when one of their holds changed."""
        return _part(request, "requests", await service.section("shelter"))

    @get("/approvals", guards=[requires_roles(Role.FUND_APPROVER)])
    async def approvals(self, request: Request[User, str, object], service: HomeService) -> Template:
        """The approver's waiting requests, read again when a request was made or decided."""
        return _part(request, "approvals", await service.section("approver"))


def _part(request: Request[User, str, object], name: str, section: Section | None) -> Template:
    if section is None:  # the guard let through a user without the role: never, but never a 500 either
        raise PermissionDeniedException("Your role does not allow this.")
    return Template(f"home/{name}.html", context={"data": section.data, "now": utcnow(), "user": request.user})
