"""The partner feed on the JSON stream (`/api/v1/stream` for a partner account): instead of pool changes, the new
free beds of the city a change is in, aggregated as `GET /api/v1/feed/availability` aggregates them."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from beds.board import BoardFilter, as_seen_by, list_facilities
from beds.feed import LiveFeed
from beds.visibility import Viewer
from exchange.feed.service import NO_PARTY
from exchange.live.events import Event

POOL_UPDATED = "pool.updated"
# A pool of a facility added after the stream opened: the partner reads the feed again (with its `since`).
READ_AGAIN = json.dumps({"type": "availability.changed"})


async def partner_stream(session: AsyncSession) -> LiveFeed:
    """The stream's state, from the pools as they are when it opens. A change made while it connected may come
    before the socket is registered: after the ready frame a partner reads `GET /api/v1/feed/availability` (with its
    last cursor), then applies the stream's updates."""
    listings = await list_facilities(session, BoardFilter())
    seen = await as_seen_by(session, listings, organisation_id=NO_PARTY, sees_all=False)
    return LiveFeed((li.facility, li.pools) for li in seen)


def partner_message_of(live: LiveFeed, viewer: Viewer) -> Callable[[Event], str | None]:
    def message_of(event: Event) -> str | None:
        # The partner is party to nothing: the payload it is admitted to has every police-held and kept bed not free.
        if event.kind != POOL_UPDATED or not event.audience.admits(viewer):
            return None
        facility_id = event.payload.get("facility_id", "")
        if not live.knows(facility_id):
            return READ_AGAIN
        city = live.apply(facility_id, event.payload["pool"])
        if city is None:
            return None
        return json.dumps({"type": "availability.updated", "city": city.as_json(), "at": event.payload.get("at")})

    return message_of
