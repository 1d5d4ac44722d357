"""The navigation's counts, live. A change that may move a count is published as `nav.count` to whoever may
see that count; every page's board socket (`/board/ws`, whatever views it names) answers it with a fragment that
has the page read its counts again (`GET /home/counts`), and on the home (`page=home`) the list behind the count.

A re-read rather than the number in the event: the publishers (a fund request's change, a hold's) need no query
of their own, and the page always ends on the numbers as they are. Of a burst (an allocation places dozens of holds
at once) only the last re-read happens: each event replaces the page's `#nav-stale` marker, and
static/nav-live.js reads the counts a moment after the last one.
"""

from __future__ import annotations

from litestar import WebSocket
from litestar.channels import ChannelsPlugin

from exchange.accounts.models import Role
from exchange.home.counts import APPROVALS, COUNT_ROLES, REQUESTS
from exchange.live.events import Audience, Event, publish
from exchange.live.sockets import BoardContext
from exchange.web import i18n

NAV_EVENT = "nav.count"
# The part of the home each count's list is, refreshed with it on the home page.
PART_OF_COUNT = {APPROVALS: "approvals", REQUESTS: "requests"}


def publish_count_changed(channels: ChannelsPlugin, count: str, audience: Audience) -> None:
    publish(channels, NAV_EVENT, {"type": NAV_EVENT, "count": count}, audience)


def publish_approvals_changed(channels: ChannelsPlugin) -> None:
    """A fund request was made or decided: the approvers' count of waiting requests may have moved."""
    publish_count_changed(channels, APPROVALS, Audience(roles=(Role.FUND_APPROVER.value,)))


def publish_requests_changed(channels: ChannelsPlugin, facility_org_id: str) -> None:
    """A hold asked of this organisation's facilities changed: its staff's count of open requests may have moved
    (the renderer leaves out the organisation's members who are not shelter staff)."""
    publish_count_changed(channels, REQUESTS, Audience(organisations=(facility_org_id,)))


def render_nav_count(event: Event, ctx: BoardContext, socket: WebSocket) -> str | None:
    """The re-read of the counts, for a socket whose user may see this count."""
    count = event.payload.get("count", "")
    role = COUNT_ROLES.get(count)
    if role is None or role.value not in ctx.viewer.roles:
        return None
    part = PART_OF_COUNT[count] if socket.query_params.get("page") == "home" else None
    env = socket.app.template_engine.engine  # type: ignore[union-attr]
    i18n.set_locale(ctx.locale)
    return env.get_template("home/nav_stale.html").render(part=part)
