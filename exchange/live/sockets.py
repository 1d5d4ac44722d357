"""Websockets: `/api/v1/stream` (JSON) and `/board/ws` (HTML fragments for htmx), fed by one channel.

Litestar's generated channel routes have no guards and CSRF does not cover websockets, so these
handlers authenticate on connect (the app guard), check the Origin, and filter every event per user.
Each socket's first message says it is registered with the hub (the JSON stream's ready frame, the board's
live-status fragment): a change made after a client has read it reaches that client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin
from litestar.exceptions import WebSocketDisconnect
from sqlalchemy import select

from beds.models import Facility
from beds.visibility import Viewer
from exchange.accounts.models import Role, User
from exchange.feed.live import partner_message_of, partner_stream
from exchange.live.events import SESSION_END, Event
from exchange.live.hub import SESSION_ENDED, Close, LiveHub, Select
from exchange.web import i18n
from exchange.web.auth import session_key, viewer_for

READY_FRAME = json.dumps({"type": "ready"})
# Views every board socket gets, whatever its page names: the navigation's live counts (exchange/home/live.py).
EVERY_PAGE = frozenset({"nav"})


def origin_allowed(socket: WebSocket) -> bool:
    """Browsers always send Origin; a page on another site must not ride a victim's session cookie."""
    origin = socket.headers.get("origin")
    if origin is None:
        return socket.scope.get("auth") == "token"
    settings = socket.app.state.settings
    allowed = {_origin(settings.base_url)}
    host = socket.headers.get("host")
    if host:
        allowed |= {f"http://{host}", f"https://{host}"}
    return origin.rstrip("/") in allowed


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# What a client leaving looks like: Litestar's WebSocketDisconnect on receive, and on send the server's
# subclass of OSError (the ASGI spec's rule; uvicorn's `ClientDisconnected`). Either is a normal end.
CLIENT_GONE = (WebSocketDisconnect, OSError)


async def _accept_or_refuse(socket: WebSocket) -> User | None:
    user: User | None = socket.scope.get("user")
    try:
        if user is None:
            await socket.close(code=4401, reason="log in first")
            return None
        if not origin_allowed(socket):
            await socket.close(code=4403, reason="origin not allowed")
            return None
        await socket.accept()
    except CLIENT_GONE:  # the client left during the handshake
        return None
    return user


def _ends(event: Event, user_id: str, token_id: str | None, session: str | None) -> bool:
    """Whether this control event ends the right of this socket (its user, token or session) to listen."""
    payload = event.payload
    if event.kind != SESSION_END or payload.get("user_id") != user_id:
        return False
    if payload.get("token_id") and payload["token_id"] != token_id:
        return False
    return not (payload.get("session") and payload["session"] != session)


async def _serve(socket: WebSocket, channels: ChannelsPlugin, message_of: Select, hello: str) -> None:
    """Register the connection with the process's hub until the client leaves, or its right to listen ends.

    The hub calls `message_of` for every event and writes what it returns, or queues it for this connection's own
    task when the socket cannot take it yet: this socket falling behind delays no other (exchange/live/hub.py)."""
    hub: LiveHub = socket.app.state.live_hub
    await hub.start(channels)
    user: User = socket.scope["user"]
    token_id = socket.scope.get("state", {}).get("token_id") if socket.scope.get("auth") == "token" else None
    session = None if token_id else session_key(socket)

    def select_for_user(event: Event) -> str | Close | None:
        if event.kind == SESSION_END:
            return Close(SESSION_ENDED, "session ended") if _ends(event, user.id, token_id, session) else None
        return message_of(event)

    # The hello is the first message, sent as the connection is registered: once the client has read it, it misses
    # no change.
    connection = hub.connect(socket, select_for_user, hello)
    try:
        while True:
            await socket.receive_data(mode="text")  # only to notice the client leaving
    except CLIENT_GONE:  # left before, during or after the hello, or closed by the hub: a normal end
        return
    finally:
        await hub.disconnect(connection)


@websocket("/api/v1/stream", opt={"partner": True})
async def json_stream(socket: WebSocket, channels: ChannelsPlugin) -> None:
    user = await _accept_or_refuse(socket)
    if user is None:
        return
    viewer = viewer_for(user)
    if user.has(Role.PARTNER):  # a partner system: its city's free beds on each change, nothing else (exchange/feed)
        async with socket.app.state.sessionmaker() as session:
            live = await partner_stream(session)
        await _serve(socket, channels, partner_message_of(live, viewer), READY_FRAME)
        return
    # What only tells a page to read its navigation again (EVERY_PAGE) is not part of the API's stream.
    pages_only = {kind for kind, view in socket.app.state.registry.view_of_kind.items() if view in EVERY_PAGE}

    def payload_of(event: Event) -> str | None:
        if event.kind not in pages_only and event.audience.admits(viewer):
            return event.payload_json
        return None

    await _serve(socket, channels, payload_of, READY_FRAME)


@dataclass(frozen=True)
class BoardContext:
    viewer: Viewer
    locale: str
    own_facility_ids: frozenset[str]


@websocket("/board/ws")
async def board_stream(socket: WebSocket, channels: ChannelsPlugin) -> None:
    user = await _accept_or_refuse(socket)
    if user is None:
        return
    async with socket.app.state.sessionmaker() as session:
        own = frozenset(
            (await session.execute(select(Facility.id).where(Facility.organisation_id == user.organisation_id)))
            .scalars()
            .all()
        )
    views = frozenset(v for v in socket.query_params.get("views", "").split(",") if v)
    ctx = BoardContext(
        viewer=viewer_for(user),
        locale=i18n.negotiate(user.locale, socket.headers.get("accept-language")),
        own_facility_ids=own if "shelter_staff" in user.roles else frozenset(),
    )

    registry = socket.app.state.registry

    def fragment_of(event: Event) -> str | None:
        renderer = registry.fragment_renderers.get(event.kind)
        if renderer is None or not event.audience.admits(ctx.viewer):
            return None
        if views and registry.view_of_kind.get(event.kind) not in views | EVERY_PAGE:
            return None
        return renderer(event, ctx, socket) or None

    i18n.set_locale(ctx.locale)
    hello = socket.app.template_engine.engine.get_template("fragments/live_status.html").render()  # type: ignore[union-attr]
    await _serve(socket, channels, fragment_of, hello)
