"""The escalation's e-mail: the same few words as the push, with a link, and nothing about the request itself
(no address, code name, case code or amount): a mailbox is read by more people, on more devices, than the app."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage

import structlog

from exchange.holds.mail import header_value
from exchange.settings import Settings

log = structlog.get_logger()


def waiting_mail(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = header_value(settings.smtp_from)
    message["To"] = header_value(to)
    message["Subject"] = header_value(subject)
    message.set_content(body)
    return message


def _send_sync(settings: Settings, message: EmailMessage) -> None:
    assert settings.smtp_host is not None
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)


async def send_mail(settings: Settings, message: EmailMessage) -> bool:
    """True once the SMTP server took it. A failure is logged and never stops the other recipients."""
    try:
        await asyncio.to_thread(_send_sync, settings, message)
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        log.warning("escalation_mail_failed", error_type=type(exc).__name__)
        return False
    return True
