"""RefugePlugin: the one place that wires the app.

It registers routes, guards, middleware, exception handlers, stores, channels, templates and the lifespan,
and fills every extension point of `exchange/registry.py` by name. Nothing registers itself by being imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Router
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.config.app import AppConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException, ValidationException
from litestar.middleware import DefineMiddleware
from litestar.middleware.logging import LoggingMiddlewareConfig
from litestar.middleware.rate_limit import RateLimitConfig, get_remote_address
from litestar.openapi import OpenAPIConfig
from litestar.plugins import InitPluginProtocol
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.structlog import StructlogConfig, StructlogPlugin
from litestar.static_files import create_static_files_router
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.template.config import TemplateConfig
from sqlalchemy.exc import DBAPIError

from beds.errors import BedsError
from exchange.accounts.api import TokenController
from exchange.accounts.pages import AuthPages
from exchange.accounts.service import PASSWORD_CHECKS
from exchange.admin.api import GrantController
from exchange.admin.pages import AdminPages, GrantPages
from exchange.board.api import FacilityController, PoolController
from exchange.board.cards import FacilityCards
from exchange.board.live import render_pool_row
from exchange.board.pages import BoardPages, FacilityPages, ReportPages
from exchange.board.sweep import sweep_surges
from exchange.db import make_engine, make_sessionmaker
from exchange.demo.holds import seed_holds
from exchange.demo.ledger import seed_ledger
from exchange.demo.placement_fit import seed_placement_fit
from exchange.feed.api import FeedController
from exchange.fund.anchor import sweep_checkpoints
from exchange.fund.api import CaseController, DisbursementController, FundController, TripController
from exchange.fund.live import render_disbursement
from exchange.fund.pages import LedgerPages
from exchange.fund.trip_pages import TripPages
from exchange.holds.api import AgreementController, HoldController, OperationController
from exchange.holds.grants import hold_address_grants
from exchange.holds.live import render_hold_fragment
from exchange.holds.pages import AgreementPages, HoldPages, OperationPages
from exchange.holds.sweep import sweep_expired_holds, sweep_unanswered_holds
from exchange.home.counts import load_nav_counts
from exchange.home.live import NAV_EVENT, render_nav_count
from exchange.home.pages import HomePages
from exchange.interop.api import HaveController, HsdsController, OccupancyController
from exchange.interop.pages import DirectoryPages
from exchange.live.events import CHANNEL
from exchange.live.hub import LiveHub
from exchange.live.sockets import board_stream, json_stream
from exchange.oncall.api import PushSubscriptionController
from exchange.oncall.demo import seed_on_call
from exchange.oncall.pages import AnsweringPages, PushPages, RosterPages
from exchange.oncall.sweep import sweep_escalations
from exchange.ops.logs import console_log_config
from exchange.placements.api import PlacementController
from exchange.placements.grants import placement_address_grants
from exchange.placements.pages import PlacementPages
from exchange.placements.sweep import sweep_personal_links
from exchange.registry import Registry
from exchange.settings import Settings
from exchange.stripe.api import StripeCardController, fund_reconciliation
from exchange.stripe.issuer import stripe_issuer
from exchange.stripe.pages import DonationPages, StripePages
from exchange.stripe.sweep import sweep_expired_cards
from exchange.stripe.webhooks import stripe_webhook
from exchange.sweeper import run_sweeper
from exchange.web import errors, i18n
from exchange.web.auth import AuthMiddleware, RotatingSessionConfig, requires_login
from exchange.web.deps import provide_db, provide_settings, set_request_locale
from exchange.web.headers import SECURITY_HEADERS
from exchange.web.personal_data import PersonalDataRefused
from exchange.web.reads import read_transactions_middleware
from exchange.web.templates import template_environment
from exchange.web.throttle import MemoryCounters, RedisCounters
from exchange.web.timing import server_timing_middleware
from ledger.errors import LedgerError

LOGIN_PATHS = frozenset({"/login", "/api/v1/auth/token"})
STATIC_DIR = Path(__file__).parent / "web" / "static"


def route_handlers() -> list[Any]:
    """Every route of the app, in one list, so the access matrix test can walk them all."""
    return [
        TokenController,
        FacilityController,
        PoolController,
        json_stream,
        AuthPages,
        BoardPages,
        FacilityPages,
        board_stream,
        AdminPages,
        GrantPages,
        GrantController,
        CaseController,
        FundController,
        DisbursementController,
        TripController,
        TripPages,
        LedgerPages,
        OperationController,
        HoldController,
        AgreementController,
        OperationPages,
        HoldPages,
        AgreementPages,
        ReportPages,
        stripe_webhook,
        StripeCardController,
        fund_reconciliation,
        StripePages,
        DonationPages,
        HomePages,
        HsdsController,
        HaveController,
        FeedController,
        OccupancyController,
        DirectoryPages,
        PushSubscriptionController,
        PushPages,
        RosterPages,
        AnsweringPages,
        PlacementController,
        PlacementPages,
    ]


def build_registry(settings: Settings) -> Registry:
    return Registry(
        sweep_steps=[
            sweep_surges,
            sweep_expired_holds,
            sweep_unanswered_holds,
            sweep_expired_cards,
            sweep_checkpoints,
            sweep_personal_links,
            sweep_escalations,
        ],
        grant_sources=[hold_address_grants(settings), placement_address_grants(settings)],
        fragment_renderers={
            "pool.updated": render_pool_row,
            "hold.updated": render_hold_fragment,
            "ledger.disbursement": render_disbursement,
            NAV_EVENT: render_nav_count,
        },
        # "nav" (the navigation's counts) reaches every page's socket, whatever views it names.
        view_of_kind={
            "pool.updated": "pools",
            "hold.updated": "holds",
            "ledger.disbursement": "ledger",
            NAV_EVENT: "nav",
        },
        card_issuers=[stripe_issuer],
        demo_steps=[seed_holds, seed_ledger, seed_placement_fit, seed_on_call],
    )


def _stores(settings: Settings) -> dict:
    if settings.redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url)
        return {
            "sessions": RedisStore(redis, namespace="refuge_sessions"),
            "rate_limit": RedisStore(redis, namespace="refuge_rate_limit"),
            "login_failures": RedisCounters(redis, namespace="refuge_login_failures"),
        }
    return {"sessions": MemoryStore(), "rate_limit": MemoryStore(), "login_failures": MemoryCounters()}


def _channels(settings: Settings) -> ChannelsPlugin:
    if settings.redis_url:
        from redis.asyncio import Redis

        backend = RedisChannelsPubSubBackend(redis=Redis.from_url(settings.redis_url))
    else:
        backend = MemoryChannelsBackend()
    return ChannelsPlugin(
        backend=backend,
        channels=[CHANNEL],
        subscriber_max_backlog=2000,
        subscriber_backlog_strategy="dropleft",
    )


async def _before_request(request: Request) -> None:
    """The request's language and time zone, then the navigation's counts for a page (exchange/home/counts.py)."""
    await set_request_locale(request)
    await load_nav_counts(request)


def _log_config(settings: Settings) -> StructlogConfig:
    """Log what happened, never what was said: no bodies, headers, cookies or query strings.

    Bodies carry passwords and tokens, queries can carry case codes, responses carry addresses.
    LOG_FORMAT=console (the demo): short human lines, warnings and errors only, no line per request.
    """
    if settings.log_format == "console":
        return console_log_config()
    return StructlogConfig(
        middleware_logging_config=LoggingMiddlewareConfig(
            request_log_fields=("path", "method"),
            response_log_fields=("status_code",),
            exclude=["^/static/"],
        )
    )


class RefugePlugin(InitPluginProtocol):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        settings = self.settings
        i18n.load_catalogs()
        engine = make_engine(settings.database_url)
        live_hub = LiveHub()

        @contextlib.asynccontextmanager
        async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
            task = asyncio.create_task(run_sweeper(app))
            # Everything loaded so far (modules, templates, routes) lives as long as the process: keep it out
            # of the garbage collector's full passes, which otherwise pause live delivery on a busy server.
            if settings.gc_freeze:
                gc.collect()
                gc.freeze()
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await live_hub.stop()
                await engine.dispose()

        session_config = RotatingSessionConfig(
            secure=settings.behind_tls, httponly=True, samesite="lax", max_age=12 * 3600
        )
        # Logins are limited by exchange/web/throttle.py (failures only, per address and per account and address).
        PASSWORD_CHECKS.at_once = settings.password_checks_at_once
        # The public donate form starts a Stripe checkout each time: a separate count per address, its own key.
        donation_limit = RateLimitConfig(
            rate_limit=("minute", settings.donations_per_minute),
            identifier_for_request=lambda request: "donate:" + get_remote_address(request),
            check_throttle_handler=lambda request: request.method == "POST" and request.url.path.startswith("/donate/"),
            store="rate_limit",
        )
        static = create_static_files_router(
            path="/static", directories=[STATIC_DIR], opt={"public": True}, name="static"
        )

        app_config.route_handlers.extend([*route_handlers(), static])
        app_config.state = State(
            {
                "settings": settings,
                "engine": engine,
                "sessionmaker": make_sessionmaker(engine),
                "facility_cards": FacilityCards(),
                "live_hub": live_hub,
                "registry": build_registry(settings),
            }
        )
        app_config.dependencies.update(
            {"db": Provide(provide_db), "settings": Provide(provide_settings, sync_to_thread=False)}
        )
        app_config.guards.append(requires_login)
        app_config.middleware.extend(
            [
                server_timing_middleware,
                read_transactions_middleware,
                session_config.middleware,
                DefineMiddleware(AuthMiddleware, exclude=["^/static/"]),
                donation_limit.middleware,
            ]
        )
        app_config.csrf_config = CSRFConfig(
            secret=settings.secret_key,
            cookie_secure=settings.behind_tls,
            cookie_httponly=True,
            cookie_samesite="lax",
            exclude=["^/api/", "^/webhooks/"],
        )
        app_config.before_request = _before_request
        app_config.plugins.extend([HTMXPlugin(), _channels(settings), StructlogPlugin(_log_config(settings))])
        app_config.template_config = TemplateConfig(
            instance=JinjaTemplateEngine.from_environment(template_environment())
        )
        app_config.openapi_config = OpenAPIConfig(
            title="Refuge Exchange",
            version="1.0.0",
            path="/schema",
            # The integration contract is public (API.md); it describes shapes, never data.
            openapi_router=Router(path="/schema", route_handlers=[], opt={"public": True}, include_in_schema=False),
        )
        app_config.stores = _stores(settings)
        app_config.response_headers = [*app_config.response_headers, *SECURITY_HEADERS]
        app_config.exception_handlers.update(
            {
                BedsError: errors.domain_error,
                LedgerError: errors.domain_error,
                ValidationException: errors.validation_error,
                NotAuthorizedException: errors.not_authorized,
                PermissionDeniedException: errors.permission_denied,
                HTTPException: errors.http_error,
                OverflowError: errors.out_of_range,
                RecursionError: errors.too_deep,
                PersonalDataRefused: errors.personal_data,
                DBAPIError: errors.database_error,
                Exception: errors.internal_error,
            }
        )
        app_config.lifespan.append(lifespan)
        app_config.on_startup.append(errors.document_error_responses)
        app_config.debug = settings.debug
        return app_config
