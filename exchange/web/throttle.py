"""Login throttling per account, beside the per-address limit of the rate-limit middleware."""

from __future__ import annotations

from litestar.stores.base import Store

FAILURES_MAX = 5
WINDOW_SECONDS = 15 * 60


def _key(username: str) -> str:
    return "fail:" + username.strip().lower()


async def is_locked(store: Store, username: str) -> bool:
    raw = await store.get(_key(username))
    return raw is not None and int(raw) >= FAILURES_MAX


async def record_failure(store: Store, username: str) -> None:
    raw = await store.get(_key(username))
    count = int(raw) + 1 if raw is not None else 1
    await store.set(_key(username), str(count), expires_in=WINDOW_SECONDS)


async def clear_failures(store: Store, username: str) -> None:
    await store.delete(_key(username))
