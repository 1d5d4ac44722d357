"""`Server-Timing: app;dur=<ms>` on every HTTP response, so browsers' devtools and bench/ see server time."""

from __future__ import annotations

import time

from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send


def server_timing_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        start = time.perf_counter()

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers.add("Server-Timing", f"app;dur={(time.perf_counter() - start) * 1000:.1f}")
            await send(message)

        await app(scope, receive, send_with_timing)

    return middleware
