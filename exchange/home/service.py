"""What each role's home shows, for one request's user, read through the services of the features it shows.

A user may hold several roles: the home has a section for each, and a section where something waits for the
person (a hold request to answer, a fund request to approve, a role grant to decide) comes before the others.
The navigation's counts (waiting approvals, open hold requests) are counted here too, one query each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from litestar import Request
from litestar.channels import ChannelsPlugin
from litestar.di import Provide
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from beds import pools as pool_ops
from beds.coverage import OperationStatus
from beds.holds_models import Hold, HoldIncident, HoldStatus
from beds.models import BedPool, Facility
from beds.placements_models import FollowUp, Placement
from beds.timeutil import utcnow
from exchange.accounts.models import Organisation, Role, User
from exchange.admin.service import AdminService
from exchange.fund.service import FundService
from exchange.holds.service import HoldService, OperationDetail
from exchange.home.counts import nav_counts
from exchange.placements.service import PlacementService
from exchange.registry import CardIssuerFactory, GrantSource
from exchange.settings import Settings
from ledger import checkpoints
from ledger.anchor_models import NETWORK_CHAIN, Checkpoint
from ledger.models import Case, Disbursement, Fund

# How many of each list a home shows before "see all": enough to act on, few enough to fit a phone's screen.
REQUESTS_SHOWN = 3
OPERATIONS_SHOWN = 3
WAITING_SHOWN = 3
CASES_SHOWN = 5
MY_REQUESTS_SHOWN = 5
INCIDENTS_SHOWN = 3

# --- the sections ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnFacility:
    facility: Facility
    pools: list[BedPool]
    stale: bool


@dataclass(frozen=True)
class ShelterSection:
    """Open hold requests (the most pressing answer first), then each own facility with its pools."""

    requests: list[Hold]
    more_requests: int
    labels: dict[str, tuple[BedPool, Facility]]
    facilities: list[OwnFacility]


@dataclass(frozen=True)
class PoliceSection:
    """The service's operations that are not over, newest first, with their coverage; the province's board."""

    operations: list[OperationDetail]
    more_operations: int
    province: str


@dataclass(frozen=True)
class ApproverSection:
    waiting_count: int
    waiting: list[Disbursement]


@dataclass(frozen=True)
class CaseWorkerSection:
    cases: list[Case]
    requests: list[Disbursement]
    # Follow-up dates of their cases' ended stays, not yet done (exchange/placements/service.py).
    follow_ups: list[tuple[FollowUp, Placement]] = field(default_factory=list)


@dataclass(frozen=True)
class AuditorSection:
    """The last signed checkpoint of each fund's chain and of the network's chain."""

    funds: list[tuple[Fund, Checkpoint | None]]
    network: Checkpoint | None


@dataclass(frozen=True)
class AdminSection:
    grants_to_decide: int
    grants_pending: int
    stale_facilities: int
    incidents: list[HoldIncident]


@dataclass(frozen=True)
class CoordinatorSection:
    unanswered: int
    incidents: list[HoldIncident]


@dataclass(frozen=True)
class Section:
    """One role's part of the home: `name` names its template (templates/home/<name>.html); `waiting` counts
    what waits for the person there, and a section with something waiting comes first."""

    name: str
    waiting: int
    data: Any


# The order of the sections when nothing, or something in each, waits: the most time-critical work first.
SECTION_ORDER = ("shelter", "approver", "police", "coordinator", "admin", "case_worker", "auditor")


@dataclass(frozen=True)
class Home:
    sections: list[Section]
    now: datetime
    counts: dict[str, int] = field(default_factory=dict)

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)


class HomeService:
    """One request's user; the holds, fund and admin services it reads through, built for the same user.

    A plain class, not a dataclass: Litestar would otherwise read its fields' types to validate the dependency."""

    def __init__(
        self,
        db: AsyncSession,
        channels: ChannelsPlugin,
        settings: Settings,
        user: User,
        grant_sources: Sequence[GrantSource] = (),
        card_issuers: Sequence[CardIssuerFactory] = (),
    ) -> None:
        self.db = db
        self.channels = channels
        self.settings = settings
        self.user = user
        self.grant_sources = grant_sources
        self.card_issuers = card_issuers

    def _holds(self) -> HoldService:
        return HoldService(self.db, self.channels, self.settings, self.user, self.grant_sources)

    def _fund(self) -> FundService:
        return FundService(self.db, self.channels, self.settings, self.user, self.card_issuers)

    def _builders(self) -> dict[str, tuple[Role, Callable[[], Awaitable[Section]]]]:
        return {
            "shelter": (Role.SHELTER_STAFF, self.shelter),
            "approver": (Role.FUND_APPROVER, self.approver),
            "police": (Role.POLICE_PLANNER, self.police),
            "coordinator": (Role.COORDINATOR, self.coordinator),
            "admin": (Role.NETWORK_ADMIN, self.admin),
            "case_worker": (Role.CASE_WORKER, self.case_worker),
            "auditor": (Role.AUDITOR, self.auditor),
        }

    async def home(self) -> Home:
        sections = [await build() for role, build in self._builders().values() if self.user.has(role)]
        sections.sort(key=lambda s: (s.waiting == 0, SECTION_ORDER.index(s.name)))
        return Home(sections, utcnow(), await nav_counts(self.db, self.user))

    async def counts(self) -> dict[str, int]:
        """The navigation's counts this user may see."""
        return await nav_counts(self.db, self.user)

    async def section(self, name: str) -> Section | None:
        """One section alone (a live refresh of the home), or None if the user has not its role."""
        found = self._builders().get(name)
        if found is None or not self.user.has(found[0]):
            return None
        return await found[1]()

    # --- each role ------------------------------------------------------------------------------------------

    async def shelter(self) -> Section:
        holds = self._holds()
        now = utcnow()
        open_ = [h for h in await holds.requests() if h.status == HoldStatus.REQUESTED.value and h.expires_at > now]
        open_.sort(key=lambda h: h.respond_by)
        shown = open_[:REQUESTS_SHOWN]
        labels = await holds.pools_with_facilities({h.pool_id for h in shown})
        stale_ids = {
            f.id
            for f in await pool_ops.stale_facilities(
                self.db, self.user.organisation_id, now - self.settings.stale_after
            )
        }
        facilities: dict[str, OwnFacility] = {}
        for pool, facility in await holds.own_pools():
            if not facility.active:
                continue
            own = facilities.setdefault(facility.id, OwnFacility(facility, [], facility.id in stale_ids))
            own.pools.append(pool)
        data = ShelterSection(shown, len(open_) - len(shown), labels, list(facilities.values()))
        return Section("shelter", len(open_), data)

    async def police(self) -> Section:
        details = [d for d in await self._holds().operations() if d.status != OperationStatus.ENDED]
        # Newest first: the operation being planned now is the one a planner comes back to.
        details.sort(key=lambda d: d.operation.created_at, reverse=True)
        organisation = await self.db.get(Organisation, self.user.organisation_id)
        province = organisation.province if organisation else ""
        data = PoliceSection(details[:OPERATIONS_SHOWN], max(0, len(details) - OPERATIONS_SHOWN), province)
        return Section("police", 0, data)

    async def approver(self) -> Section:
        waiting, _approved = await self._fund().inbox()
        # The oldest request has waited longest: it comes first, as in a queue.
        waiting.sort(key=lambda d: d.created_at)
        return Section("approver", len(waiting), ApproverSection(len(waiting), waiting[:WAITING_SHOWN]))

    async def case_worker(self) -> Section:
        fund = self._fund()
        cases = (await fund.open_cases())[:CASES_SHOWN]
        follow_ups = await PlacementService(self.db, self.channels, self.settings, self.user).follow_ups()
        requests = await fund.my_requests(limit=MY_REQUESTS_SHOWN)
        return Section("case_worker", 0, CaseWorkerSection(cases, requests, follow_ups))

    async def auditor(self) -> Section:
        funds, _chosen = await self._fund().fund_choice(None)
        rows = [(f, await checkpoints.latest_checkpoint(self.db, checkpoints.fund_chain(f.id))) for f in funds]
        network = await checkpoints.latest_checkpoint(self.db, NETWORK_CHAIN)
        return Section("auditor", 0, AuditorSection(rows, network))

    async def admin(self) -> Section:
        grants = await AdminService(self.db, self.user, self.channels).pending_grants()
        to_decide = sum(1 for g in grants if g.may_decide)
        stale_before = utcnow() - self.settings.stale_after
        stale = await self.db.scalar(
            select(func.count())
            .select_from(Facility)
            .where(Facility.active.is_(True), Facility.updated_at < stale_before)  # type: ignore[attr-defined,operator]
        )
        incidents = (await self._holds().incidents())[:INCIDENTS_SHOWN]
        return Section("admin", to_decide, AdminSection(to_decide, len(grants), int(stale or 0), incidents))

    async def coordinator(self) -> Section:
        unanswered = await self.db.scalar(
            select(func.count())
            .select_from(Hold)
            .where(Hold.status == HoldStatus.REQUESTED.value, Hold.flagged_unanswered.is_(True))  # type: ignore[attr-defined]
        )
        incidents = (await self._holds().incidents())[:INCIDENTS_SHOWN]
        data = CoordinatorSection(int(unanswered or 0), incidents)
        return Section("coordinator", int(unanswered or 0), data)


def provide_home_service(
    request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, settings: Settings
) -> HomeService:
    registry = request.app.state.registry
    return HomeService(db, channels, settings, request.user, registry.grant_sources, registry.card_issuers)


# The home's controller declares this: its handlers take `service: HomeService`.
SERVICE = {"service": Provide(provide_home_service, sync_to_thread=False)}
