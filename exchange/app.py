"""The app factory: one place where settings, plugins, middleware, routes and lifespan are wired."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncGenerator
from pathlib import Path

import structlog
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar, Request, Router
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import ResponseHeader, State
from litestar.di import Provide
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.middleware import DefineMiddleware
from litestar.middleware.logging import LoggingMiddlewareConfig
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.structlog import StructlogConfig, StructlogPlugin
from litestar.static_files import create_static_files_router
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.template.config import TemplateConfig
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from beds.errors import BedsError
from exchange.board.cards import FacilityCards
from exchange.db import make_engine, make_sessionmaker
from exchange.live.events import CHANNEL
from exchange.live.hub import LiveHub
from exchange.routes import route_handlers
from exchange.settings import ROOT, Settings
from exchange.sweeper import run_sweeper
from exchange.web import errors, i18n, labels
from exchange.web.auth import AuthMiddleware, RotatingSessionConfig, requires_login
from exchange.web.timing import server_timing_middleware
from ledger.errors import LedgerError

log = structlog.get_logger()

LOGIN_PATHS = frozenset({"/login", "/api/v1/auth/token"})

SECURITY_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value=(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
        ),
    ),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="Cache-Control", value="no-store"),
]


def template_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(ROOT / "templates"),
        autoescape=select_autoescape(["html", "xml", "svg"]),
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        format_datetime=i18n.format_datetime,
        format_ago=i18n.format_ago,
        format_number=i18n.format_number,
        format_money=i18n.format_money,
        get_locale=i18n.get_locale,
        kind_labels=labels.KIND_LABELS,
        profile_labels=labels.PROFILE_LABELS,
        criteria_labels=labels.CRITERIA_LABELS,
        security_labels=labels.SECURITY_LABELS,
        labels=labels.translated,
    )
    return env


async def provide_db(state: State) -> AsyncGenerator[AsyncSession, None]:
    async with state.sessionmaker() as session:
        yield session


def provide_settings(state: State) -> Settings:
    return state.settings


async def set_request_locale(request: Request) -> None:
    # Async on purpose: Litestar runs a sync hook in a worker thread, where setting the context
    # variable would never reach the handler and its template.
    user = request.scope.get("user")
    i18n.set_locale(i18n.negotiate(user.locale if user else None, request.headers.get("accept-language")))


def _stores(settings: Settings) -> dict:
    if settings.redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url)
        return {
            "sessions": RedisStore(redis, namespace="refuge_sessions"),
            "rate_limit": RedisStore(redis, namespace="refuge_rate_limit"),
            "login_failures": RedisStore(redis, namespace="refuge_login_failures"),
        }
    return {"sessions": MemoryStore(), "rate_limit": MemoryStore(), "login_failures": MemoryStore()}


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


def _log_config() -> StructlogConfig:
    """Log what happened, never what was said: no bodies, headers, cookies or query strings.

    Bodies carry passwords and tokens, queries can carry case codes, responses carry addresses.
    """
    return StructlogConfig(
        middleware_logging_config=LoggingMiddlewareConfig(
            request_log_fields=("path", "method"),
            response_log_fields=("status_code",),
            exclude=["^/static/"],
        )
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    i18n.load_catalogs()
    engine = make_engine(settings.database_url)
    sessionmaker = make_sessionmaker(engine)
    session_config = RotatingSessionConfig(secure=settings.behind_tls, httponly=True, samesite="lax", max_age=12 * 3600)
    rate_limit = RateLimitConfig(
        rate_limit=("minute", settings.login_attempts_per_minute),
        check_throttle_handler=lambda request: request.method == "POST" and request.url.path in LOGIN_PATHS,
        store="rate_limit",
    )

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

    static = create_static_files_router(
        path="/static", directories=[Path(__file__).parent / "web" / "static"], opt={"public": True}, name="static"
    )
    return Litestar(
        route_handlers=[*route_handlers(), static],
        state=State(
            {
                "settings": settings,
                "engine": engine,
                "sessionmaker": sessionmaker,
                "facility_cards": FacilityCards(),
                "live_hub": live_hub,
            }
        ),
        dependencies={"db": Provide(provide_db), "settings": Provide(provide_settings, sync_to_thread=False)},
        guards=[requires_login],
        middleware=[
            server_timing_middleware,
            session_config.middleware,
            DefineMiddleware(AuthMiddleware, exclude=["^/static/"]),
            rate_limit.middleware,
        ],
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_secure=settings.behind_tls,
            cookie_httponly=True,
            cookie_samesite="lax",
            exclude=["^/api/", "^/webhooks/"],
        ),
        before_request=set_request_locale,
        plugins=[HTMXPlugin(), _channels(settings), StructlogPlugin(_log_config())],
        template_config=TemplateConfig(instance=JinjaTemplateEngine.from_environment(template_environment())),
        openapi_config=OpenAPIConfig(
            title="Refuge Exchange",
            version="1.0.0",
            path="/schema",
            # The integration contract is public (API.md); it describes shapes, never data.
            openapi_router=Router(path="/schema", route_handlers=[], opt={"public": True}, include_in_schema=False),
        ),
        stores=_stores(settings),
        response_headers=SECURITY_HEADERS,
        request_max_body_size=settings.max_request_bytes,
        exception_handlers={
            BedsError: errors.domain_error,
            LedgerError: errors.domain_error,
            ValidationException: errors.validation_error,
            NotAuthorizedException: errors.not_authorized,
            PermissionDeniedException: errors.permission_denied,
            HTTPException: errors.http_error,
            OverflowError: errors.out_of_range,
            DBAPIError: errors.database_error,
            Exception: errors.internal_error,
        },
        lifespan=[lifespan],
        on_startup=[errors.document_error_responses],
        debug=settings.debug,
    )
