"""Live fragments of the ledger pages, sent over the generic board socket (`/board/ws`).

A disbursement event goes to approvers (their inbox item) and to its requester (their status card); the
Audience of the event already limits it to them, and each renderer checks again which part this user gets.

Each ledger page names itself on its socket (`ws-connect="/board/ws?views=ledger,holds&page=..."`), so a
socket only gets swaps whose targets that page has (htmx reports `htmx:oobErrorNoTarget` for any other):
- `page=inbox`: the approver's inbox items; a new request goes on top of its list (waiting, or approved at once).
- `page=request`: the case worker's own status cards; not a new one, which the form's answer shows in place.
- `page=status&request=<id>`: that request's card and its actions, for its requester and approvers.
A socket that names no page gets every part, as before pages named themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from litestar import WebSocket

from exchange.live.events import Event
from exchange.web import i18n
from ledger.timeutil import utcnow

if TYPE_CHECKING:
    from exchange.live.sockets import BoardContext

# Where a request new to the inbox goes, by its status when it was made.
NEW_INBOX_LIST = {"pending_approval": "#inbox-rows", "approved": "#inbox-approved"}


def _render(socket: WebSocket, template: str, locale: str, **context: object) -> str:
    env = socket.app.template_engine.engine  # type: ignore[union-attr]
    i18n.set_locale(locale)
    return env.get_template(template).render(**context)


def moved_into(status: str) -> str | None:
    """Where a request goes in the inbox once its status changed: None, it stays waiting (replaced in place);
    a list's selector, it leaves "waiting" for the top of that list; "", it leaves the inbox (decided)."""
    if status == "pending_approval":
        return None
    return NEW_INBOX_LIST.get(status, "")


def inbox_view(d: dict[str, Any]) -> dict[str, Any]:
    """The summary as the inbox item reads it: `created` as a datetime for the time waiting."""
    return {**d, "created": datetime.fromisoformat(d["created_at"])}


def _inbox_part(socket: WebSocket, ctx: BoardContext, change: str, d: dict[str, Any], page: str | None) -> str:
    me, now, d = ctx.viewer.user_id, utcnow(), inbox_view(d)
    if change == "created":
        # Legacy sockets (no page) only ever got a waiting request on top of the list.
        lists = NEW_INBOX_LIST if page == "inbox" else {"pending_approval": "#inbox-rows"}
        into = lists.get(d["status"])
        if into is not None:
            template = "ledger/fragments/inbox_new_oob.html"
            return _render(socket, template, ctx.locale, event=d, me=me, now=now, oob=True, into=into)
        if page == "inbox":
            return ""  # decided at once (refused): in neither list of the page
    if page == "inbox":
        # Every inbox of every approver, the decider's other tabs and the deciding tab included: the move is the
        # same whoever applies it first, and a tab whose answer is still on its way applies the move after it
        # (exchange/web/static/app.js holds a message back while a request is in flight inside its target).
        # A decided request leaves "waiting": approved ones go on top of "approved, not yet paid".
        template = "ledger/fragments/inbox_moved.html"
        return _render(socket, template, ctx.locale, event=d, me=me, now=now, into=moved_into(d["status"]))
    return _render(socket, "ledger/fragments/inbox_item.html", ctx.locale, event=d, me=me, now=now, oob=True)


def render_disbursement(event: Event, ctx: BoardContext, socket: WebSocket) -> str | None:
    payload = event.payload
    d = payload["disbursement"]
    change = payload["change"]
    page = socket.query_params.get("page")
    is_approver = "fund_approver" in ctx.viewer.roles
    is_requester = d["requester_id"] == ctx.viewer.user_id
    parts: list[str] = []
    if page is None:
        if is_approver:
            parts.append(_inbox_part(socket, ctx, change, d, page))
        if is_requester:
            parts.append(_render(socket, "ledger/fragments/status.html", ctx.locale, d=d, oob=True, actions=True))
    elif page == "inbox" and is_approver:
        parts.append(_inbox_part(socket, ctx, change, d, page))
    elif page == "request" and is_requester and change != "created":
        parts.append(_render(socket, "ledger/fragments/status.html", ctx.locale, d=d, oob=True, actions=False))
    elif page == "status" and socket.query_params.get("request") == d["id"] and (is_approver or is_requester):
        parts.append(_render(socket, "ledger/fragments/status.html", ctx.locale, d=d, oob=True, actions=True))
    return "".join(parts) or None
