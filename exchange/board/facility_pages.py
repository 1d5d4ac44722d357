"""One facility: its pools, history, and for its own staff the forms to set counts, add surge beds, confirm."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.channels import ChannelsPlugin
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from msgspec import Struct
from sqlalchemy.ext.asyncio import AsyncSession

from beds import pools as pool_ops
from beds.board import get_listing, pool_history
from beds.errors import Invalid
from beds.timeutil import utcnow
from beds.visibility import may_edit_pool
from exchange.accounts.models import User
from exchange.board.addresses import reveal_address, viewer_with_grants
from exchange.board.pages import staffed_facility
from exchange.live.events import publish_pool
from exchange.settings import Settings
from exchange.web.nav import page_context

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)


class CountsForm(Struct):
    capacity: int
    occupied: int
    out_of_service: int
    version: int


class SurgeForm(Struct):
    beds: int
    hours: int
    reason: str = ""


class FacilityPages(Controller):
    @get("/facilities/{facility_id:str}")
    async def facility(
        self, request: Request[User, str, object], db: AsyncSession, settings: Settings, facility_id: str
    ) -> Template:
        listing = await get_listing(db, facility_id, stale_after=settings.stale_after)
        viewer, grants = await viewer_with_grants(db, request.user, request.app.state.registry.grant_sources)
        show_contact = await reveal_address(db, viewer, grants, listing.facility, "page")
        can_edit = may_edit_pool(viewer, listing.facility.organisation_id)
        history = {}
        if can_edit:
            history = {pool.id: await pool_history(db, pool.id, limit=10) for pool in listing.pools}
        return Template(
            "facility.html",
            context=page_context(
                request,
                listing=listing,
                show_contact=show_contact,
                can_edit=can_edit,
                history=history,
                now=utcnow(),
            ),
        )

    @post("/facilities/{facility_id:str}/confirm", status_code=303)
    async def confirm_counts(
        self, request: Request[User, str, object], db: AsyncSession, channels: ChannelsPlugin, facility_id: str
    ) -> Redirect:
        await staffed_facility(db, request.user, facility_id)
        for pool in await pool_ops.confirm_counts(db, facility_id):
            publish_pool(channels, pool)
        return Redirect(path="/", status_code=303)

    @post("/pools/{pool_id:str}/counts", status_code=303)
    async def set_counts(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        pool_id: str,
        data: Annotated[CountsForm, FORM],
    ) -> Redirect:
        pool = await pool_ops.get_pool(db, pool_id)
        facility = await staffed_facility(db, request.user, pool.facility_id)
        pool = await pool_ops.set_counts(
            db,
            pool_id,
            capacity=data.capacity,
            occupied=data.occupied,
            out_of_service=data.out_of_service,
            version=data.version,
            actor_user_id=request.user.id,
        )
        publish_pool(channels, pool)
        return Redirect(path=f"/facilities/{facility.id}", status_code=303)

    @post("/pools/{pool_id:str}/surge", status_code=303)
    async def add_surge(
        self,
        request: Request[User, str, object],
        db: AsyncSession,
        channels: ChannelsPlugin,
        pool_id: str,
        data: Annotated[SurgeForm, FORM],
    ) -> Redirect:
        pool = await pool_ops.get_pool(db, pool_id)
        facility = await staffed_facility(db, request.user, pool.facility_id)
        if not 1 <= data.hours <= 14 * 24:
            raise Invalid("invalid_expiry", "Surge beds last between 1 hour and 14 days.")
        await pool_ops.add_surge(
            db,
            pool_id,
            beds=data.beds,
            expires_at=utcnow() + timedelta(hours=data.hours),
            reason=data.reason,
            actor_user_id=request.user.id,
        )
        publish_pool(channels, await pool_ops.get_pool(db, pool_id))
        return Redirect(path=f"/facilities/{facility.id}", status_code=303)
