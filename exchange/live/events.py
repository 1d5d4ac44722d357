"""The live stream: what is published on the channel, and what each connection may receive of it.

Every event carries its audience. Pool counts go to everyone; a hold goes only to its parties and
the coordinators. Filtering happens per connection, so no client is ever sent what it may not see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from litestar.channels import ChannelsPlugin

from beds.models import BedPool
from beds.timeutil import utcnow
from beds.visibility import Viewer

CHANNEL = "network"


@dataclass(frozen=True)
class Audience:
    """Who may receive an event. Empty means everyone who is logged in."""

    organisations: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()

    @property
    def everyone(self) -> bool:
        return not (self.organisations or self.users or self.roles)

    def admits(self, viewer: Viewer) -> bool:
        return (
            self.everyone
            or viewer.organisation_id in self.organisations
            or viewer.user_id in self.users
            or any(role in viewer.roles for role in self.roles)
        )


def pool_json(pool: BedPool) -> dict[str, Any]:
    return {
        "id": pool.id,
        "profile": str(pool.profile),
        "capacity": pool.capacity,
        "occupied": pool.occupied,
        "out_of_service": pool.out_of_service,
        "held": pool.held,
        "free": pool.free,
        "version": pool.version,
        "updated_at": pool.updated_at.isoformat(),
    }


def _iso(value: datetime) -> str:
    return value.isoformat()


def encode_event(kind: str, payload: dict[str, Any], audience: Audience | None = None) -> bytes:
    audience = audience or Audience()
    return json.dumps(
        {
            "kind": kind,
            "audience": [list(audience.organisations), list(audience.users), list(audience.roles)],
            "payload": payload,
        },
        separators=(",", ":"),
    ).encode()


@dataclass(frozen=True)
class Event:
    kind: str
    audience: Audience
    payload: dict[str, Any]
    # The JSON text a stream client receives, serialised once for all connections.
    payload_json: str


@lru_cache(maxsize=512)
def decode_event(raw: bytes) -> Event:
    """Subscribers share one bytes object per event, so a burst of N sockets decodes it once."""
    data = json.loads(raw)
    orgs, users, roles = data["audience"]
    payload = data["payload"]
    return Event(data["kind"], Audience(tuple(orgs), tuple(users), tuple(roles)), payload, json.dumps(payload))


def publish_pool(channels: ChannelsPlugin, pool: BedPool, facility_id: str | None = None) -> None:
    payload = {
        "type": "pool.updated",
        "pool": pool_json(pool),
        "facility_id": facility_id or pool.facility_id,
        "at": _iso(utcnow()),
    }
    channels.publish(encode_event("pool.updated", payload), CHANNEL)


def publish(channels: ChannelsPlugin, kind: str, payload: dict[str, Any], audience: Audience) -> None:
    channels.publish(encode_event(kind, payload, audience), CHANNEL)
