"""The sweeper's escalation step (exchange/plugin.py registers it): every request that still waits climbs its
ladder (exchange/oncall/ladder.py), and each step notifies by e-mail and Web Push once, however many processes
sweep and across restarts.

Once: a step is claimed by a conditional insert into `escalation_step` (unique on kind, request, step) in its own
transaction, and only the process whose insert landed notifies. A crash between the claim and the sending loses
that step's messages rather than sending them twice; the request is still on every screen that lists it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from litestar import Litestar
from sqlalchemy import delete, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from beds.answering_models import FacilityAnswering
from beds.holds_models import Hold, HoldStatus
from beds.models import Facility, new_id
from beds.timeutil import utcnow
from exchange.accounts.models import Organisation, OrgKind, Role, User
from exchange.oncall.ladder import FUND_LAST_STEP, Rung, due, fund_ladder, hold_ladder, roster_night
from exchange.oncall.mail import send_mail, waiting_mail
from exchange.oncall.models import EscalationStep, PushSubscription, RosterNight
from exchange.oncall.push import PushMessage, PushTarget, push_enabled, push_one
from exchange.settings import Settings
from exchange.web import i18n
from ledger.models import Disbursement, Status

log = structlog.get_logger()
# The oldest waiting requests looked at per sweep; the rest wait for the next pass.
BATCH = 200
FUND_PATH = "/ledger/inbox"
HOLD_PATH = "/requests"
# Coordinators see every unanswered request on their home page (the requests page is the shelters').
COORDINATOR_PATH = "/home"


@dataclass
class Waiting:
    """One waiting request and the steps of its ladder due now."""

    kind: str
    subject_id: str
    rungs: list[Rung]
    path: str
    requester_id: str | None = None
    facility_org_id: str | None = None
    done: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Taken:
    kind: str
    subject_id: str
    step: int
    people: int
    addresses: int


def channels_configured(settings: Settings) -> bool:
    return bool(settings.smtp_host) or push_enabled(settings)


async def _waiting_fund(session: AsyncSession, settings: Settings, now: datetime) -> list[Waiting]:
    rows = await session.execute(
        select(Disbursement.id, Disbursement.created_at, Disbursement.requester_id)
        .where(
            Disbursement.status == Status.PENDING_APPROVAL.value,
            Disbursement.created_at <= now,
            # A request that reached every approver has climbed its whole ladder: it stays in the inbox only.
            ~exists().where(
                EscalationStep.kind == "disbursement",
                EscalationStep.subject_id == Disbursement.id,
                EscalationStep.step == FUND_LAST_STEP,
            ),
        )
        # The newest first: an old request still waiting has had its steps; a new one must not wait behind it.
        .order_by(Disbursement.created_at.desc())  # type: ignore[attr-defined]
        .limit(BATCH)
    )
    after = timedelta(minutes=settings.escalation_all_approvers_minutes)
    return [
        Waiting("disbursement", id_, due(fund_ladder(created_at, after), now), FUND_PATH, requester_id=requester)
        for id_, created_at, requester in rows.all()
    ]


async def _waiting_holds(session: AsyncSession, settings: Settings, now: datetime) -> list[Waiting]:
    rows = await session.execute(
        select(Hold.id, Hold.respond_by, Hold.facility_org_id, Facility.oncall_email, FacilityAnswering.contacts)
        .join(Facility, Facility.id == Hold.facility_id)
        .outerjoin(FacilityAnswering, FacilityAnswering.facility_id == Hold.facility_id)
        .where(
            Hold.status == HoldStatus.REQUESTED.value,
            Hold.auto_confirmed.is_(False),  # type: ignore[attr-defined]
            Hold.respond_by <= now,
        )
        .order_by(Hold.respond_by.desc())  # type: ignore[attr-defined]
        .limit(BATCH)
    )
    gap = timedelta(minutes=settings.escalation_contact_minutes)
    waiting = []
    for id_, respond_by, org_id, oncall_email, contacts in rows.all():
        listed = [c for c in (contacts or [oncall_email]) if c]
        rungs = due(hold_ladder(respond_by, listed, gap), now)
        waiting.append(Waiting("hold", id_, rungs, HOLD_PATH, facility_org_id=org_id))
    return waiting


async def _mark_done(session: AsyncSession, waiting: list[Waiting]) -> None:
    ids = [w.subject_id for w in waiting if w.rungs]
    if not ids:
        return
    rows = await session.execute(
        select(EscalationStep.kind, EscalationStep.subject_id, EscalationStep.step).where(
            EscalationStep.subject_id.in_(ids)  # type: ignore[attr-defined]
        )
    )
    done = {(kind, subject, step) for kind, subject, step in rows.all()}
    for w in waiting:
        w.done = {r.step for r in w.rungs if (w.kind, w.subject_id, r.step) in done}


async def _active_users(session: AsyncSession, role: Role, organisation_ids: Sequence[str] | None = None) -> list[User]:
    stmt = select(User).where(User.active.is_(True))  # type: ignore[attr-defined]
    if organisation_ids is not None:
        stmt = stmt.where(User.organisation_id.in_(organisation_ids))  # type: ignore[attr-defined]
    users = (await session.execute(stmt.order_by(User.username))).scalars().all()
    return [u for u in users if u.has(role)]


async def _recipients(session: AsyncSession, settings: Settings, w: Waiting, rung: Rung) -> list[User]:
    if rung.audience == "shelter_staff":
        return await _active_users(session, Role.SHELTER_STAFF, [w.facility_org_id or ""])
    if rung.audience == "coordinators":
        coalitions = await session.execute(select(Organisation.id).where(Organisation.kind == OrgKind.COALITION))
        return await _active_users(session, Role.COORDINATOR, list(coalitions.scalars().all()))
    approvers = [u for u in await _active_users(session, Role.FUND_APPROVER) if u.id != w.requester_id]
    if rung.audience == "roster":
        night = roster_night(rung.due_at, ZoneInfo(settings.roster_time_zone))
        on_call = set((await session.execute(select(RosterNight.user_id).where(RosterNight.night == night))).scalars())
        # Nobody on the roster tonight: everyone at once rather than nobody until the second step.
        return [u for u in approvers if u.id in on_call] or approvers
    return approvers


async def _claim(session: AsyncSession, w: Waiting, rung: Rung, people: int, now: datetime) -> bool:
    """The conditional insert: True for the one process whose row landed."""
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {
        "id": new_id(),
        "kind": w.kind,
        "subject_id": w.subject_id,
        "step": rung.step,
        "recipients": people + len(rung.addresses),
        "done_at": now,
    }
    stmt = (
        insert(EscalationStep)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["kind", "subject_id", "step"])
        .returning(EscalationStep.id)
    )
    landed = (await session.execute(stmt)).scalar_one_or_none()
    await session.commit()
    return landed is not None


@dataclass(frozen=True)
class Words:
    """What one language says for one step: the push message and the mail's subject and body."""

    push: PushMessage
    subject: str
    body: str


def _words(lang: str, path: str, settings: Settings) -> Words:
    previous = i18n.get_locale()
    i18n.set_locale(lang)
    try:
        waiting = i18n.ngettext("%(num)s request waiting, open the app", "%(num)s requests waiting, open the app", 1)
        title = i18n.gettext("Refuge Exchange")
        link = i18n.gettext("Open it: %(link)s", link=settings.base_url + path)
    finally:
        i18n.set_locale(previous)
    return Words(PushMessage(title=title, body=waiting, url=path), waiting, f"{waiting}\n\n{link}\n")


async def _notify(session: AsyncSession, settings: Settings, users: list[User], rung: Rung, path: str) -> None:
    """E-mail to the step's role addresses, else to each person; Web Push to each person's phones. At a
    facility's contact step its staff's phones ring but their own mailboxes stay quiet: the role address is
    the facility's mailbox for this."""
    addresses = rung.addresses
    sends = []
    gone: list[str] = []
    if settings.smtp_host:
        english, french = _words("en", path, settings), _words("fr", path, settings)
        for address in addresses:
            # A role address is read by whoever is on shift: both languages.
            subject = f"{english.subject} / {french.subject}"
            sends.append(
                send_mail(settings, waiting_mail(settings, address, subject, f"{english.body}\n{french.body}"))
            )
        for user in users if not addresses else []:
            if user.email:
                words = _words(user.locale or "en", path, settings)
                sends.append(send_mail(settings, waiting_mail(settings, user.email, words.subject, words.body)))
    if push_enabled(settings) and users:
        by_user = {u.id: u for u in users}
        subs = await session.execute(
            select(PushSubscription).where(PushSubscription.user_id.in_(list(by_user)))  # type: ignore[attr-defined]
        )
        for sub in subs.scalars().all():
            message = _words(by_user[sub.user_id].locale or "en", path, settings).push
            target = PushTarget(sub.id, sub.endpoint, sub.p256dh, sub.auth)

            async def push(target: PushTarget = target, message: PushMessage = message) -> None:
                if not await push_one(settings, target, message):
                    gone.append(target.id)

            sends.append(push())
    # End the read before sending: on SQLite every transaction holds the write lock (exchange/db.py).
    await session.commit()
    await asyncio.gather(*sends)
    if gone:
        await session.execute(delete(PushSubscription).where(PushSubscription.id.in_(gone)))  # type: ignore[attr-defined]
        await session.commit()


async def escalate(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: datetime | None = None
) -> list[Taken]:
    """Take every due step of every waiting request once; the steps this process took, in order."""
    if not channels_configured(settings):
        # Nothing to notify with: the steps stay untaken until a channel is set up.
        return []
    now = now or utcnow()
    taken: list[Taken] = []
    async with sessionmaker() as session:
        waiting = await _waiting_fund(session, settings, now) + await _waiting_holds(session, settings, now)
        await _mark_done(session, waiting)
        await session.commit()
        for w in waiting:
            for rung in w.rungs:
                if rung.step in w.done:
                    continue
                users = await _recipients(session, settings, w, rung)
                if not await _claim(session, w, rung, len(users), now):
                    continue
                await _notify(
                    session, settings, users, rung, COORDINATOR_PATH if rung.audience == "coordinators" else w.path
                )
                taken.append(Taken(w.kind, w.subject_id, rung.step, len(users), len(rung.addresses)))
                log.info("escalation_step", kind=w.kind, step=rung.step, people=len(users))
    return taken


async def sweep_escalations(app: Litestar) -> None:
    await escalate(app.state.sessionmaker, app.state.settings)
