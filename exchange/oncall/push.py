"""Web Push to the phones that asked for it: pywebpush (VAPID, aes128gcm) in a worker thread, since it blocks.

A payload is the same few words for everyone concerned: how many requests wait and where to open them. No
address, code name, case code or amount ever goes to a push service."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import requests
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid, b64urlencode
from pywebpush import WebPushException, webpush

from exchange.oncall.service import endpoint_allowed
from exchange.settings import Settings

log = structlog.get_logger()
# Seconds a push service keeps a message for a phone that is off: a request that waits longer has escalated.
PUSH_TTL_SECONDS = 3600
# Statuses by which a push service says the subscription is gone for good.
GONE_STATUSES = frozenset({404, 410})


@dataclass(frozen=True)
class PushTarget:
    id: str
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True)
class PushMessage:
    title: str
    body: str
    url: str

    def encode(self) -> str:
        return json.dumps({"title": self.title, "body": self.body, "url": self.url}, ensure_ascii=False)


def push_enabled(settings: Settings) -> bool:
    return bool(settings.vapid_public_key and settings.vapid_private_key)


def _send_sync(settings: Settings, target: PushTarget, message: PushMessage) -> int:
    """The push service's status; raises OSError-like failures as WebPushException."""
    # Checked again where it is sent (a subscription stored under an older list of services), and no redirect is
    # followed: the push service answers itself, it never sends the server elsewhere.
    if not endpoint_allowed(target.endpoint, settings.push_services):
        raise WebPushException("the endpoint is not at a known push service")
    with requests.Session() as session:
        session.max_redirects = 0
        response = webpush(
            requests_session=session,
            subscription_info={"endpoint": target.endpoint, "keys": {"p256dh": target.p256dh, "auth": target.auth}},
            data=message.encode(),
            vapid_private_key=settings.vapid_private_key,
            # A fresh dict each time: pywebpush writes the audience and expiry into it.
            vapid_claims={"sub": settings.vapid_subject},
            ttl=PUSH_TTL_SECONDS,
            timeout=10,
        )
    return int(getattr(response, "status_code", 201))


async def push_one(settings: Settings, target: PushTarget, message: PushMessage) -> bool:
    """Send one message; False when the subscription is gone (the caller removes it). Other failures are logged:
    a push that could not go must not stop the e-mail, nor the other phones."""
    try:
        await asyncio.to_thread(_send_sync, settings, target, message)
    except WebPushException as exc:
        status = exc.response.status_code if exc.response is not None else None
        log.warning("push_failed", subscription_id=target.id, status=status)
        return status not in GONE_STATUSES
    except (OSError, ValueError) as exc:
        log.warning("push_failed", subscription_id=target.id, error_type=type(exc).__name__)
    return True


def vapid_pair_matches(settings: Settings) -> bool:
    """True if the private key (raw 32 bytes, base64url) is the one of the public key (its uncompressed point)."""
    try:
        private = Vapid.from_string(private_key=settings.vapid_private_key or "")
        public = private.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    except (ValueError, TypeError, IndexError):
        return False
    return b64urlencode(public) == (settings.vapid_public_key or "").rstrip("=")


def new_vapid_keys() -> tuple[str, str]:
    """A new P-256 key pair as the settings take it: (public point, private scalar), base64url without padding."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64urlencode(public), b64urlencode(key.private_numbers().private_value.to_bytes(32, "big"))
