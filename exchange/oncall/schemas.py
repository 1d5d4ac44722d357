"""Bodies of the push subscription API: what a browser's `PushSubscription.toJSON()` gives, and the answer."""

from __future__ import annotations

from datetime import datetime

import msgspec

from exchange.oncall.models import PushSubscription
from exchange.web.schemas import Body


class SubscriptionKeys(Body):
    p256dh: str
    auth: str


class SubscriptionRequest(Body):
    endpoint: str
    keys: SubscriptionKeys
    # Sent by browsers (mostly null); push services say when a subscription ends by answering 404 or 410.
    expiration_time: float | None = msgspec.field(default=None, name="expirationTime")


class SubscriptionOut(msgspec.Struct):
    id: str
    endpoint: str
    created_at: datetime

    @classmethod
    def of(cls, sub: PushSubscription) -> SubscriptionOut:
        return cls(id=sub.id, endpoint=sub.endpoint, created_at=sub.created_at)
