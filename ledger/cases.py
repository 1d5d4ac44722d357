"""Pseudonymous cases: a generated code and a lead organisation, never anything about the person."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.errors import Conflict, NotFound
from ledger.idempotency import end_replay, stored_for_key
from ledger.models import Case
from ledger.timeutil import utcnow

# No 0/O, 1/I/L, 5/S or 2/Z: codes are read aloud on the phone and copied by hand.
ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"


@dataclass(frozen=True)
class CaseResult:
    case: Case
    created: bool


async def create_case(session: AsyncSession, *, lead_org_id: str, created_by_user_id: str) -> Case:
    """A new case, with no daily limit and no key (the demo and benchmarks); commits."""
    return (await open_case(session, lead_org_id=lead_org_id, created_by_user_id=created_by_user_id)).case


def new_case_code() -> str:
    """`C-XXXX-XX`: 27**6 ≈ 387 million codes, drawn with `secrets` so they reveal nothing and cannot be guessed."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(6))
    return f"C-{body[:4]}-{body[4:]}"


async def _serialise_creator(session: AsyncSession, user_id: str) -> None:
    """One case creation at a time per user, so the daily count cannot be raced past (PostgreSQL: an
    advisory lock for the transaction; SQLite: BEGIN IMMEDIATE already serialises every writer)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"ledger_case:{user_id}"))))


async def _case_for_key(session: AsyncSession, user_id: str, key: str) -> Case | None:
    return await stored_for_key(session, Case, Case.created_by_user_id, user_id, key)


async def open_case(
    session: AsyncSession,
    *,
    lead_org_id: str,
    created_by_user_id: str,
    daily_limit: int | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    now: datetime | None = None,
) -> CaseResult:
    """A new case led by `lead_org_id`; commits. At most `daily_limit` new cases per user in 24 hours
    (409 `case_limit`); with an `idempotency_key`, a replay answers the case it made."""
    now = now or utcnow()
    for _ in range(8):
        try:
            await _serialise_creator(session, created_by_user_id)
            if idempotency_key:
                found = await _case_for_key(session, created_by_user_id, idempotency_key)
                if found is not None:
                    await end_replay(session, found, request_hash)
                    return CaseResult(found, created=False)
            if daily_limit is not None:
                made = (
                    await session.execute(
                        select(func.count()).where(
                            Case.created_by_user_id == created_by_user_id,  # type: ignore[arg-type]
                            Case.created_at > now - timedelta(days=1),  # type: ignore[operator]
                        )
                    )
                ).scalar_one()
                if made >= daily_limit:
                    raise Conflict(
                        "case_limit",
                        f"You have opened {daily_limit} cases in the last 24 hours, the most allowed; "
                        "use an existing case or ask a coordinator.",
                        limit=daily_limit,
                    )
            case = Case(
                code=new_case_code(),
                lead_org_id=lead_org_id,
                created_by_user_id=created_by_user_id,
                created_at=now,
                idempotency_key=idempotency_key,
                request_hash=request_hash if idempotency_key else None,
            )
            session.add(case)
            await session.commit()
        except IntegrityError:
            await session.rollback()
            if idempotency_key:  # a concurrent request with the same key made it first
                found = await _case_for_key(session, created_by_user_id, idempotency_key)
                if found is not None:
                    await end_replay(session, found, request_hash)
                    return CaseResult(found, created=False)
            continue  # a code collision: draw again
        except Exception:
            await session.rollback()
            raise
        return CaseResult(case, created=True)
    raise RuntimeError("could not draw a free case code")


async def case_for_org(session: AsyncSession, code: str, organisation_id: str) -> Case:
    """The case, if this organisation leads it; otherwise it does not exist for the caller."""
    case = (await session.execute(select(Case).where(Case.code == code.strip().upper()))).scalar_one_or_none()
    if case is None or case.lead_org_id != organisation_id:
        raise NotFound("case_not_found", "No such case for your organisation.")
    return case


async def open_case_for_org(session: AsyncSession, code: str, organisation_id: str) -> Case:
    """The case, if this organisation leads it and it is open: 409 `case_closed` once closed."""
    case = await case_for_org(session, code, organisation_id)
    if case.closed_at is not None:
        raise Conflict("case_closed", "This case is closed: it takes no new request or hold.", case_code=case.code)
    return case


async def close_case(
    session: AsyncSession, code: str, organisation_id: str, *, actor_user_id: str, now: datetime | None = None
) -> Case:
    """Close a case of this organisation; commits. Closing a closed case changes nothing and answers it, so a
    repeated request acts once. What was already requested or held goes on; nothing new starts."""
    case = await case_for_org(session, code, organisation_id)
    if case.closed_at is None:
        # Conditional, so two concurrent closes write one closer.
        await session.execute(
            update(Case)
            .where(Case.id == case.id, Case.closed_at.is_(None))  # type: ignore[arg-type,union-attr]
            .values(closed_at=now or utcnow(), closed_by_user_id=actor_user_id)
        )
        await session.commit()
        await session.refresh(case)
    return case


async def cases_for_org(session: AsyncSession, organisation_id: str, limit: int = 50) -> list[Case]:
    rows = await session.execute(
        select(Case).where(Case.lead_org_id == organisation_id).order_by(Case.created_at.desc()).limit(limit)  # type: ignore[attr-defined]
    )
    return list(rows.scalars().all())
