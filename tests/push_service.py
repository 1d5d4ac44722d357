"""A push service of our own for the tests, as a browser vendor's would be: each subscription it hands out has
an endpoint here and the key pair a browser would keep. On each push it checks the VAPID JWT (ES256) against the
key the app is configured with, and that the JWT names this service as its audience, then decrypts the
aes128gcm payload with the subscription's private key and auth secret, and records what it received.

It runs http.server in a thread on a free port; `url` is its origin."""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def vapid_keys() -> tuple[str, str]:
    """(public, private) as the app's settings take them: the raw uncompressed point and the raw scalar."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url(public), b64url(key.private_numbers().private_value.to_bytes(32, "big"))


@dataclass
class Received:
    token: str
    claims: dict[str, Any]
    ttl: int
    payload: dict[str, Any]


@dataclass
class Refused:
    token: str
    reason: str


class PushService:
    def __init__(self, vapid_public_key: str) -> None:
        self.vapid_public_key = vapid_public_key
        self.received: list[Received] = []
        self.refused: list[Refused] = []
        self.gone: set[str] = set()
        self._keys: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}
        self._lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                status = service._handle(
                    self.path, dict(self.headers.items()), self.rfile.read(int(self.headers["Content-Length"] or 0))
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PushService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def subscription(self) -> dict[str, Any]:
        """What `PushSubscription.toJSON()` gives a page: an endpoint here and the browser's public keys."""
        token = secrets.token_urlsafe(16)
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        with self._lock:
            self._keys[token] = (key, auth)
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": f"{self.url}/push/{token}", "keys": {"p256dh": b64url(public), "auth": b64url(auth)}}

    def token_of(self, subscription: dict[str, Any]) -> str:
        return subscription["endpoint"].rsplit("/", 1)[1]

    def for_token(self, token: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.token == token]

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        token = path.removeprefix("/push/")
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            known = self._keys.get(token)
            if known is None or token in self.gone:
                return 410
        try:
            claims = self._check_vapid(lowered.get("authorization", ""))
            if lowered.get("content-encoding") != "aes128gcm":
                raise ValueError("not aes128gcm")
            key, auth = known
            plain = http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm")
            payload = json.loads(plain)
        except (ValueError, InvalidSignature, KeyError) as exc:
            with self._lock:
                self.refused.append(Refused(token, f"{type(exc).__name__}: {exc}"))
            return 401
        with self._lock:
            self.received.append(Received(token, claims, int(lowered.get("ttl", "0")), payload))
        return 201

    def _check_vapid(self, authorization: str) -> dict[str, Any]:
        scheme, _, params = authorization.partition(" ")
        if scheme != "vapid":
            raise ValueError("no vapid authorization")
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        if fields.get("k") != self.vapid_public_key:
            raise ValueError("signed with another key")
        header, claims_part, signature = fields["t"].split(".")
        if json.loads(unb64url(header)).get("alg") != "ES256":
            raise ValueError("not ES256")
        raw = unb64url(signature)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public.verify(der, f"{header}.{claims_part}".encode(), ec.ECDSA(hashes.SHA256()))
        claims = json.loads(unb64url(claims_part))
        if claims.get("aud") != self.url:
            raise ValueError("wrong audience")
        if not (time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600):
            raise ValueError("expired or too long")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            raise ValueError("no contact")
        return claims
