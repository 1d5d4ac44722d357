"""Canonical content and SHA-256 hashes of the two per-fund chains (journal entries and audit events).

Chains are per fund: entry `seq` n stores the hash of entry n-1 (`""` for the first) and the SHA-256 of
its own canonical content, which includes that previous hash. Changing, inserting or removing any entry
changes every hash after it; the fund row keeps the head, so removing the tail is seen too.

The hash is computed from the row itself, both when it is appended and when the chain is verified, so the
two cannot drift apart.

Recomputing a journal entry's hash by hand (what an auditor does with the journal CSV): build the JSON object
{"id", "fund", "seq", "kind", "date", "memo", "disbursement", "currency", "debits", "credits", "lines", "prev"}
where `date` is the posting time in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, `disbursement` is the request's id
or null, `debits`/`credits` the entry's totals in cents, `lines` the list of [account code, side, cents] in
the CSV's order, and `prev` the previous entry's hash ("" for the first); serialise it with sorted keys, no
whitespace (separators "," and ":") and UTF-8 without escaping; the SHA-256 hex digest is the entry's hash.
In Python: `hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
.encode()).hexdigest()`. The network chain (admin actions) hashes {"id", "seq", "at", "action", "actor",
"detail", "prev"} the same way. A signed checkpoint covers the canonical JSON of `checkpoint_document`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ledger.anchor_models import NetworkEvent
from ledger.models import AuditEvent, JournalEntry

GENESIS = ""


def canonical_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


def entry_hash(entry: JournalEntry, currency: str, lines: Sequence[tuple[str, str, int]]) -> str:
    """`lines` are (account code, side, amount_cents) in their stored position order; the fund's currency
    is part of what an amount means, so it is hashed too."""
    return _digest(
        {
            "id": entry.id,
            "fund": entry.fund_id,
            "seq": entry.seq,
            "kind": entry.kind,
            "date": canonical_time(entry.posted_at),
            "memo": entry.memo,
            "disbursement": entry.disbursement_id,
            "currency": currency,
            "debits": entry.total_debits_cents,
            "credits": entry.total_credits_cents,
            "lines": [[account, side, amount] for account, side, amount in lines],
            "prev": entry.prev_hash,
        }
    )


def event_hash(event: AuditEvent) -> str:
    return _digest(
        {
            "id": event.id,
            "fund": event.fund_id,
            "seq": event.seq,
            "at": canonical_time(event.at),
            "action": event.action,
            "actor": event.actor_user_id,
            "disbursement": event.disbursement_id,
            "detail": event.detail,
            "prev": event.prev_hash,
        }
    )


def network_event_hash(event: NetworkEvent) -> str:
    return _digest(
        {
            "id": event.id,
            "seq": event.seq,
            "at": canonical_time(event.at),
            "action": event.action,
            "actor": event.actor_user_id,
            "detail": event.detail,
            "prev": event.prev_hash,
        }
    )
