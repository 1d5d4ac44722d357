"""The shell's extension points, as one value the plugin fills and the app carries in `app.state.registry`.

Nothing adds itself here by being imported: `exchange/plugin.py` `build_registry()` names every entry, so a
feature that is not wired is visibly absent instead of silently switched off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litestar import Litestar, WebSocket
    from sqlalchemy.ext.asyncio import AsyncSession

    from exchange.accounts.models import User
    from exchange.demo.network import DemoNetwork
    from exchange.live.events import Event
    from exchange.live.sockets import BoardContext
    from exchange.settings import Settings
    from ledger.payments import CardIssuer

# Background work run by every process on a schedule; each step must act once however many processes run it.
SweepStep = Callable[["Litestar"], Awaitable[None]]
# A user -> {facility_id: grounds} on which that user may see a confidential address.
GrantSource = Callable[["AsyncSession", "User"], Awaitable[dict[str, str]]]
# An event -> the HTML this board socket's user gets of it, or None.
FragmentRenderer = Callable[["Event", "BoardContext", "WebSocket"], "str | None"]
# Settings -> a card issuer (Stripe Issuing), or None when it is not configured.
CardIssuerFactory = Callable[["Settings"], "CardIssuer | None"]
# A seeding step of `refuge demo`, run after the network of organisations, users and facilities exists.
DemoStep = Callable[["AsyncSession", "DemoNetwork"], Awaitable[Any]]


@dataclass
class Registry:
    sweep_steps: list[SweepStep] = field(default_factory=list)
    grant_sources: list[GrantSource] = field(default_factory=list)
    fragment_renderers: dict[str, FragmentRenderer] = field(default_factory=dict)
    # The part of a page each kind of event updates; a page names the parts it shows in its socket URL.
    view_of_kind: dict[str, str] = field(default_factory=dict)
    card_issuers: list[CardIssuerFactory] = field(default_factory=list)
    demo_steps: list[DemoStep] = field(default_factory=list)
