"""The board's live fragment: a pool's row, swapped out-of-band on every board that shows it."""

from __future__ import annotations

from litestar import WebSocket

from exchange.live.events import Event
from exchange.live.sockets import BoardContext
from exchange.web import i18n


def render_pool_row(event: Event, ctx: BoardContext, socket: WebSocket) -> str | None:
    payload = event.payload
    can_edit = payload["facility_id"] in ctx.own_facility_ids
    return _render_cached(socket, "fragments/pool_oob.html", event, ctx.locale, can_edit)


_fragment_cache: dict[tuple[str, str, str, bool], str] = {}


def _render_cached(socket: WebSocket, template: str, event: Event, locale: str, variant: bool) -> str:
    """Every board socket receives the same event; render it once per language and variant."""
    key = (event.payload_json, template, locale, variant)
    html = _fragment_cache.get(key)
    if html is None:
        if len(_fragment_cache) > 2048:
            _fragment_cache.clear()
        env = socket.app.template_engine.engine  # type: ignore[union-attr]
        i18n.set_locale(locale)
        html = env.get_template(template).render(event=event.payload, can_edit=variant)
        _fragment_cache[key] = html
    return html
