"""Signed checkpoints: the chain anchored outside the database.

A checkpoint is the head of a chain (each fund's journal and audit chains, and the network chain of admin
actions) at one moment, signed with an Ed25519 private key that only the environment holds. Anyone with the
public key checks it; a copy of the database whose entries were rewritten, every later hash recomputed, no
longer matches the signed head, and a forged checkpoint needs the private key. Each checkpoint is also kept
outside the database when a file is named (one JSON line each), so deleting rows does not erase it.

Keys are the hex of the 32 raw bytes (`generate_keys`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.anchor_models import NETWORK_CHAIN, Checkpoint, NetworkEvent
from ledger.chain import canonical_json, canonical_time
from ledger.errors import Invalid
from ledger.models import AuditEvent, Fund, JournalEntry
from ledger.timeutil import utcnow


def fund_chain(fund_id: str) -> str:
    return f"fund:{fund_id}"


# --- keys ------------------------------------------------------------------------------------------------


def generate_keys() -> tuple[str, str]:
    """(private, public) as hex, for `LEDGER_SIGNING_KEY` and `LEDGER_PUBLIC_KEY`."""
    private = Ed25519PrivateKey.generate()
    return _private_hex(private), public_key_of(_private_hex(private))


def _private_hex(private: Ed25519PrivateKey) -> str:
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return raw.hex()


def _private(private_hex: str) -> Ed25519PrivateKey:
    try:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_hex.strip()))
    except ValueError as exc:
        raise Invalid("invalid_key", "The signing key is not the hex of 32 bytes.") from exc


def _public(public_hex: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex.strip()))
    except ValueError as exc:
        raise Invalid("invalid_key", "The public key is not the hex of 32 bytes.") from exc


def public_key_of(private_hex: str) -> str:
    public = _private(private_hex).public_key()
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


# --- what is signed --------------------------------------------------------------------------------------


def checkpoint_document(cp: Checkpoint) -> dict[str, Any]:
    return {
        "chain": cp.chain,
        "journal_count": cp.journal_count,
        "journal_head": cp.journal_head,
        "audit_count": cp.audit_count,
        "audit_head": cp.audit_head,
        "signed_at": canonical_time(cp.signed_at),
        "public_key": cp.public_key,
    }


def checkpoint_line(cp: Checkpoint) -> str:
    """The checkpoint as one JSON line (the file anchor and the CLI print this)."""
    return json.dumps({**checkpoint_document(cp), "signature": cp.signature}, sort_keys=True)


def parse_checkpoint_lines(lines: Iterable[str]) -> list[Checkpoint]:
    found = []
    for line in lines:
        if not line.strip():
            continue
        doc = json.loads(line)
        found.append(
            Checkpoint(
                chain=doc["chain"],
                journal_count=int(doc["journal_count"]),
                journal_head=doc["journal_head"],
                audit_count=int(doc["audit_count"]),
                audit_head=doc["audit_head"],
                signed_at=datetime.fromisoformat(doc["signed_at"].replace("Z", "+00:00")),
                public_key=doc["public_key"],
                signature=doc["signature"],
            )
        )
    return found


def sign(cp: Checkpoint, private_hex: str) -> Checkpoint:
    cp.public_key = public_key_of(private_hex)
    cp.signature = _private(private_hex).sign(canonical_json(checkpoint_document(cp))).hex()
    return cp


def signature_holds(cp: Checkpoint, public_hex: str) -> bool:
    if cp.public_key != public_hex.strip().lower():
        return False
    try:
        _public(public_hex).verify(bytes.fromhex(cp.signature), canonical_json(checkpoint_document(cp)))
    except (InvalidSignature, ValueError):
        return False
    return True


# --- writing ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    chain: str
    journal_count: int
    journal_head: str
    audit_count: int
    audit_head: str


async def chain_heads(session: AsyncSession) -> list[Head]:
    """Every chain's head as the database holds it now: each fund's, and the network chain's."""
    from ledger.network_audit import network_head

    heads = [
        Head(fund_chain(f.id), f.entry_count, f.head_hash, f.audit_count, f.audit_head_hash)
        for f in (await session.execute(select(Fund).order_by(Fund.id))).scalars().all()
    ]
    network = await network_head(session)
    heads.append(Head(NETWORK_CHAIN, network.count, network.head_hash, 0, ""))
    return heads


async def latest_checkpoint(session: AsyncSession, chain: str) -> Checkpoint | None:
    return (
        await session.execute(
            select(Checkpoint)
            .where(Checkpoint.chain == chain)
            .order_by(Checkpoint.journal_count.desc(), Checkpoint.audit_count.desc(), Checkpoint.signed_at.desc())  # type: ignore[attr-defined]
            .limit(1)
        )
    ).scalar_one_or_none()


async def write_checkpoints(
    session: AsyncSession,
    private_hex: str,
    *,
    every: timedelta | None = None,
    file: str | Path | None = None,
    now: datetime | None = None,
) -> list[Checkpoint]:
    """Sign and store the head of every chain that moved since its last checkpoint (and, with `every`, whose
    last checkpoint is at least that old). Several processes doing this at once store each head once: the
    unique (chain, counts) constraint lets one insert win. Returns the checkpoints this call wrote, each also
    appended to `file` when one is named."""
    now = now or utcnow()
    public_hex = public_key_of(private_hex)
    written = []
    heads = await chain_heads(session)
    await session.rollback()
    for head in heads:
        last = await latest_checkpoint(session, head.chain)
        same_head = last is not None and (last.journal_count, last.audit_count) == (
            head.journal_count,
            head.audit_count,
        )
        if same_head and last is not None and last.public_key == public_hex:
            continue
        if last is not None and every is not None and last.signed_at > now - every:
            continue
        cp = sign(
            Checkpoint(
                chain=head.chain,
                journal_count=head.journal_count,
                journal_head=head.journal_head,
                audit_count=head.audit_count,
                audit_head=head.audit_head,
                signed_at=now,
                public_key="",
                signature="",
            ),
            private_hex,
        )
        session.add(cp)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()  # another process signed this head first
            continue
        written.append(cp)
    if file and written:
        lines = "".join(checkpoint_line(cp) + "\n" for cp in written)
        await asyncio.to_thread(_append, Path(file), lines)
    return written


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(text)


# --- checking --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorCheck:
    """The chain against every checkpoint the public key signed. `problem` is a machine word:
    no_checkpoint, signature (a checkpoint row that claims the key but does not verify), journal_head or
    audit_head (the link a checkpoint names differs, or is gone)."""

    ok: bool
    problem: str | None
    checked: int
    anchored_journal: int
    anchored_audit: int
    bad_checkpoint_id: str | None = None


async def _hash_at(session: AsyncSession, model: Any, chain: str, seq: int) -> str | None:
    if seq == 0:
        return ""
    query = select(model.hash).where(model.seq == seq)
    if model is not NetworkEvent:
        query = query.where(model.fund_id == chain.removeprefix("fund:"))
    return (await session.execute(query)).scalar_one_or_none()


async def verify_anchor(
    session: AsyncSession, chain: str, public_hex: str, checkpoints: Sequence[Checkpoint] | None = None
) -> AnchorCheck:
    """Check the chain's stored links against the signed checkpoints (the database's, or `checkpoints`
    read from a file kept elsewhere). The hash chain itself is walked by ledger/verify.py: a link that
    matches its checkpoint there vouches for every link before it."""
    if checkpoints is None:
        checkpoints = list((await session.execute(select(Checkpoint).where(Checkpoint.chain == chain))).scalars())
    else:
        checkpoints = [cp for cp in checkpoints if cp.chain == chain]
    journal_model: Any = NetworkEvent if chain == NETWORK_CHAIN else JournalEntry
    anchored_journal = anchored_audit = checked = 0
    for cp in sorted(checkpoints, key=lambda c: (c.journal_count, c.audit_count)):
        if cp.public_key != public_hex.strip().lower():
            continue  # signed by some other key: it vouches for nothing
        if not signature_holds(cp, public_hex):
            return AnchorCheck(False, "signature", checked, anchored_journal, anchored_audit, cp.id)
        if await _hash_at(session, journal_model, chain, cp.journal_count) != cp.journal_head:
            return AnchorCheck(False, "journal_head", checked, anchored_journal, anchored_audit, cp.id)
        if chain != NETWORK_CHAIN and await _hash_at(session, AuditEvent, chain, cp.audit_count) != cp.audit_head:
            return AnchorCheck(False, "audit_head", checked, anchored_journal, anchored_audit, cp.id)
        checked += 1
        anchored_journal, anchored_audit = cp.journal_count, cp.audit_count
    if checked == 0:
        return AnchorCheck(False, "no_checkpoint", 0, 0, 0)
    return AnchorCheck(True, None, checked, anchored_journal, anchored_audit)
