"""Role grants waiting for a second person, in the JSON API: list them, approve or refuse one.

A network admin sees every pending grant; anyone else only those they may decide (exchange/admin/grants.py).
Approving or refusing the same way again answers the grant as decided (an `Idempotency-Key` replay acts once).
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Controller, get, post

from exchange.accounts.models import RoleGrant
from exchange.admin.grants import DECIDERS
from exchange.admin.service import SERVICE, AdminService, GrantView
from exchange.web.auth import requires_roles


class GrantOut(msgspec.Struct):
    id: str
    user_id: str
    organisation_id: str
    roles: list[str]
    lead_worker: bool
    state: str
    requested_by_user_id: str
    requested_at: datetime
    decided_by_user_id: str | None
    decided_at: datetime | None
    # Whether the caller may approve or refuse it.
    may_decide: bool = False

    @classmethod
    def of(cls, grant: RoleGrant, *, may_decide: bool = False) -> GrantOut:
        return cls(
            id=grant.id,
            user_id=grant.user_id,
            organisation_id=grant.organisation_id,
            roles=list(grant.roles),
            lead_worker=grant.lead_worker,
            state=grant.state,
            requested_by_user_id=grant.requested_by_user_id,
            requested_at=grant.requested_at,
            decided_by_user_id=grant.decided_by_user_id,
            decided_at=grant.decided_at,
            may_decide=may_decide,
        )

    @classmethod
    def view(cls, view: GrantView) -> GrantOut:
        return cls.of(view.grant, may_decide=view.may_decide)


class GrantController(Controller):
    path = "/api/v1/admin/grants"
    tags = ["admin"]
    guards = [requires_roles(*DECIDERS)]
    dependencies = SERVICE

    @get("/")
    async def list_grants(self, service: AdminService) -> list[GrantOut]:
        return [GrantOut.view(v) for v in await service.pending_grants()]

    @post("/{grant_id:str}/approve", status_code=200)
    async def approve(self, service: AdminService, grant_id: str) -> GrantOut:
        """403 `own_grant_request` for the admin who asked, `own_grant` for the account itself, `not_eligible`
        for anyone else who may not; 409 `grant_decided` once decided by someone else."""
        return GrantOut.of(await service.decide_grant(grant_id, approve=True))

    @post("/{grant_id:str}/refuse", status_code=200)
    async def refuse(self, service: AdminService, grant_id: str) -> GrantOut:
        return GrantOut.of(await service.decide_grant(grant_id, approve=False))
