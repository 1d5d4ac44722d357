"""Canonical content and SHA-256 hashes of the two per-fund chains (journal entries and audit events).

Chains are per fund: entry `seq` n stores the hash of entry n-1 (`""` for the first) and the SHA-256 of
its own canonical content, which includes that previous hash. Changing, inserting or removing any entry
changes every hash after it; the fund row keeps the head, so removing the tail is seen too.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = ""


def canonical_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _digest(document: dict[str, Any]) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def entry_hash(
    *,
    entry_id: str,
    fund_id: str,
    seq: int,
    kind: str,
    posted_at: datetime,
    memo: str,
    disbursement_id: str | None,
    currency: str,
    total_debits_cents: int,
    total_credits_cents: int,
    lines: list[tuple[str, str, int]],
    prev_hash: str,
) -> str:
    """`lines` are (account code, side, amount_cents) in their stored position order."""
    return _digest(
        {
            "id": entry_id,
            "fund": fund_id,
            "seq": seq,
            "kind": kind,
            "date": canonical_time(posted_at),
            "memo": memo,
            "disbursement": disbursement_id,
            "currency": currency,
            "debits": total_debits_cents,
            "credits": total_credits_cents,
            "lines": [[account, side, amount] for account, side, amount in lines],
            "prev": prev_hash,
        }
    )


def event_hash(
    *,
    event_id: str,
    fund_id: str,
    seq: int,
    at: datetime,
    action: str,
    actor_user_id: str | None,
    disbursement_id: str | None,
    detail: dict[str, Any],
    prev_hash: str,
) -> str:
    return _digest(
        {
            "id": event_id,
            "fund": fund_id,
            "seq": seq,
            "at": canonical_time(at),
            "action": action,
            "actor": actor_user_id,
            "disbursement": disbursement_id,
            "detail": detail,
            "prev": prev_hash,
        }
    )


def body_hash(body: dict[str, Any]) -> str:
    """The SHA-256 of a request body, canonicalised, stored next to its idempotency key."""
    return _digest(body)
