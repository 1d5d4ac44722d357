"""Logs for a person watching a terminal (`refuge demo`, LOG_FORMAT=console): warnings and errors only, one short
human line each, and no line per request, so what the command printed first (the logins) stays on screen.
Production keeps JSON lines for a log collector (exchange/plugin.py)."""

from __future__ import annotations

import logging
import sys

import structlog
from litestar.logging.config import LoggingConfig, StructLoggingConfig
from litestar.plugins.structlog import StructlogConfig


def _renderer() -> structlog.dev.ConsoleRenderer:
    return structlog.dev.ConsoleRenderer(
        colors=sys.stdout.isatty(), exception_formatter=structlog.dev.plain_traceback, pad_event_to=0
    )


def console_log_config() -> StructlogConfig:
    """Our loggers (structlog) and the libraries' (standard logging) alike: WARNING and up, `12:03:04 [warning]
    event key=value`."""
    standard = LoggingConfig(
        formatters={
            "standard": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.processors.TimeStamper(fmt="%H:%M:%S"),
                    structlog.stdlib.add_log_level,
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    _renderer(),
                ],
            }
        },
        root={"handlers": ["queue_listener"], "level": "WARNING"},
        loggers={"litestar": {"level": "WARNING", "handlers": ["queue_listener"], "propagate": False}},
    )
    return StructlogConfig(
        structlog_logging_config=StructLoggingConfig(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="%H:%M:%S"),
                _renderer(),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            logger_factory=structlog.WriteLoggerFactory(),
            standard_lib_logging_config=standard,
        ),
        enable_middleware_logging=False,
    )
