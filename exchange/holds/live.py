"""Holds in the shell: their JSON, live events and board banner, the on-call e-mail, sweeper steps and
address grants. exchange/plugin.py wires the renderer, the sweep steps and the grant source."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import structlog
from litestar import Litestar, WebSocket
from litestar.channels import ChannelsPlugin
from sqlalchemy.ext.asyncio import AsyncSession

from beds import holds as hold_ops
from beds.holds import HoldChange, Requester
from beds.holds_models import Hold, HoldStatus
from beds.models import Facility
from beds.timeutil import utcnow
from exchange.accounts.models import Organisation, User
from exchange.live.events import Audience, Event, publish, publish_pool
from exchange.live.sockets import BoardContext
from exchange.settings import Settings
from exchange.web import i18n

log = structlog.get_logger()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def hold_json(hold: Hold, *, for_facility: bool = False) -> dict[str, Any]:
    """The API's hold. The facility's view carries no case code until the person is placed (claimed)."""
    case_code = hold.case_code
    if for_facility and hold.status != HoldStatus.CLAIMED.value:
        case_code = None
    return {
        "id": hold.id,
        "pool_id": hold.pool_id,
        "facility_id": hold.facility_id,
        "beds": hold.beds,
        "status": hold.status,
        "expires_at": _iso(hold.expires_at),
        "operation_id": hold.operation_id,
        "case_code": case_code,
        "kind": "operation" if hold.operation_id else "case",
        "need_profile": hold.need_profile,
        "service_name": hold.service_name,
        "requested_by_org": hold.requested_by_org,
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


def hold_for_viewer(hold: Hold, user: User) -> dict[str, Any]:
    holder_side = user.organisation_id == hold.requested_by_org or "coordinator" in user.roles
    return hold_json(hold, for_facility=not holder_side)


def publish_hold(channels: ChannelsPlugin, hold: Hold, change: str) -> None:
    """One event to the holder's side (holder's organisation, coordinators), one to the facility's staff."""
    holder_audience = Audience(organisations=(hold.requested_by_org,), roles=("coordinator",))
    publish(
        channels,
        "hold.updated",
        {"type": "hold.updated", "hold": hold_json(hold), "change": change, "side": "holder"},
        holder_audience,
    )
    if hold.facility_org_id != hold.requested_by_org:
        publish(
            channels,
            "hold.updated",
            {"type": "hold.updated", "hold": hold_json(hold, for_facility=True), "change": change, "side": "facility"},
            Audience(organisations=(hold.facility_org_id,)),
        )


def publish_change(channels: ChannelsPlugin, change: HoldChange) -> None:
    if change.replayed:
        return
    publish_hold(channels, change.hold, change.change)
    if change.pool is not None:
        publish_pool(channels, change.pool)


async def requester_for(session: AsyncSession, user: User) -> Requester:
    org = await session.get(Organisation, user.organisation_id)
    return Requester(
        user_id=user.id,
        organisation_id=user.organisation_id,
        organisation_name=org.name if org else "",
        kind="police" if "police_planner" in user.roles else "case_workers",
    )


async def operation_requester(session: AsyncSession, user: User, organisation_id: str) -> Requester:
    """The police service holds an operation's beds, also when a coordinator places them for it."""
    org = await session.get(Organisation, organisation_id)
    return Requester(user.id, organisation_id, org.name if org else "", "police")


# --- e-mail to the facility's on-call address ----------------------------------------------------------------

_mail_tasks: set[asyncio.Task[None]] = set()


def _send_sync(settings: Settings, message: EmailMessage) -> None:
    assert settings.smtp_host is not None
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)


def request_mail(settings: Settings, hold: Hold, to: str) -> EmailMessage:
    """What the on-call person needs to act: who, how many beds, by when, and a link. No operation, no address."""
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = f"Hold request: {hold.beds} bed(s) for {hold.service_name}"
    deadline = hold.respond_by.strftime("%Y-%m-%d %H:%M UTC")
    state = (
        "It was confirmed at once under your standing agreement."
        if hold.auto_confirmed
        else f"Please confirm or decline by {deadline}."
    )
    message.set_content(
        f"{hold.service_name} asks to hold {hold.beds} bed(s) in one of your pools.\n"
        f"{state}\n\nOpen the request: {settings.base_url}/requests#hold-{hold.id}\n\n"
        "(Demande de réservation : ouvrez le lien ci-dessus pour répondre.)\n"
    )
    return message


async def _send(settings: Settings, message: EmailMessage, hold_id: str) -> None:
    try:
        await asyncio.to_thread(_send_sync, settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        # The board banner already told the staff; a mail failure must not undo or fail the hold.
        log.warning("hold_mail_failed", hold_id=hold_id, error_type=type(exc).__name__)


def mail_facility(settings: Settings, facility: Facility | None, hold: Hold) -> None:
    """Send in the background: the request never waits on (or fails because of) the SMTP server."""
    if not settings.smtp_host or facility is None or not facility.oncall_email:
        return
    task = asyncio.get_running_loop().create_task(
        _send(settings, request_mail(settings, hold, facility.oncall_email), hold.id)
    )
    _mail_tasks.add(task)
    task.add_done_callback(_mail_tasks.discard)


async def notify_new_holds(session: AsyncSession, settings: Settings, holds: list[Hold]) -> None:
    for hold in holds:
        mail_facility(settings, await session.get(Facility, hold.facility_id), hold)


# --- the htmx board socket: banner and live rows -------------------------------------------------------------


def render_hold_fragment(event: Event, ctx: BoardContext, socket: WebSocket) -> str | None:
    payload = event.payload
    hold = payload["hold"]
    side = payload.get("side")
    if side == "facility" and hold["facility_id"] not in ctx.own_facility_ids:
        return None
    if side == "holder" and ctx.viewer.organisation_id != hold["requested_by_org"] and not ctx.viewer.is_coordinator:
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


# --- sweeper steps -------------------------------------------------------------------------------------------


async def sweep_expired_holds(app: Litestar) -> None:
    channels = app.plugins.get(ChannelsPlugin)
    async with app.state.sessionmaker() as session:
        for change in await hold_ops.expire_due(session):
            publish_change(channels, change)


async def sweep_unanswered_holds(app: Litestar) -> None:
    """Nobody waits on silence: flag requests past the response window to the requester and coordinators."""
    channels = app.plugins.get(ChannelsPlugin)
    async with app.state.sessionmaker() as session:
        for hold in await hold_ops.flag_unanswered(session):
            publish_hold(channels, hold, "unanswered")
            publish(
                channels,
                "hold.unanswered",
                {"type": "hold.unanswered", "hold": hold_json(hold)},
                Audience(organisations=(hold.requested_by_org,), roles=("coordinator",)),
            )


# --- address grants ------------------------------------------------------------------------------------------


async def hold_address_grants(session: AsyncSession, user: User) -> dict[str, str]:
    """Police planners: facilities where their service's hold is confirmed or claimed.
    Case workers: facilities where a case of their organisation has a confirmed hold."""
    now = utcnow()
    grants: dict[str, str] = {}
    if "case_worker" in user.roles:
        grants.update(
            await hold_ops.granted_facilities(
                session,
                user.organisation_id,
                statuses=(HoldStatus.CONFIRMED.value,),
                case_holds_only=True,
                now=now,
            )
        )
    if "police_planner" in user.roles:
        grants.update(
            await hold_ops.granted_facilities(
                session,
                user.organisation_id,
                statuses=(HoldStatus.CONFIRMED.value, HoldStatus.CLAIMED.value),
                case_holds_only=False,
                now=now,
            )
        )
    return grants


def response_window(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.response_window_minutes)
