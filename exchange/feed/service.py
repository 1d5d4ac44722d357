"""The partner feed for one request's user: free beds per city and profile as a viewer party to nothing sees them
(beds/feed.py), for partner systems and coordinators; exchange/feed/api.py reaches it as `feed_service`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from litestar import Request
from litestar.di import Provide
from litestar.exceptions import PermissionDeniedException
from sqlalchemy.ext.asyncio import AsyncSession

from beds.board import BoardFilter, as_seen_by, list_facilities
from beds.feed import Feed, aggregate, feed
from beds.timeutil import utcnow
from exchange.accounts.models import Role, User

# No organisation has this id: the feed sees pools as an account party to no hold and partner to no agreement.
NO_PARTY = ""


@dataclass
class FeedService:
    db: AsyncSession
    user: User

    async def availability(self, since: datetime | None) -> Feed:
        if not self.user.has(Role.PARTNER, Role.COORDINATOR):
            raise PermissionDeniedException("The availability feed is for partner systems and coordinators.")
        listings = await list_facilities(self.db, BoardFilter())
        seen = await as_seen_by(self.db, listings, organisation_id=NO_PARTY, sees_all=False)
        return feed(aggregate((li.facility, li.pools) for li in seen), utcnow(), since)


def provide_feed_service(request: Request[User, str, object], db: AsyncSession) -> FeedService:
    return FeedService(db, request.user)


FEED_SERVICE = {"feed_service": Provide(provide_feed_service, sync_to_thread=False)}
