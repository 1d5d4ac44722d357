"""What every form and write endpoint parses the same way: money, idempotency keys, request hashes, redirects."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.params import Body

from ledger.errors import Invalid

IDEMPOTENCY_KEY_MAX = 200
# A page's form post, parsed into the handler's Struct: `data: Annotated[SomeForm, FORM]`.
FORM = Body(media_type=RequestEncodingType.URL_ENCODED)

# Dollars and cents as people type them: "25", "25.5", "25,50", "$1 200.00". No exponent, no Infinity.
_MONEY = re.compile(r"^\$?(\d{1,9})(?:[.,](\d{1,2}))?\$?$")


def parse_money(text: str) -> int:
    """Typed dollars -> integer cents, by integer arithmetic: money never passes through a float."""
    match = _MONEY.match((text or "").replace(" ", "").replace("\u00a0", ""))
    if not match:
        raise Invalid("invalid_amount", "Write the amount in dollars, like 25 or 25.50.")
    whole, cents = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(cents)


def idempotency_key(request: Request) -> str | None:
    """The `Idempotency-Key` header, or None; API.md's bounds on its length."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX:
        raise Invalid("invalid_idempotency_key", f"An Idempotency-Key is 1 to {IDEMPOTENCY_KEY_MAX} characters.")
    return key


def request_hash(body: msgspec.Struct | dict[str, Any] | None, **extra: Any) -> str:
    """SHA-256 of the canonical request (body plus what the path names), stored beside its idempotency key."""
    data = msgspec.to_builtins(body) if isinstance(body, msgspec.Struct) else dict(body or {})
    data.update(extra)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def safe_next(target: str) -> str:
    """Only local paths, so no form can bounce someone to another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"
