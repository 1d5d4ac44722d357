"""Tables of the chain's anchor: signed checkpoints of each chain's head, and the network audit chain.

A checkpoint is signed with an Ed25519 key that lives only in the environment; the database holds the
signature and the public key's hex, so a copy of the database cannot forge one. The network chain records
what admins do outside any fund (organisations, users, roles, facilities, agreements), hash-chained like a
fund's audit events, its head kept on the single `ledger_network_head` row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from ledger.models import new_id
from ledger.timeutil import UTCDateTime, utcnow

NETWORK_CHAIN = "network"


class Checkpoint(SQLModel, table=True):
    """The heads of one chain (`fund:<id>` or `network`) at one moment, signed."""

    __tablename__ = "ledger_checkpoint"
    # One checkpoint per head: several processes signing the same head insert one row.
    __table_args__ = (UniqueConstraint("chain", "journal_count", "audit_count", name="uq_ledger_checkpoint_head"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    chain: str = Field(index=True)
    journal_count: int
    journal_head: str
    audit_count: int
    audit_head: str
    signed_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    public_key: str  # hex of the raw Ed25519 public key that signed it
    signature: str  # hex


class NetworkEvent(SQLModel, table=True):
    """An admin's action outside any fund; append-only, hash-chained (`seq` 1, 2, 3 ... with `prev_hash`)."""

    __tablename__ = "ledger_network_event"
    __table_args__ = (UniqueConstraint("seq", name="uq_ledger_network_event_seq"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    seq: int
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    action: str
    actor_user_id: str | None = None
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str
    hash: str


class NetworkHead(SQLModel, table=True):
    """The network chain's head: the row every append locks first."""

    __tablename__ = "ledger_network_head"

    name: str = Field(default=NETWORK_CHAIN, primary_key=True)
    count: int = 0
    head_hash: str = ""
