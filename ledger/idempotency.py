"""Idempotent writes: the row a write creates keeps the caller's key and the hash of the request that made it.

Same key and same request: answer with the stored row and act once. Same key, another request: 422
`idempotency_key_reused`. A concurrent duplicate loses on the row's unique constraint, rolls back and
answers with the winner through the same two functions.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.errors import Invalid


class Keyed(Protocol):
    idempotency_key: str | None
    request_hash: str | None


Row = TypeVar("Row", bound=Keyed)


async def stored_for_key(
    session: AsyncSession, model: type[Row], user_column: Any, user_id: str, key: str
) -> Row | None:
    """The row `user_id` made with `key`; `user_column` is the model's column naming that user."""
    return (
        await session.execute(select(model).where(user_column == user_id, model.idempotency_key == key))  # type: ignore[arg-type]
    ).scalar_one_or_none()


async def end_replay(session: AsyncSession, stored: Keyed, request_hash: str | None) -> None:
    """Nothing was written: end the transaction to release the fund lock (commit, not rollback: a rollback
    expires the loaded rows the caller answers with), then refuse a key reused for another request."""
    await session.commit()
    if stored.request_hash != request_hash:
        raise Invalid("idempotency_key_reused", "This Idempotency-Key was used with another request body.")
