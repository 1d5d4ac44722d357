"""The app factory: settings from the environment, everything else from RefugePlugin (exchange/plugin.py)."""

from __future__ import annotations

from litestar import Litestar
from litestar.config.compression import CompressionConfig

from exchange.plugin import RefugePlugin
from exchange.settings import Settings

# Brotli where the client accepts it, else gzip: the board's HTML shrinks about tenfold, which is seconds on a
# slow phone. Level 6 gzip costs a fraction of level 9's time for nearly the same size. Websockets are not
# HTTP responses and pass untouched; streamed answers (CSV exports) are compressed chunk by chunk.
COMPRESSION = CompressionConfig(backend="brotli", brotli_gzip_fallback=True, gzip_compress_level=6, brotli_quality=5)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    # Litestar reads the body limit and the compression from its own arguments, not from what a plugin sets on
    # the config (its compression middleware is built before plugins run).
    return Litestar(
        plugins=[RefugePlugin(settings)],
        request_max_body_size=settings.max_request_bytes,
        compression_config=COMPRESSION,
    )
