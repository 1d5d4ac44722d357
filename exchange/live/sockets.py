"""Websockets: `/api/v1/stream` (JSON) and `/board/ws` (HTML fragments for htmx), fed by one channel.

Litestar's generated channel routes have no guards and CSRF does not cover websockets, so these
handlers authenticate on connect (the app guard), check the Origin, and filter every event per user.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin
from litestar.exceptions import WebSocketDisconnect
from sqlalchemy import select

from beds.models import Facility
from beds.visibility import Viewer
from exchange.accounts.models import User
from exchange.live.events import Event
from exchange.live.hub import Deliver, LiveHub
from exchange.web import i18n
from exchange.web.auth import viewer_for


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


async def _accept_or_refuse(socket: WebSocket) -> User | None:
    user: User | None = socket.scope.get("user")
    if user is None:
        await socket.close(code=4401, reason="log in first")
        return None
    if not origin_allowed(socket):
        await socket.close(code=4403, reason="origin not allowed")
        return None
    await socket.accept()
    return user


async def _serve(socket: WebSocket, channels: ChannelsPlugin, deliver: Deliver, hello: str | None = None) -> None:
    """Register the connection with the process's hub until the client leaves."""
    hub: LiveHub = socket.app.state.live_hub
    await hub.start(channels)
    key = id(socket)
    hub.add(key, deliver)
    try:
        if hello is not None:
            # Sent once the connection is registered: from here on, the page misses no change.
            await socket.send_text(hello)
        while True:
            await socket.receive_data(mode="text")  # only to notice the client leaving
    except WebSocketDisconnect:
        return
    finally:
        hub.remove(key)


@websocket("/api/v1/stream")
async def json_stream(socket: WebSocket, channels: ChannelsPlugin) -> None:
    user = await _accept_or_refuse(socket)
    if user is None:
        return
    viewer = viewer_for(user)

    async def deliver(event: Event) -> None:
        if event.audience.admits(viewer):
            await socket.send_text(event.payload_json)

    await _serve(socket, channels, deliver)


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

    async def deliver(event: Event) -> None:
        renderer = registry.fragment_renderers.get(event.kind)
        if renderer is None or not event.audience.admits(ctx.viewer):
            return
        if views and registry.view_of_kind.get(event.kind) not in views:
            return
        html = renderer(event, ctx, socket)
        if html:
            await socket.send_text(html)

    i18n.set_locale(ctx.locale)
    hello = socket.app.template_engine.engine.get_template("fragments/live_status.html").render()  # type: ignore[union-attr]
    await _serve(socket, channels, deliver, hello)
