"""The e-mail to a facility's on-call address when a hold asks for its beds. Sent in the background: a
request never waits on, or fails because of, the SMTP server; the board banner has already told the staff."""

from __future__ import annotations

import asyncio
import re
import smtplib
from email.message import EmailMessage

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from beds.holds_models import Hold
from beds.models import Facility
from exchange.settings import Settings

log = structlog.get_logger()

# The running sends, kept referenced so the event loop does not drop them half-way.
_mail_tasks: set[asyncio.Task[None]] = set()


def _send_sync(settings: Settings, message: EmailMessage) -> None:
    assert settings.smtp_host is not None
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)


# Line breaks and every other control character: in a header they would end it, or start another one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def header_value(text: str) -> str:
    """A value fit for one e-mail header line: control characters and line breaks become one space."""
    return " ".join(_CONTROL.sub(" ", text or "").split())


def request_mail(settings: Settings, hold: Hold, to: str) -> EmailMessage:
    """What the on-call person needs to act: who, how many beds, by when, and a link. No operation, no address."""
    message = EmailMessage()
    message["From"] = header_value(settings.smtp_from)
    message["To"] = header_value(to)
    message["Subject"] = header_value(f"Hold request: {hold.beds} bed(s) for {hold.service_name}")
    deadline = hold.respond_by.strftime("%Y-%m-%d %H:%M UTC")
    state = (
        "It was confirmed at once under your standing agreement."
        if hold.auto_confirmed
        else f"Please confirm or decline by {deadline}."
    )
    message.set_content(
        f"{header_value(hold.service_name)} asks to hold {hold.beds} bed(s) in one of your pools.\n"
        f"{state}\n\nOpen the request: {settings.base_url}/requests#hold-{hold.id}\n\n"
        "(Demande de réservation : ouvrez le lien ci-dessus pour répondre.)\n"
    )
    return message


async def _send(settings: Settings, message: EmailMessage, hold_id: str) -> None:
    try:
        await asyncio.to_thread(_send_sync, settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        # A mail failure must not undo or fail the hold.
        log.warning("hold_mail_failed", hold_id=hold_id, error_type=type(exc).__name__)


def mail_facility(settings: Settings, facility: Facility | None, hold: Hold) -> None:
    if not settings.smtp_host or facility is None or not facility.oncall_email:
        return
    try:
        message = request_mail(settings, hold, facility.oncall_email)
    except ValueError as exc:
        # The hold is saved already: a message that cannot be built is logged, never the request's failure.
        log.warning("hold_mail_failed", hold_id=hold.id, error_type=type(exc).__name__)
        return
    task = asyncio.get_running_loop().create_task(_send(settings, message, hold.id))
    _mail_tasks.add(task)
    task.add_done_callback(_mail_tasks.discard)


async def notify_new_holds(session: AsyncSession, settings: Settings, holds: list[Hold]) -> None:
    for hold in holds:
        mail_facility(settings, await session.get(Facility, hold.facility_id), hold)
