"""The live stream: what is published on the channel, and what each connection may receive of it.

Every event carries its audience. A hold goes only to its parties and the coordinators; a pool's counts go to
everyone, in one version per audience where police holds are in it (exchange/board/live.py `publish_pool_views`:
whoever is not party to a police hold sees its beds only as not free). Filtering happens per connection, so no
client is ever sent what it may not see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from litestar.channels import ChannelsPlugin

from beds.visibility import Viewer

CHANNEL = "network"


@dataclass(frozen=True)
class Audience:
    """Who may receive an event. Empty means everyone who is logged in."""

    organisations: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    # Never these, whatever else admits them: the other audiences of an event told in several versions.
    except_organisations: tuple[str, ...] = ()
    except_roles: tuple[str, ...] = ()

    @property
    def everyone(self) -> bool:
        return not (self.organisations or self.users or self.roles)

    def admits(self, viewer: Viewer) -> bool:
        if viewer.organisation_id in self.except_organisations or any(r in viewer.roles for r in self.except_roles):
            return False
        return (
            self.everyone
            or viewer.organisation_id in self.organisations
            or viewer.user_id in self.users
            or any(role in viewer.roles for role in self.roles)
        )


def _iso(value: datetime) -> str:
    return value.isoformat()


def _audience_json(audience: Audience) -> list[list[str]]:
    """[organisations, users, roles], and the exceptions after them only when there are any."""
    admitted = [list(audience.organisations), list(audience.users), list(audience.roles)]
    if audience.except_organisations or audience.except_roles:
        admitted += [list(audience.except_organisations), list(audience.except_roles)]
    return admitted


def encode_event(kind: str, payload: dict[str, Any], audience: Audience | None = None) -> bytes:
    audience = audience or Audience()
    return json.dumps(
        {
            "kind": kind,
            "audience": _audience_json(audience),
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
    orgs, users, roles, *excepted = data["audience"]
    except_orgs, except_roles = excepted or ([], [])
    audience = Audience(tuple(orgs), tuple(users), tuple(roles), tuple(except_orgs), tuple(except_roles))
    payload = data["payload"]
    return Event(data["kind"], audience, payload, json.dumps(payload))


def publish(channels: ChannelsPlugin, kind: str, payload: dict[str, Any], audience: Audience) -> None:
    channels.publish(encode_event(kind, payload, audience), CHANNEL)


# A control event, never sent to a client: the sockets of this user (of one token, or of one session, when the
# payload names it) close on it, in every process. Logout, a revoked token, a disabled user, a change of roles
# and a new password publish it (exchange/live/sockets.py `_serve`).
SESSION_END = "session_end"


def publish_session_end(
    channels: ChannelsPlugin, user_id: str, *, token_id: str | None = None, session: str | None = None
) -> None:
    payload = {"user_id": user_id, "token_id": token_id, "session": session}
    publish(channels, SESSION_END, payload, Audience(users=(user_id,)))
