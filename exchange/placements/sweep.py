"""The sweeper's step for personal links (exchange/plugin.py wires it): closed holds and ended placements lose
their case link once the retention period has passed, and the network audit says what kind and how many, never
which cases. It acts once however many processes sweep (beds/placements.py `unlink_expired`: one process at a
time, conditional UPDATEs), and the audit entry is written in the same transaction as the unlinking."""

from __future__ import annotations

from datetime import timedelta

from litestar import Litestar

from beds.placements import unlink_expired
from beds.timeutil import utcnow
from exchange.settings import Settings
from ledger.network_audit import record_network_event

AUDIT_ACTION = "personal_links_removed"
# Retention is counted in days: each process looks every few minutes, not at every sweep (whose UPDATEs scan holds).
EVERY = timedelta(minutes=5)
_NEXT_KEY = "personal_links_next_sweep"


async def sweep_personal_links(app: Litestar) -> None:
    settings: Settings = app.state.settings
    now = utcnow()
    if (due := app.state.get(_NEXT_KEY)) is not None and now < due:
        return
    app.state[_NEXT_KEY] = now + EVERY
    async with app.state.sessionmaker() as session:
        unlinked = await unlink_expired(session, timedelta(days=settings.personal_link_retention_days))
        if not unlinked.total:
            await session.rollback()
            return
        detail = {
            "placements": unlinked.placements,
            "holds": unlinked.holds,
            "retention_days": settings.personal_link_retention_days,
        }
        # Commits the unlinking with its audit entry, or rolls both back.
        await record_network_event(session, AUDIT_ACTION, None, detail)
