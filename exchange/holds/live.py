"""Holds on the wire: their JSON, the live events each side of a hold receives, and the board socket's
banner and rows. exchange/plugin.py wires `render_hold_fragment` for "hold.updated"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import WebSocket
from litestar.channels import ChannelsPlugin
from sqlalchemy.ext.asyncio import AsyncSession

from beds.holds import HoldChange
from beds.holds_models import Hold
from beds.timeutil import utcnow
from beds.visibility import Viewer, may_see_case_code, on_holders_side
from exchange.board.live import publish_pool_views
from exchange.home.live import publish_requests_changed
from exchange.live.events import Audience, Event, publish
from exchange.live.sockets import BoardContext
from exchange.web import i18n


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def hold_json(hold: Hold, *, holders_side: bool = True) -> dict[str, Any]:
    """The API's hold, as one side of it may read it (beds/visibility.py says when the case code shows)."""
    return {
        "id": hold.id,
        "pool_id": hold.pool_id,
        "facility_id": hold.facility_id,
        "beds": hold.beds,
        "status": hold.status,
        "expires_at": _iso(hold.expires_at),
        "operation_id": hold.operation_id,
        "case_code": hold.case_code if may_see_case_code(hold.status, holders_side=holders_side) else None,
        "kind": "operation" if hold.operation_id else "case",
        "need_profile": hold.need_profile,
        "service_name": hold.service_name,
        "requested_by_org": hold.requested_by_org,
        # The requesting account (an opaque id): what a shelter names to decline all of its requests at once.
        "requested_by": hold.requested_by,
        "window_start": _iso(hold.window_start),
        "window_end": _iso(hold.window_end),
        "auto_confirmed": hold.auto_confirmed,
        "respond_by": _iso(hold.respond_by),
        "flagged_unanswered": hold.flagged_unanswered,
        "decline_reason": hold.decline_reason,
        "beds_used": hold.beds_used,
        "created_at": _iso(hold.created_at),
        "updated_at": _iso(hold.updated_at),
    }


def hold_for_viewer(hold: Hold, viewer: Viewer) -> dict[str, Any]:
    return hold_json(hold, holders_side=on_holders_side(viewer, hold.requested_by_org))


def holders_audience(hold: Hold) -> Audience:
    return Audience(organisations=(hold.requested_by_org,), roles=("coordinator",))


def publish_hold(channels: ChannelsPlugin, hold: Hold, change: str) -> None:
    """One event to the holder's side (holder's organisation, coordinators), one to the facility's staff."""
    publish(
        channels,
        "hold.updated",
        {"type": "hold.updated", "hold": hold_json(hold), "change": change, "side": "holder"},
        holders_audience(hold),
    )
    if hold.facility_org_id != hold.requested_by_org:
        publish(
            channels,
            "hold.updated",
            {"type": "hold.updated", "hold": hold_json(hold, holders_side=False), "change": change, "side": "facility"},
            Audience(organisations=(hold.facility_org_id,)),
        )
    # The navigation's count of open hold requests of the facility's staff (exchange/home/live.py): their pages
    # read it again. Being flagged unanswered leaves a request open.
    if change != "unanswered":
        publish_requests_changed(channels, hold.facility_org_id)


async def publish_change(session: AsyncSession, channels: ChannelsPlugin, change: HoldChange) -> None:
    if change.replayed:
        return
    publish_hold(channels, change.hold, change.change)
    if change.pool is not None:
        await publish_pool_views(session, channels, change.pool)


def publish_unanswered(channels: ChannelsPlugin, hold: Hold) -> None:
    """Nobody waits on silence: the requester and the coordinators hear of a request left unanswered."""
    publish_hold(channels, hold, "unanswered")
    publish(channels, "hold.unanswered", {"type": "hold.unanswered", "hold": hold_json(hold)}, holders_audience(hold))


def render_hold_fragment(event: Event, ctx: BoardContext, socket: WebSocket) -> str | None:
    payload = event.payload
    hold = payload["hold"]
    side = payload.get("side")
    if side == "facility" and hold["facility_id"] not in ctx.own_facility_ids:
        return None
    if side == "holder" and not on_holders_side(ctx.viewer, hold["requested_by_org"]):
        return None
    env = socket.app.template_engine.engine  # type: ignore[union-attr]
    i18n.set_locale(ctx.locale)
    return env.get_template("fragments/hold_oob.html").render(
        hold=hold,
        change=payload.get("change"),
        side=side,
        can_staff=side == "facility",
        can_hold=side == "holder" and ctx.viewer.is_("police_planner", "case_worker"),
        now=utcnow(),
    )
