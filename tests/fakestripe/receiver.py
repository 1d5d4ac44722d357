"""A minimal webhook endpoint (raw ASGI, served by uvicorn in a thread) that verifies each delivery with the
SDK's ``stripe.Webhook.construct_event`` and answers authorization requests. It stands in for the app when
testing the fake itself; app tests point ``FakeStripe.webhook_url`` at the real app instead."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import stripe
import uvicorn

JSON = dict[str, Any]


@dataclass
class Received:
    body: str
    headers: dict[str, str]
    event: JSON | None
    error: str | None


class ThreadedServer:
    """Serve an ASGI app with uvicorn on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


class WebhookReceiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self.approve: bool | Callable[[JSON], bool] = True
        self.delay = 0.0
        self.send_version_header = True
        self._lock = threading.Lock()
        self._server: ThreadedServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.port}/webhook"

    @property
    def events(self) -> list[JSON]:
        return [r.event for r in self.received if r.event is not None]

    @property
    def rejected(self) -> list[Received]:
        return [r for r in self.received if r.event is None]

    def __enter__(self) -> WebhookReceiver:
        self._server = ThreadedServer(self)
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.stop()

    async def __call__(self, scope: JSON, receive: Callable[[], Awaitable[JSON]], send: Callable[[JSON], Any]) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks).decode()
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            event = stripe.Webhook.construct_event(body, headers.get("stripe-signature"), self.secret)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            with self._lock:
                self.received.append(Received(body, headers, None, str(exc)))
            await self._answer(send, 400, {"error": "invalid signature"})
            return
        data = event.to_dict()
        with self._lock:
            self.received.append(Received(body, headers, data, None))
        if data["type"] != "issuing_authorization.request":
            await self._answer(send, 200, {"received": True})
            return
        if self.delay:
            await asyncio.sleep(self.delay)
        approve = self.approve(data) if callable(self.approve) else self.approve
        extra = {"Stripe-Version": data["api_version"]} if self.send_version_header else {}
        await self._answer(send, 200, {"approved": approve}, extra)

    async def _answer(
        self, send: Callable[[JSON], Any], status: int, body: JSON, extra: dict[str, str] | None = None
    ) -> None:
        headers = [(b"content-type", b"application/json")]
        headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})
