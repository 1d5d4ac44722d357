"""Tables of the answer at any hour: the phones that asked for Web Push, the approvers' roster per night, and
the escalation steps already taken (the unique key is what makes a step notify once)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from beds.models import new_id
from beds.timeutil import UTCDateTime, utcnow


class PushSubscription(SQLModel, table=True):
    """One browser's Web Push subscription (the Push API's endpoint and its two keys), owned by one user."""

    __tablename__ = "push_subscription"

    id: str = Field(default_factory=new_id, primary_key=True)
    user_id: str = Field(foreign_key="user_account.id", index=True)
    endpoint: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    p256dh: str
    auth: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class RosterNight(SQLModel, table=True):
    """An approver on call for one night (a night runs from noon of `night` to noon the next day)."""

    __tablename__ = "approver_roster"
    __table_args__ = (UniqueConstraint("night", "user_id", name="uq_approver_roster_night_user"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    night: date = Field(sa_column=Column(Date, nullable=False, index=True))
    user_id: str = Field(foreign_key="user_account.id")
    set_by: str = Field(foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class EscalationStep(SQLModel, table=True):
    """A step of the ladder taken for one waiting request (`kind` "hold" or "disbursement"). Written by a
    conditional insert before anyone is notified: the process whose insert lands notifies, the others skip."""

    __tablename__ = "escalation_step"
    __table_args__ = (UniqueConstraint("kind", "subject_id", "step", name="uq_escalation_step"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    kind: str
    subject_id: str = Field(index=True)
    step: int
    recipients: int = 0
    done_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
