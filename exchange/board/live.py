"""The board on the wire: a pool's change published in the versions its audiences may see, and its row, swapped
out-of-band on every board that shows it.

Beds held for a police operation are told as held only to the parties (the police service holding them, the
facility's organisation, the coordinators); every other account receives the same pool with those beds counted as
not free (beds/board.py `as_seen`), so a bulk allocation shows nowhere as a jump in held beds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import WebSocket
from litestar.channels import ChannelsPlugin
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from beds.board import KeptFor, as_seen, kept_unused, police_held
from beds.models import BedPool, Facility
from beds.timeutil import utcnow
from exchange.accounts.models import Organisation
from exchange.live.events import Audience, Event, publish
from exchange.live.sockets import BoardContext
from exchange.web import i18n

COORDINATOR = "coordinator"


def pool_json(pool: Any) -> dict[str, Any]:
    updated_at: datetime = pool.updated_at
    return {
        "id": pool.id,
        "profile": str(pool.profile),
        "capacity": pool.capacity,
        "occupied": pool.occupied,
        "out_of_service": pool.out_of_service,
        "held": pool.held,
        "free": pool.free,
        "version": pool.version,
        "updated_at": updated_at.isoformat(),
        # The kept beds this audience may see, by partner (beds/board.py `as_seen`).
        "kept_for": [{"beds": k.beds, "name": k.name} for k in getattr(pool, "kept_for", ())],
    }


def _payload(pool: Any, facility_id: str, at: str) -> dict[str, Any]:
    return {"type": "pool.updated", "pool": pool_json(pool), "facility_id": facility_id, "at": at}


async def publish_pool_views(session: AsyncSession, channels: ChannelsPlugin, pool: BedPool) -> None:
    """`pool.updated` to every logged-in account, each receiving only the police holds it is party to and the
    kept beds it may know of.

    Without police holds or kept beds in the pool, one event for everyone. With them: the full counts, and every
    partner's kept beds by name, to the facility's organisation and the coordinators; to each police service
    holding beds there or partner keeping some, the pool with the other services' police-held beds and the other
    partners' kept beds as not free, and its own kept beds by name; to everyone else, the pool with every
    police-held and kept bed as not free.
    """
    at = utcnow().isoformat()
    # A pool with nothing held and nothing kept costs no extra read (the +1 of a shelter).
    by_org = (await police_held(session, [pool.id])).get(pool.id, {}) if pool.held else {}
    kept = (await kept_unused(session, [pool.id])).get(pool.id, {}) if pool.kept > pool.kept_in_use else {}
    if not by_org and not kept:
        publish(channels, "pool.updated", _payload(pool, pool.facility_id, at), Audience())
        return
    facility_org = str(await session.scalar(select(Facility.organisation_id).where(Facility.id == pool.facility_id)))
    parties = (facility_org,)
    names = await _organisation_names(session, kept)
    all_kept = tuple(KeptFor(org, beds, names.get(org, "")) for org, beds in sorted(kept.items()))
    publish(
        channels,
        "pool.updated",
        _payload(as_seen(pool, 0, all_kept), pool.facility_id, at),
        Audience(organisations=parties, roles=(COORDINATOR,)),
    )
    police_total = sum(by_org.values())
    for org in sorted(set(by_org) | set(kept)):
        if org in parties:
            continue
        own_kept = tuple(k for k in all_kept if k.organisation_id == org)
        publish(
            channels,
            "pool.updated",
            _payload(as_seen(pool, police_total - by_org.get(org, 0), own_kept), pool.facility_id, at),
            Audience(organisations=(org,), except_organisations=parties, except_roles=(COORDINATOR,)),
        )
    publish(
        channels,
        "pool.updated",
        _payload(as_seen(pool, police_total), pool.facility_id, at),
        Audience(except_organisations=(*parties, *by_org, *kept), except_roles=(COORDINATOR,)),
    )


async def _organisation_names(session: AsyncSession, kept: dict[str, int]) -> dict[str, str]:
    if not kept:
        return {}
    rows = await session.execute(
        select(Organisation.id, Organisation.name).where(Organisation.id.in_(list(kept)))  # type: ignore[attr-defined]
    )
    return {str(i): str(n) for i, n in rows.all()}


def render_pool_row(event: Event, ctx: BoardContext, socket: WebSocket) -> str | None:
    payload = event.payload
    can_edit = payload["facility_id"] in ctx.own_facility_ids
    return _render_cached(socket, "fragments/pool_oob.html", event, ctx.locale, can_edit)


_fragment_cache: dict[tuple[str, str, str, bool], str] = {}


def _render_cached(socket: WebSocket, template: str, event: Event, locale: str, variant: bool) -> str:
    """Every board socket receives the same event; render it once per language and variant."""
    key = (event.payload_json, template, locale, variant)
    html = _fragment_cache.get(key)
    if html is None:
        if len(_fragment_cache) > 2048:
            _fragment_cache.clear()
        env = socket.app.template_engine.engine  # type: ignore[union-attr]
        i18n.set_locale(locale)
        html = env.get_template(template).render(event=event.payload, can_edit=variant)
        _fragment_cache[key] = html
    return html
