"""Webhook signing as Stripe does it, plus the broken variants app tests must reject.

``Stripe-Signature: t=<unix ts>,v1=<hex HMAC-SHA256 of f"{t}.{payload}" keyed with the endpoint secret>``;
the SDK's ``WebhookSignature.verify_header`` accepts any matching ``v1`` entry and rejects a ``t`` older than
its tolerance (300 s by default).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

SIGNATURE_HEADER = "Stripe-Signature"
DEFAULT_TOLERANCE = 300


def compute_signature(payload: str, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()


def signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The header Stripe sends for ``payload`` (a str: exactly the bytes that go on the wire, UTF-8)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={compute_signature(payload, secret, ts)}"


def encode_event(event: dict[str, Any]) -> str:
    """Stripe delivers pretty-printed JSON; apps must verify the raw body, not a re-serialisation."""
    return json.dumps(event, indent=2)


@dataclass
class Delivery:
    """One webhook POST made by the fake (or prepared and not sent when no URL is configured)."""

    event: dict[str, Any]
    payload: str
    headers: dict[str, str]
    url: str | None
    response: httpx.Response | None = None
    error: Exception | None = None
    elapsed: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status_code(self) -> int | None:
        return None if self.response is None else self.response.status_code

    @property
    def ok(self) -> bool:
        return self.response is not None and 200 <= self.response.status_code < 300
