"""Requests that only read (GET, HEAD) answer from deferred SQLite transactions (exchange/db.py `reading`)."""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from exchange.db import reading

READ_METHODS = frozenset({"GET", "HEAD"})


def read_transactions_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in READ_METHODS:
            await app(scope, receive, send)
            return
        token = reading.set(True)

        async def sent(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                # Work after the answer (background tasks) is not the read the request was.
                reading.set(False)

        try:
            await app(scope, receive, sent)
        finally:
            reading.reset(token)

    return middleware
