"""A fake Stripe API server for tests that run the real ``stripe`` SDK (see ``server.py`` for conventions).

In a test module::

    @pytest.fixture
    def fake_stripe() -> Iterator[FakeStripe]:
        with FakeStripe() as fake:
            yield fake
"""

from .encoding import decode_form
from .receiver import Received, ThreadedServer, WebhookReceiver
from .server import (
    MERCHANT_CATEGORIES,
    AuthorizationResult,
    FakeStripe,
    RecordedRequest,
    StripeError,
    fake_stripe_server,
)
from .webhooks import DEFAULT_TOLERANCE, SIGNATURE_HEADER, Delivery, compute_signature, encode_event, signature_header

__all__ = [
    "DEFAULT_TOLERANCE",
    "MERCHANT_CATEGORIES",
    "SIGNATURE_HEADER",
    "AuthorizationResult",
    "Delivery",
    "FakeStripe",
    "Received",
    "RecordedRequest",
    "StripeError",
    "ThreadedServer",
    "WebhookReceiver",
    "compute_signature",
    "decode_form",
    "encode_event",
    "fake_stripe_server",
    "signature_header",
]
