"""Live fragments of the ledger pages, sent over the generic board socket (`/board/ws`).

A disbursement event goes to approvers (their inbox item) and to its requester (their status card); the
Audience of the event already limits it to them, and each renderer checks again which part this user gets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import WebSocket

from exchange.live.events import Event
from exchange.web import i18n

if TYPE_CHECKING:
    from exchange.live.sockets import BoardContext


def _render(socket: WebSocket, template: str, locale: str, **context: object) -> str:
    env = socket.app.template_engine.engine  # type: ignore[union-attr]
    i18n.set_locale(locale)
    return env.get_template(template).render(**context)


def render_disbursement(event: Event, ctx: BoardContext, socket: WebSocket) -> str | None:
    payload = event.payload
    d = payload["disbursement"]
    parts: list[str] = []
    if "fund_approver" in ctx.viewer.roles:
        own = d["requester_id"] == ctx.viewer.user_id
        template = (
            "ledger/fragments/inbox_new_oob.html"
            if payload["change"] == "created" and d["status"] == "pending_approval"
            else "ledger/fragments/inbox_item.html"
        )
        parts.append(_render(socket, template, ctx.locale, event=d, can_edit=own, oob=True))
    if d["requester_id"] == ctx.viewer.user_id:
        parts.append(_render(socket, "ledger/fragments/status.html", ctx.locale, d=d, oob=True))
    return "".join(parts) or None
