"""`/api/v1/push/subscriptions` (API.md, second round): a user's Web Push subscriptions, their own only."""

from __future__ import annotations

from litestar import Controller, Request, delete, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.accounts.models import User
from exchange.oncall.schemas import SubscriptionOut, SubscriptionRequest
from exchange.oncall.service import PushSubscriptions
from exchange.settings import Settings


class PushSubscriptionController(Controller):
    path = "/api/v1/push/subscriptions"
    tags = ["push"]

    @post("/", status_code=201)
    async def subscribe(
        self, request: Request[User, str, object], db: AsyncSession, settings: Settings, data: SubscriptionRequest
    ) -> SubscriptionOut:
        sub = await PushSubscriptions(db, request.user, settings).subscribe(
            data.endpoint, data.keys.p256dh, data.keys.auth
        )
        return SubscriptionOut.of(sub)

    @get("/")
    async def mine(
        self, request: Request[User, str, object], db: AsyncSession, settings: Settings
    ) -> list[SubscriptionOut]:
        return [SubscriptionOut.of(s) for s in await PushSubscriptions(db, request.user, settings).mine()]

    @delete("/{subscription_id:str}", status_code=204)
    async def remove(
        self, request: Request[User, str, object], db: AsyncSession, settings: Settings, subscription_id: str
    ) -> None:
        await PushSubscriptions(db, request.user, settings).remove(subscription_id)
