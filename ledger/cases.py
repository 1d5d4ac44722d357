"""Pseudonymous cases: a generated code and a lead organisation, never anything about the person."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.errors import NotFound
from ledger.models import Case

# No 0/O, 1/I/L, 5/S or 2/Z: codes are read aloud on the phone and copied by hand.
ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"


def new_case_code() -> str:
    """`C-XXXX-XX`: 27**6 ≈ 387 million codes, drawn with `secrets` so they reveal nothing and cannot be guessed."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(6))
    return f"C-{body[:4]}-{body[4:]}"


async def create_case(session: AsyncSession, *, lead_org_id: str, created_by_user_id: str) -> Case:
    for _ in range(8):
        case = Case(code=new_case_code(), lead_org_id=lead_org_id, created_by_user_id=created_by_user_id)
        session.add(case)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()  # a code collision: draw again
            continue
        return case
    raise RuntimeError("could not draw a free case code")


async def case_for_org(session: AsyncSession, code: str, organisation_id: str) -> Case:
    """The case, if this organisation leads it; otherwise it does not exist for the caller."""
    case = (await session.execute(select(Case).where(Case.code == code.strip().upper()))).scalar_one_or_none()
    if case is None or case.lead_org_id != organisation_id:
        raise NotFound("case_not_found", "No such case for your organisation.")
    return case


async def cases_for_org(session: AsyncSession, organisation_id: str, limit: int = 50) -> list[Case]:
    rows = await session.execute(
        select(Case).where(Case.lead_org_id == organisation_id).order_by(Case.created_at.desc()).limit(limit)  # type: ignore[attr-defined]
    )
    return list(rows.scalars().all())
