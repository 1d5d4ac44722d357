"""The app factory: settings from the environment, everything else from RefugePlugin (exchange/plugin.py)."""

from __future__ import annotations

from litestar import Litestar

from exchange.plugin import RefugePlugin
from exchange.settings import Settings


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    # Litestar reads the body limit from its own argument, not from what a plugin sets on the config.
    return Litestar(plugins=[RefugePlugin(settings)], request_max_body_size=settings.max_request_bytes)
