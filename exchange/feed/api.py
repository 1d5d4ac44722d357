"""`GET /api/v1/feed/availability`: free beds by city and profile, with an ETag and a `since` cursor so a partner
system polls cheaply (an unchanged feed is a 304 with no body)."""

from __future__ import annotations

from litestar import Controller, Request, Response, get

from beds.feed import body_of, etag_of, matches, parse_since
from exchange.accounts.models import Role
from exchange.feed.service import FEED_SERVICE, FeedService
from exchange.web.auth import requires_roles

MEDIA_TYPE = "application/json"


class FeedController(Controller):
    path = "/api/v1/feed"
    tags = ["directory"]
    # The one API a partner account reaches besides the directory and its own tokens (exchange/web/auth.py).
    opt = {"partner": True}
    guards = [requires_roles(Role.PARTNER, Role.COORDINATOR)]
    dependencies = FEED_SERVICE

    @get("/availability", media_type=MEDIA_TYPE)
    async def availability(self, request: Request, feed_service: FeedService, since: str | None = None) -> Response:
        answer = await feed_service.availability(parse_since(since))
        body = body_of(answer.as_json())
        etag = etag_of(body)
        # Private: a shared cache must not hand one partner's answer to a caller without a token.
        headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
        if matches(request.headers.get("if-none-match"), etag):
            return Response(b"", status_code=304, headers=headers, media_type=MEDIA_TYPE)
        return Response(body, headers=headers, media_type=MEDIA_TYPE)
