"""What every form and write endpoint parses the same way: money, idempotency keys, request hashes, redirects."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
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


# --- Forms that act once and say what happened (issue 11) ---------------------------------------------------
# A form that creates or moves beds or money carries a random key made when the page is rendered
# (templates/macros.html `idempotency_field()`); a double click or a resent form posts the same key twice.
IDEMPOTENCY_FIELD = "idempotency_key"
_FORM_KEY_STORE = "sessions"  # every deployment has it (memory or Redis); keys are namespaced below
_FORM_KEY_TTL_S = 24 * 3600
_FLASH = "flash"


def new_idempotency_key() -> str:
    """A fresh key for one rendering of one form."""
    return secrets.token_urlsafe(18)


async def form_idempotency_key(request: Request) -> str | None:
    """The form's `idempotency_key` field, or None when the form has none (an old page, a hand-made post)."""
    form = await request.form()
    raw = form.get(IDEMPOTENCY_FIELD)
    key = raw.strip() if isinstance(raw, str) else ""
    if not key:
        return None
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise Invalid("invalid_idempotency_key", f"An Idempotency-Key is 1 to {IDEMPOTENCY_KEY_MAX} characters.")
    return key


def _form_key_name(request: Request, key: str) -> str:
    user = request.scope.get("user")
    return f"form-once:{getattr(user, 'id', '')}:{request.url.path}:{key}"


async def first_use_of_form(request: Request) -> bool:
    """False when this rendered form was already sent (same user, same address, same key): act once.

    A form without a key always acts; the domain still refuses a step that no longer applies.
    """
    key = await form_idempotency_key(request)
    if key is None:
        return True
    store = request.app.stores.get(_FORM_KEY_STORE)
    name = _form_key_name(request, key)
    if await store.exists(name):
        return False
    await store.set(name, b"1", expires_in=_FORM_KEY_TTL_S)
    return True


async def forget_form_use(request: Request) -> None:
    """The step failed: the same form may be sent again (the Retry of its message)."""
    key = await form_idempotency_key(request)
    if key is not None:
        await request.app.stores.get(_FORM_KEY_STORE).delete(_form_key_name(request, key))


def flash(request: Request, text: str) -> None:
    """A message shown once, on the next page this person opens (after a form's 303)."""
    session = request.scope.get("session")
    if isinstance(session, dict):
        session.setdefault(_FLASH, []).append(text)


def take_flashes(request: Request | None) -> list[str]:
    """The messages waiting for this person (base.html shows them in #messages), removed as they are shown."""
    session = request.scope.get("session") if request is not None else None
    if not isinstance(session, dict):
        return []
    return list(session.pop(_FLASH, None) or [])
