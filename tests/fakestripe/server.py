"""A fake Stripe API on 127.0.0.1 for the real ``stripe`` SDK (16.x), plus helpers that play the card network,
the Checkout page and Stripe's webhook sender.

Usage::

    with FakeStripe() as fake:
        fake.webhook_url = live_server.url + "/stripe/webhook"
        client = stripe.StripeClient(fake.secret_key, base_addresses={"api": fake.api_base}, max_network_retries=2)
        card = client.v1.issuing.cards.create(params={...})
        result = fake.request_authorization(card.id, 4200, merchant_category="hotels_motels_and_resorts")
        fake.capture(result.authorization["id"])

Conventions (as Stripe does them):
- Lists are newest first; ``limit`` 1..100 (default 10); ``starting_after``/``ending_before`` cursors; ``created``
  as an integer or ``created[gt|gte|lt|lte]``; ``has_more``; ``url``.
- Issuing amounts are in the account's view: an authorization's ``amount`` and ``pending_request.amount`` are
  positive; an ``issuing.transaction`` of type ``capture`` has a NEGATIVE ``amount`` (money leaves the balance),
  a ``refund`` a POSITIVE one. Their balance transactions carry the same signs (``type="issuing_transaction"``);
  an approved authorization also places a hold (``issuing_authorization_hold``, negative) that is released
  (``issuing_authorization_release``, positive) when it is captured or reversed.
- A completed Checkout Session creates a PaymentIntent, a Charge and a ``charge`` balance transaction
  (positive ``amount``, ``fee`` = ``fee_rate_bps``/10000 of it + ``fee_fixed``, ``net`` = amount - fee).
- Idempotency: POSTs carry ``Idempotency-Key`` (the SDK always sends one). Same key + same method, path and
  params replays the stored response with ``Idempotent-Replayed: true``; different ones give 400
  ``idempotency_error``. Results are stored once the endpoint has executed (2xx, and 402 card errors);
  validation errors (400/404) and injected faults before execution are not stored, like Stripe.
- Objects created or changed through the API record their events (``issuing_card.created``...) in
  ``fake.events`` but only deliver them when ``deliver_api_events`` is true (in a background thread).
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import copy
import datetime as dt
import json
import random
import re
import secrets
import string
import threading
import time
import typing
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from html import escape
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

import httpx
import stripe

from .encoding import EncodingError, decode_form
from .receiver import ThreadedServer
from .webhooks import DEFAULT_TOLERANCE, SIGNATURE_HEADER, Delivery, encode_event, signature_header

JSON = dict[str, Any]
Variant = Literal["valid", "forged", "stale", "tampered", "missing", "malformed"]
Flow = Generator[Delivery, Delivery | None, Any]


def _sdk_categories() -> frozenset[str]:
    """Every merchant category the SDK's ``allowed_categories`` type names (the same list Stripe validates)."""
    from stripe.params.issuing._card_create_params import CardCreateParamsSpendingControls

    hint = typing.get_type_hints(CardCreateParamsSpendingControls)["allowed_categories"]
    (union,) = typing.get_args(hint)
    literal = typing.get_args(union)[0]
    return frozenset(typing.get_args(literal))


MERCHANT_CATEGORIES = _sdk_categories()
SPENDING_INTERVALS = ("per_authorization", "daily", "weekly", "monthly", "yearly", "all_time")
MCC = {
    "hotels_motels_and_resorts": "7011",
    "airlines_air_carriers": "4511",
    "railroads": "4011",
    "passenger_railways": "4112",
    "commuter_transport_and_ferries": "4111",
    "bus_lines": "4131",
    "taxicabs_limousines": "4121",
    "telecommunication_services": "4814",
    "telecommunication_equipment_and_telephone_sales": "4812",
    "travel_agencies_tour_operators": "4722",
    "eating_places_restaurants": "5812",
    "fast_food_restaurants": "5814",
    "grocery_stores_supermarkets": "5411",
    "drug_stores_and_pharmacies": "5912",
    "service_stations": "5541",
}


class StripeError(Exception):
    """An API error, rendered as Stripe's ``{"error": {...}}`` body."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.headers = headers or {}

    def body(self, request_id: str) -> JSON:
        error: JSON = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        return {"error": error}


def invalid(message: str, *, param: str | None = None, code: str | None = None, status: int = 400) -> StripeError:
    return StripeError(status, "invalid_request_error", message, code=code, param=param)


def missing(param: str) -> StripeError:
    return invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")


def no_such(kind: str, object_id: str, param: str = "id", status: int = 404) -> StripeError:
    return invalid(f"No such {kind}: '{object_id}'", param=param, code="resource_missing", status=status)


@dataclass
class RecordedRequest:
    """One HTTP request the fake received (``params``: the decoded body for POST, the query otherwise)."""

    method: str
    path: str
    params: JSON
    headers: dict[str, str]
    body: str
    status: int = 0
    replayed: bool = False

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class _Fault:
    prefix: str
    method: str | None
    remaining: int
    error: StripeError
    after_execute: bool


@dataclass
class _Stored:
    method: str
    path: str
    params: JSON
    status: int
    body: bytes


@dataclass
class AuthorizationResult:
    """What ``request_authorization`` did: the final authorization and the webhook exchange (if any)."""

    authorization: JSON
    approved: bool
    reason: str
    request_delivery: Delivery | None
    created_delivery: Delivery

    @property
    def response(self) -> httpx.Response | None:
        """The app's HTTP answer to ``issuing_authorization.request`` (None: not sent, or no answer in time)."""
        return None if self.request_delivery is None else self.request_delivery.response

    @property
    def id(self) -> str:
        return str(self.authorization["id"])


# ---------------------------------------------------------------------------------------------------------- params


def _check_keys(params: JSON, allowed: set[str], prefix: str = "") -> None:
    for key in params:
        if key not in allowed and key != "expand":
            name = f"{prefix}[{key}]" if prefix else key
            raise invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def _dict(value: Any, param: str) -> JSON:
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid object for {param}", param=param, code="parameter_invalid_empty")
    return value


def _list(value: Any, param: str) -> list[Any]:
    if value == "":
        return []
    if not isinstance(value, list):
        raise invalid(f"Invalid array for {param}", param=param, code="parameter_invalid_empty")
    return value


def _str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {param}", param=param, code="parameter_invalid_string")
    return value


def _int(value: Any, param: str, minimum: int | None = None) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise invalid(f"Invalid integer: {value}", param=param, code="parameter_invalid_integer")
    number = int(value)
    if minimum is not None and number < minimum:
        raise invalid(f"This value must be greater than or equal to {minimum}.", param=param, code="parameter_invalid")
    return number


def _bool(value: Any, param: str) -> bool:
    if value not in ("true", "false"):
        raise invalid(f"Invalid boolean: {value}", param=param, code="parameter_invalid")
    return value == "true"


def _enum(value: Any, allowed: tuple[str, ...], param: str) -> str:
    if value not in allowed:
        raise invalid(
            f"Invalid {param}: must be one of {', '.join(allowed)}", param=param, code="parameter_invalid_enum"
        )
    return str(value)


def _required(params: JSON, key: str, prefix: str = "") -> Any:
    value = params.get(key)
    if value is None or value == "":
        raise missing(f"{prefix}[{key}]" if prefix else key)
    return value


def _currency(value: Any, param: str) -> str:
    text = _str(value, param).lower()
    if not re.fullmatch(r"[a-z]{3}", text):
        raise invalid(f"Invalid currency: {value}", param=param, code="parameter_invalid")
    return text


def _metadata(value: Any, current: dict[str, str] | None = None, param: str = "metadata") -> dict[str, str]:
    """Stripe merges metadata on update; ``""`` for a key removes it, ``metadata=""`` clears all."""
    result = dict(current or {})
    if value == "":
        return {}
    for key, item in _dict(value, param).items():
        if not isinstance(item, str):
            raise invalid(f"Invalid value for {param}[{key}]", param=f"{param}[{key}]")
        if len(key) > 40:
            raise invalid("Metadata keys can have up to 40 characters.", param=f"{param}[{key}]")
        if len(item) > 500:
            raise invalid("Metadata values can have up to 500 characters.", param=f"{param}[{key}]")
        if item == "":
            result.pop(key, None)
        else:
            result[key] = item
    if len(result) > 50:
        raise invalid("You can have up to 50 metadata keys.", param=param)
    return result


def _changed(old: dict[str, str], new: dict[str, str]) -> dict[str, str | None]:
    """``previous_attributes`` for a metadata change: the changed keys' old values (None: the key is new)."""
    return {k: old.get(k) for k in old.keys() | new.keys() if old.get(k) != new.get(k)}


def _categories(value: Any, param: str) -> list[str] | None:
    items = _list(value, param)
    for index, item in enumerate(items):
        if item not in MERCHANT_CATEGORIES:
            raise invalid(f"Invalid {param}[{index}]: {item}", param=f"{param}[{index}]", code="parameter_invalid_enum")
    return list(items) or None


def _spending_controls(value: Any, current: JSON | None, param: str = "spending_controls") -> JSON:
    controls: JSON = copy.deepcopy(current) if current else _empty_controls()
    given = _dict(value, param)
    _check_keys(
        given,
        {
            "allowed_categories",
            "blocked_categories",
            "spending_limits",
            "spending_limits_currency",
            "allowed_merchant_countries",
            "blocked_merchant_countries",
            "allowed_card_presences",
            "blocked_card_presences",
        },
        param,
    )
    for key in ("allowed_categories", "blocked_categories"):
        if key in given:
            controls[key] = _categories(given[key], f"{param}[{key}]")
    for key in ("allowed_merchant_countries", "blocked_merchant_countries"):
        if key in given:
            controls[key] = [_str(c, f"{param}[{key}]").upper() for c in _list(given[key], f"{param}[{key}]")] or None
    if controls["allowed_categories"] and controls["blocked_categories"]:
        raise invalid(
            "You may only specify one of these parameters: allowed_categories, blocked_categories.",
            param=f"{param}[blocked_categories]",
        )
    if "spending_limits" in given:
        limits = []
        for index, raw in enumerate(_list(given["spending_limits"], f"{param}[spending_limits]")):
            where = f"{param}[spending_limits][{index}]"
            item = _dict(raw, where)
            _check_keys(item, {"amount", "interval", "categories"}, where)
            limit: JSON = {
                "amount": _int(_required(item, "amount", where), f"{where}[amount]", minimum=0),
                "categories": _categories(item["categories"], f"{where}[categories]") if "categories" in item else None,
                "interval": _enum(_required(item, "interval", where), SPENDING_INTERVALS, f"{where}[interval]"),
            }
            limits.append(limit)
        controls["spending_limits"] = limits
    if "spending_limits_currency" in given:
        controls["spending_limits_currency"] = _currency(
            given["spending_limits_currency"], f"{param}[spending_limits_currency]"
        )
    return controls


def _empty_controls() -> JSON:
    return {
        "allowed_categories": None,
        "allowed_merchant_countries": None,
        "blocked_categories": None,
        "blocked_merchant_countries": None,
        "spending_limits": [],
        "spending_limits_currency": None,
    }


def _luhn_complete(prefix: str) -> str:
    digits = [int(d) for d in prefix + "0"]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return prefix + str((10 - total % 10) % 10)


def _window_start(interval: str, now: int) -> int:
    today = dt.datetime.fromtimestamp(now, dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "daily":
        start = today
    elif interval == "weekly":  # weeks start on Sunday
        start = today - dt.timedelta(days=(today.weekday() + 1) % 7)
    elif interval == "monthly":
        start = today.replace(day=1)
    elif interval == "yearly":
        start = today.replace(month=1, day=1)
    else:
        return 0
    return calendar.timegm(start.utctimetuple())


# ---------------------------------------------------------------------------------------------------------- server


class FakeStripe:
    """The fake Stripe server and its test helpers. Use as a context manager (or ``start()``/``stop()``)."""

    def __init__(
        self,
        *,
        secret_key: str | None = None,
        webhook_secret: str | None = None,
        webhook_url: str | None = None,
        api_version: str | None = None,
    ) -> None:
        self.secret_key = secret_key or "sk_test_fake" + secrets.token_hex(12)
        self.webhook_secret = webhook_secret or "whsec_" + secrets.token_hex(16)
        self.api_version = api_version or stripe.api_version
        self.webhook_url: str | None = webhook_url
        """Where events are POSTed (the app's Stripe webhook endpoint). None: events are recorded, not sent."""
        self.authorization_webhook_url: str | None = None
        """Where ``issuing_authorization.request`` goes; defaults to ``webhook_url``."""
        self.webhook_asgi_app: Any = None
        """If set, the async helpers deliver in-process through ``httpx.ASGITransport(app)`` (no live server)."""
        self.authorization_timeout = 2.0
        self.webhook_timeout = 10.0
        self.authorization_timeout_approves = False
        """Stripe's "webhook timeout settings": the decision when the app does not answer validly in time."""
        self.require_version_header_on_decision = True
        """Stripe requires a ``Stripe-Version`` header on the synchronous authorization decision."""
        self.deliver_api_events = False
        self.fee_rate_bps = 290
        self.fee_fixed = 30
        self.time_offset = 0

        self.requests: list[RecordedRequest] = []
        self.deliveries: list[Delivery] = []
        self.internal_errors: list[Exception] = []
        self._objects: dict[str, JSON] = {}
        self._card_secrets: dict[str, tuple[str, str]] = {}
        self._line_items: dict[str, list[JSON]] = {}
        self._idempotency: dict[tuple[str, str], _Stored] = {}
        self._faults: list[_Fault] = []
        self._seq = 0
        self._lock = threading.RLock()
        self._background: list[threading.Thread] = []

        self._server: ThreadedServer | None = None
        self.port = 0

    # ------------------------------------------------------------------------------------------------- lifecycle

    @property
    def api_base(self) -> str:
        if not self.port:
            raise RuntimeError("FakeStripe is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeStripe:
        self._server = ThreadedServer(self)
        self.port = self._server.port
        self._server.start()
        return self

    def stop(self) -> None:
        for thread in self._background:
            thread.join(timeout=15)
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, max_network_retries: int = 2, **kwargs: Any) -> stripe.StripeClient:
        """A real ``StripeClient`` pointed at this server."""
        return stripe.StripeClient(
            self.secret_key,
            base_addresses={"api": self.api_base},
            max_network_retries=max_network_retries,
            **kwargs,
        )

    def wait_for_background(self, timeout: float = 15) -> None:
        """Wait for deliveries started in background threads (API events, the hosted Checkout page)."""
        for thread in list(self._background):
            thread.join(timeout=timeout)

    # ------------------------------------------------------------------------------------------------- clock, ids

    def now(self) -> int:
        return int(time.time()) + self.time_offset

    def advance(self, seconds: int) -> None:
        """Move the fake's clock (``created`` of new objects) forward; signatures always use the real clock."""
        self.time_offset += seconds

    def _new_id(self, prefix: str) -> str:
        alphabet = string.ascii_letters + string.digits
        return prefix + "_1" + "".join(random.choices(alphabet, k=23))

    def _insert(self, obj: JSON) -> JSON:
        self._seq += 1
        obj["_seq"] = self._seq
        self._objects[obj["id"]] = obj
        return obj

    # ------------------------------------------------------------------------------------------------- inspection

    def get(self, object_id: str) -> JSON:
        """The object as the API would return it (without expansions)."""
        with self._lock:
            return self._render(self._objects[object_id])

    def objects(self, object_type: str) -> list[JSON]:
        """All objects of a type (``"issuing.card"``, ``"balance_transaction"``...), oldest first."""
        with self._lock:
            return [self._render(o) for o in self._objects.values() if o["object"] == object_type]

    @property
    def cardholders(self) -> list[JSON]:
        return self.objects("issuing.cardholder")

    @property
    def cards(self) -> list[JSON]:
        return self.objects("issuing.card")

    @property
    def authorizations(self) -> list[JSON]:
        return self.objects("issuing.authorization")

    @property
    def transactions(self) -> list[JSON]:
        return self.objects("issuing.transaction")

    @property
    def checkout_sessions(self) -> list[JSON]:
        return self.objects("checkout.session")

    @property
    def payment_intents(self) -> list[JSON]:
        return self.objects("payment_intent")

    @property
    def balance_transactions(self) -> list[JSON]:
        return self.objects("balance_transaction")

    @property
    def events(self) -> list[JSON]:
        return self.objects("event")

    def card_details(self, card_id: str) -> tuple[str, str]:
        """(number, cvc) of an issued card."""
        return self._card_secrets[card_id]

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    # ------------------------------------------------------------------------------------------------- faults

    def fail_next(
        self,
        path_prefix: str,
        status: int = 500,
        times: int = 1,
        *,
        method: str | None = None,
        error_type: str | None = None,
        code: str | None = None,
        message: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        after_execute: bool = False,
        should_retry: bool | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose path starts with ``path_prefix`` with an error.

        ``after_execute=True`` runs the request first (the object exists, the idempotent result is stored) and
        then answers the error: the "response lost" case a retry with the same Idempotency-Key must survive.
        ``should_retry`` sets Stripe's ``Stripe-Should-Retry`` header (the SDK obeys it over the status).
        """
        defaults: dict[int, tuple[str, str | None, str]] = {
            400: ("invalid_request_error", None, "Invalid request."),
            401: ("invalid_request_error", None, "Invalid API Key provided."),
            402: ("card_error", "card_declined", "Your card was declined."),
            404: ("invalid_request_error", "resource_missing", "No such object."),
            409: ("invalid_request_error", "lock_timeout", "This object cannot be accessed right now."),
            429: ("invalid_request_error", "rate_limit", "Request rate limit exceeded. Please retry later."),
        }
        fallback = ("api_error", None, "An unknown error occurred") if status >= 500 else defaults[400]
        d_type, d_code, d_message = defaults.get(status, fallback)
        headers = {} if should_retry is None else {"Stripe-Should-Retry": "true" if should_retry else "false"}
        if status == 402 and decline_code is None and code in (None, "card_declined"):
            decline_code = "generic_decline"
        error = StripeError(
            status,
            error_type or d_type,
            message or d_message,
            code=code or d_code,
            param=param,
            decline_code=decline_code,
            headers=headers,
        )
        with self._lock:
            self._faults.append(_Fault(path_prefix, method.upper() if method else None, times, error, after_execute))

    def rate_limit_next(
        self, path_prefix: str, times: int = 1, *, method: str | None = None, should_retry: bool | None = None
    ) -> None:
        """429 ``rate_limit``. The SDK does not retry a 429 unless ``Stripe-Should-Retry: true`` is sent."""
        self.fail_next(path_prefix, 429, times, method=method, should_retry=should_retry)

    def card_error_next(
        self, path_prefix: str, *, code: str = "card_declined", decline_code: str | None = None, times: int = 1
    ) -> None:
        self.fail_next(path_prefix, 402, times, code=code, decline_code=decline_code, method="POST")

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # ------------------------------------------------------------------------------------------------- ASGI

    async def __call__(self, scope: JSON, receive: Callable[[], Awaitable[JSON]], send: Callable[[JSON], Any]) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, out_headers, content = self._handle(
            scope["method"], scope["path"], scope["query_string"].decode("latin-1"), headers, b"".join(chunks)
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in out_headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": content})

    def _handle(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        request_id = self._new_id("req")
        text = body.decode("utf-8", errors="replace")
        base_headers = {"Request-Id": request_id, "Stripe-Version": headers.get("stripe-version", self.api_version)}
        if path.startswith("/c/pay/"):
            return self._checkout_page(method, path, text, base_headers)
        record = RecordedRequest(method, path, {}, headers, text)
        with self._lock:
            self.requests.append(record)
        try:
            raw = text if method == "POST" else query
            if (
                method == "POST"
                and raw
                and not headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
            ):
                raise invalid("Invalid request: the body must be application/x-www-form-urlencoded.")
            try:
                record.params = decode_form(raw)
            except EncodingError as exc:
                raise invalid(str(exc), param=exc.key) from exc
            self._authenticate(headers)
            idem_key = headers.get("idempotency-key") if method == "POST" else None
            if idem_key:
                base_headers["Idempotency-Key"] = idem_key
            with self._lock:
                fault = self._take_fault(method, path)
                if fault is not None and not fault.after_execute:
                    if fault.error.status == 402 and idem_key:  # a card error is a result Stripe stores
                        content = json.dumps(fault.error.body(request_id), indent=2).encode()
                        self._idempotency[(self.secret_key, idem_key)] = _Stored(
                            method, path, record.params, 402, content
                        )
                    raise fault.error
                if idem_key:
                    stored = self._idempotency.get((self.secret_key, idem_key))
                    if stored is not None:
                        if (stored.method, stored.path, stored.params) != (method, path, record.params):
                            raise StripeError(
                                400,
                                "idempotency_error",
                                "Keys for idempotent requests can only be used with the same parameters they were "
                                f"first used with. Try using a key other than '{idem_key}' if you meant to execute "
                                "a different request.",
                            )
                        if fault is not None:
                            raise fault.error
                        record.status, record.replayed = stored.status, True
                        replay_headers = {**base_headers, "Idempotent-Replayed": "true"}
                        return stored.status, {**replay_headers, "Content-Type": "application/json"}, stored.body
                try:
                    status, payload = 200, self._dispatch(method, path, record.params)
                except StripeError as exc:
                    if exc.status != 402:
                        raise
                    status, payload = exc.status, exc.body(request_id)
                content = json.dumps(payload, indent=2).encode()
                if idem_key:
                    self._idempotency[(self.secret_key, idem_key)] = _Stored(
                        method, path, record.params, status, content
                    )
                if fault is not None:
                    raise fault.error
        except StripeError as exc:
            status, content = exc.status, json.dumps(exc.body(request_id), indent=2).encode()
            base_headers.update(exc.headers)
        except Exception as exc:  # a bug in the fake: say so, and tell the SDK not to retry
            self.internal_errors.append(exc)
            error = StripeError(500, "api_error", f"fake Stripe server bug: {exc!r}")
            status, content = 500, json.dumps(error.body(request_id), indent=2).encode()
            base_headers["Stripe-Should-Retry"] = "false"
        record.status = status
        return status, {**base_headers, "Content-Type": "application/json"}, content

    def _authenticate(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        if not auth:
            raise invalid(
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
                status=401,
            )
        key = auth.removeprefix("Bearer ").strip()
        if not auth.startswith("Bearer ") or not secrets.compare_digest(key, self.secret_key):
            shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else key
            raise invalid(f"Invalid API Key provided: {shown}", status=401)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if path.startswith(fault.prefix) and fault.method in (None, method) and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------------------------------------------- routing

    _ROUTES: typing.ClassVar[list[tuple[str, re.Pattern[str], str]]] = [
        (m, re.compile("^" + p + "$"), h)
        for m, p, h in [
            ("POST", r"/v1/issuing/cardholders", "_create_cardholder"),
            ("GET", r"/v1/issuing/cardholders", "_list_cardholders"),
            ("GET", r"/v1/issuing/cardholders/(?P<id>[^/]+)", "_retrieve"),
            ("POST", r"/v1/issuing/cardholders/(?P<id>[^/]+)", "_update_cardholder"),
            ("POST", r"/v1/issuing/cards", "_create_card"),
            ("GET", r"/v1/issuing/cards", "_list_cards"),
            ("GET", r"/v1/issuing/cards/(?P<id>[^/]+)", "_retrieve"),
            ("POST", r"/v1/issuing/cards/(?P<id>[^/]+)", "_update_card"),
            ("GET", r"/v1/issuing/authorizations", "_list_authorizations"),
            ("GET", r"/v1/issuing/authorizations/(?P<id>[^/]+)", "_retrieve"),
            ("POST", r"/v1/issuing/authorizations/(?P<id>[^/]+)", "_update_metadata"),
            ("GET", r"/v1/issuing/transactions", "_list_transactions"),
            ("GET", r"/v1/issuing/transactions/(?P<id>[^/]+)", "_retrieve"),
            ("POST", r"/v1/issuing/transactions/(?P<id>[^/]+)", "_update_metadata"),
            ("POST", r"/v1/checkout/sessions", "_create_checkout_session"),
            ("GET", r"/v1/checkout/sessions", "_list_checkout_sessions"),
            ("GET", r"/v1/checkout/sessions/(?P<id>[^/]+)", "_retrieve"),
            ("GET", r"/v1/checkout/sessions/(?P<id>[^/]+)/line_items", "_list_line_items"),
            ("POST", r"/v1/checkout/sessions/(?P<id>[^/]+)/expire", "_expire_checkout_session"),
            ("GET", r"/v1/payment_intents/(?P<id>[^/]+)", "_retrieve"),
            ("GET", r"/v1/charges/(?P<id>[^/]+)", "_retrieve"),
            ("GET", r"/v1/balance_transactions", "_list_balance_transactions"),
            ("GET", r"/v1/balance_transactions/(?P<id>[^/]+)", "_retrieve"),
            ("GET", r"/v1/events", "_list_events"),
            ("GET", r"/v1/events/(?P<id>[^/]+)", "_retrieve"),
        ]
    ]
    _KINDS: typing.ClassVar[dict[str, tuple[str, str]]] = {
        "/v1/issuing/cardholders/": ("issuing.cardholder", "issuing cardholder"),
        "/v1/issuing/cards/": ("issuing.card", "issuing card"),
        "/v1/issuing/authorizations/": ("issuing.authorization", "issuing authorization"),
        "/v1/issuing/transactions/": ("issuing.transaction", "issuing transaction"),
        "/v1/checkout/sessions/": ("checkout.session", "checkout.session"),
        "/v1/payment_intents/": ("payment_intent", "payment_intent"),
        "/v1/charges/": ("charge", "charge"),
        "/v1/balance_transactions/": ("balance_transaction", "balance transaction"),
        "/v1/events/": ("event", "event"),
    }

    def _dispatch(self, method: str, path: str, params: JSON) -> JSON:
        for route_method, pattern, handler in self._ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                args = {k: unquote(v) for k, v in match.groupdict().items()}
                result: JSON = getattr(self, handler)(path, params, **args)
                return result
        raise invalid(
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at "
            "https://support.stripe.com/.",
            status=404,
        )

    def _fetch(self, path: str, object_id: str, param: str = "id", status: int = 404) -> JSON:
        kind, label = next(v for k, v in self._KINDS.items() if path.startswith(k))
        obj = self._objects.get(object_id)
        if obj is None or obj["object"] != kind:
            raise no_such(label, object_id, param, status)
        return obj

    def _retrieve(self, path: str, params: JSON, id: str) -> JSON:
        _check_keys(params, set())
        return self._respond(self._fetch(path, id), params)

    def _update_metadata(self, path: str, params: JSON, id: str) -> JSON:
        obj = self._fetch(path, id)
        _check_keys(params, {"metadata"})
        if "metadata" in params:
            obj["metadata"] = _metadata(params["metadata"], obj["metadata"])
        return self._respond(obj, params)

    # ------------------------------------------------------------------------------------------------- rendering

    def _render(self, obj: JSON) -> JSON:
        out = {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}
        if obj["object"] == "issuing.card":
            out["cardholder"] = self._render(self._objects[obj["cardholder"]])
        elif obj["object"] == "issuing.authorization":
            out["card"] = self._render(self._objects[obj["card"]])
            out["balance_transactions"] = [self._render(self._objects[i]) for i in obj["balance_transactions"]]
            out["transactions"] = [self._render(self._objects[i]) for i in obj["transactions"]]
        return out

    def _respond(self, obj: JSON, params: JSON) -> JSON:
        out = self._render(obj)
        for path in _list(params.get("expand", []), "expand"):
            self._expand(out, _str(path, "expand").split("."), path)
        return out

    def _expand(self, node: Any, segments: list[str], full: str) -> None:
        if isinstance(node, list):
            for item in node:
                self._expand(item, segments, full)
            return
        if not isinstance(node, dict):
            raise invalid(f"This property cannot be expanded ({full}).", param="expand")
        head, rest = segments[0], segments[1:]
        if node.get("object") == "issuing.card" and head in ("number", "cvc") and not rest:
            number, cvc = self._card_secrets[node["id"]]
            node[head] = number if head == "number" else cvc
            return
        if node.get("object") == "checkout.session" and head == "line_items" and not rest:
            node["line_items"] = self._line_items_list(node["id"], {})
            return
        value = node.get(head)
        if isinstance(value, str) and value in self._objects:
            node[head] = self._render(self._objects[value])
            value = node[head]
        elif not rest or value is None:
            raise invalid(f"This property cannot be expanded ({full}).", param="expand")
        if rest:
            self._expand(value, rest, full)

    def _list_response(
        self, url: str, params: JSON, object_type: str, keep: Callable[[JSON], bool], allowed: set[str]
    ) -> JSON:
        _check_keys(params, allowed | {"limit", "starting_after", "ending_before", "created"})
        limit = _int(params.get("limit", "10"), "limit")
        if not 1 <= limit <= 100:
            raise invalid("This value must be between 1 and 100.", param="limit")
        created = params.get("created")
        if isinstance(created, dict):
            _check_keys(created, {"gt", "gte", "lt", "lte"}, "created")
            bounds = {op: _int(v, f"created[{op}]") for op, v in created.items()}
        elif created is not None:
            bounds = {"eq": _int(created, "created")}
        else:
            bounds = {}
        tests: dict[str, Callable[[int, int], bool]] = {
            "gt": lambda c, b: c > b,
            "gte": lambda c, b: c >= b,
            "lt": lambda c, b: c < b,
            "lte": lambda c, b: c <= b,
            "eq": lambda c, b: c == b,
        }

        def order(obj: JSON) -> tuple[int, int]:
            return (obj["created"], obj["_seq"])

        items = [
            o
            for o in self._objects.values()
            if o["object"] == object_type and keep(o) and all(tests[op](o["created"], b) for op, b in bounds.items())
        ]
        items.sort(key=order, reverse=True)
        if params.get("starting_after") and params.get("ending_before"):
            raise invalid("You may only specify one of these parameters: starting_after, ending_before.")
        if params.get("starting_after"):
            cursor = self._cursor(params["starting_after"], object_type, "starting_after")
            after = [o for o in items if order(o) < order(cursor)]
            page, has_more = after[:limit], len(after) > limit
        elif params.get("ending_before"):
            cursor = self._cursor(params["ending_before"], object_type, "ending_before")
            before = [o for o in items if order(o) > order(cursor)]
            page, has_more = before[-limit:], len(before) > limit
        else:
            page, has_more = items[:limit], len(items) > limit
        out: JSON = {"object": "list", "data": [self._render(o) for o in page], "has_more": has_more, "url": url}
        for path in _list(params.get("expand", []), "expand"):
            segments = _str(path, "expand").split(".")
            if segments[0] != "data" or len(segments) < 2:
                raise invalid(f"This property cannot be expanded ({path}).", param="expand")
            self._expand(out["data"], segments[1:], path)
        return out

    def _cursor(self, object_id: Any, object_type: str, param: str) -> JSON:
        obj = self._objects.get(_str(object_id, param))
        if obj is None or obj["object"] != object_type:
            raise no_such(object_type, str(object_id), param, status=400)
        return obj

    # ------------------------------------------------------------------------------------------------- events

    def build_event(self, event_type: str, data_object: JSON, previous_attributes: JSON | None = None) -> JSON:
        """Create (and record) an event as Stripe would send it; ``data_object`` is copied as-is."""
        with self._lock:
            data: JSON = {"object": copy.deepcopy(data_object)}
            if previous_attributes is not None:
                data["previous_attributes"] = previous_attributes
            event: JSON = {
                "id": self._new_id("evt"),
                "object": "event",
                "api_version": self.api_version,
                "created": self.now(),
                "data": data,
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            }
            self._insert(event)
            return self._render(event)

    def _api_event(self, event_type: str, obj: JSON, previous: JSON | None = None) -> None:
        event = self.build_event(event_type, self._render(obj), previous)
        if self.deliver_api_events and self.webhook_url:

            def flow() -> Flow:
                yield self._prepare(event)

            thread = threading.Thread(target=self._drive, args=(flow(),), daemon=True)
            self._background.append(thread)
            thread.start()

    # ------------------------------------------------------------------------------------------------- cardholders

    def _create_cardholder(self, path: str, params: JSON) -> JSON:
        _check_keys(
            params,
            {
                "name",
                "billing",
                "type",
                "email",
                "phone_number",
                "metadata",
                "status",
                "individual",
                "company",
                "spending_controls",
                "preferred_locales",
            },
        )
        name = _str(_required(params, "name"), "name")
        if len(name) > 24 or not re.fullmatch(r"[^\W\d_][^\W\d_ .'\-]*(?:[ .'\-]+[^\W\d_]+)*\.?", name):
            raise invalid(
                "The cardholder name must be at most 24 characters and contain no numbers or special characters.",
                param="name",
            )
        billing = _dict(_required(params, "billing"), "billing")
        _check_keys(billing, {"address"}, "billing")
        address = _dict(_required(billing, "address", "billing"), "billing[address]")
        _check_keys(address, {"line1", "line2", "city", "state", "postal_code", "country"}, "billing[address]")
        for key in ("line1", "city", "postal_code", "country"):
            _required(address, key, "billing[address]")
        individual = _dict(params.get("individual", {}), "individual")
        _check_keys(individual, {"first_name", "last_name", "dob", "card_issuing", "verification"}, "individual")
        cardholder: JSON = {
            "id": self._new_id("ich"),
            "object": "issuing.cardholder",
            "billing": {
                "address": {k: address.get(k) for k in ("city", "country", "line1", "line2", "postal_code", "state")}
            },
            "company": params.get("company") or None,
            "created": self.now(),
            "email": params.get("email"),
            "individual": individual or None,
            "livemode": False,
            "metadata": _metadata(params.get("metadata", {})),
            "name": name,
            "phone_number": params.get("phone_number"),
            "preferred_locales": _list(params.get("preferred_locales", []), "preferred_locales"),
            "requirements": {"disabled_reason": None, "past_due": []},
            "spending_controls": _spending_controls(params.get("spending_controls", {}), None),
            "status": _enum(params.get("status", "active"), ("active", "inactive"), "status"),
            "type": _enum(params.get("type", "individual"), ("individual", "company"), "type"),
        }
        self._insert(cardholder)
        self._api_event("issuing_cardholder.created", cardholder)
        return self._respond(cardholder, params)

    def _update_cardholder(self, path: str, params: JSON, id: str) -> JSON:
        cardholder = self._fetch(path, id)
        _check_keys(params, {"metadata", "status", "spending_controls", "email", "phone_number", "preferred_locales"})
        previous: JSON = {}
        if "status" in params:
            previous["status"] = cardholder["status"]
            cardholder["status"] = _enum(params["status"], ("active", "inactive"), "status")
        if "spending_controls" in params:
            previous["spending_controls"] = cardholder["spending_controls"]
            cardholder["spending_controls"] = _spending_controls(
                params["spending_controls"], cardholder["spending_controls"]
            )
        if "metadata" in params:
            old, cardholder["metadata"] = cardholder["metadata"], _metadata(params["metadata"], cardholder["metadata"])
            previous["metadata"] = _changed(old, cardholder["metadata"])
        for key in ("email", "phone_number"):
            if key in params:
                previous[key] = cardholder[key]
                cardholder[key] = params[key] or None
        self._api_event("issuing_cardholder.updated", cardholder, previous)
        return self._respond(cardholder, params)

    def _list_cardholders(self, path: str, params: JSON) -> JSON:
        return self._list_response(
            path,
            params,
            "issuing.cardholder",
            lambda o: all(params.get(k) in (None, o[k]) for k in ("email", "status", "type")),
            {"email", "status", "type", "phone_number"},
        )

    # ------------------------------------------------------------------------------------------------- cards

    def _create_card(self, path: str, params: JSON) -> JSON:
        _check_keys(
            params,
            {
                "cardholder",
                "currency",
                "type",
                "status",
                "spending_controls",
                "metadata",
                "shipping",
                "financial_account",
                "personalization_design",
                "pin",
                "replacement_for",
                "replacement_reason",
                "second_line",
            },
        )
        holder_id = _str(_required(params, "cardholder"), "cardholder")
        holder = self._objects.get(holder_id)
        if holder is None or holder["object"] != "issuing.cardholder":
            raise no_such("cardholder", holder_id, "cardholder", status=400)
        currency = _currency(_required(params, "currency"), "currency")
        card_type = _enum(_required(params, "type"), ("virtual", "physical"), "type")
        if card_type == "physical" and not params.get("shipping"):
            raise missing("shipping")
        status = _enum(params.get("status", "inactive"), ("active", "inactive"), "status")
        now = self.now()
        number = _luhn_complete("400000" + "".join(random.choices(string.digits, k=9)))
        card: JSON = {
            "id": self._new_id("ic"),
            "object": "issuing.card",
            "brand": "Visa",
            "cancellation_reason": None,
            "cardholder": holder_id,
            "created": now,
            "currency": currency,
            "exp_month": dt.datetime.fromtimestamp(now, dt.UTC).month,
            "exp_year": dt.datetime.fromtimestamp(now, dt.UTC).year + 3,
            "financial_account": None,
            "last4": number[-4:],
            "livemode": False,
            "metadata": _metadata(params.get("metadata", {})),
            "personalization_design": None,
            "replaced_by": None,
            "replacement_for": params.get("replacement_for"),
            "replacement_reason": params.get("replacement_reason"),
            "shipping": None,
            "spending_controls": _spending_controls(params.get("spending_controls", {}), None),
            "status": status,
            "type": card_type,
            "wallets": {
                "apple_pay": {"eligible": False, "ineligible_reason": "unsupported_region"},
                "google_pay": {"eligible": False, "ineligible_reason": "unsupported_region"},
                "primary_account_identifier": None,
            },
        }
        self._card_secrets[card["id"]] = (number, "".join(random.choices(string.digits, k=3)))
        self._insert(card)
        self._api_event("issuing_card.created", card)
        return self._respond(card, params)

    def _update_card(self, path: str, params: JSON, id: str) -> JSON:
        card = self._fetch(path, id)
        _check_keys(params, {"status", "cancellation_reason", "spending_controls", "metadata", "pin", "shipping"})
        if card["status"] == "canceled" and set(params) - {"metadata", "expand"}:
            raise invalid("This card has been canceled and cannot be updated.", param="status")
        previous: JSON = {}
        if "status" in params:
            previous["status"] = card["status"]
            card["status"] = _enum(params["status"], ("active", "inactive", "canceled"), "status")
            if card["status"] == "canceled":
                reason = params.get("cancellation_reason")
                card["cancellation_reason"] = (
                    _enum(reason, ("lost", "stolen"), "cancellation_reason") if reason else None
                )
        elif "cancellation_reason" in params:
            raise invalid("cancellation_reason can only be set when status is canceled.", param="cancellation_reason")
        if "spending_controls" in params:
            previous["spending_controls"] = card["spending_controls"]
            card["spending_controls"] = _spending_controls(params["spending_controls"], card["spending_controls"])
        if "metadata" in params:
            old, card["metadata"] = card["metadata"], _metadata(params["metadata"], card["metadata"])
            previous["metadata"] = _changed(old, card["metadata"])
        self._api_event("issuing_card.updated", card, previous)
        return self._respond(card, params)

    def _list_cards(self, path: str, params: JSON) -> JSON:
        return self._list_response(
            path,
            params,
            "issuing.card",
            lambda o: all(params.get(k) in (None, o[k]) for k in ("cardholder", "status", "type", "last4")),
            {"cardholder", "status", "type", "last4", "exp_month", "exp_year"},
        )

    def _list_authorizations(self, path: str, params: JSON) -> JSON:
        return self._list_response(
            path,
            params,
            "issuing.authorization",
            lambda o: all(params.get(k) in (None, o[k]) for k in ("card", "cardholder", "status")),
            {"card", "cardholder", "status"},
        )

    def _list_transactions(self, path: str, params: JSON) -> JSON:
        return self._list_response(
            path,
            params,
            "issuing.transaction",
            lambda o: all(params.get(k) in (None, o[k]) for k in ("card", "cardholder", "type")),
            {"card", "cardholder", "type"},
        )

    # ------------------------------------------------------------------------------------------------- checkout

    _CHECKOUT_PARAMS: typing.ClassVar[set[str]] = {
        "mode",
        "line_items",
        "success_url",
        "cancel_url",
        "metadata",
        "client_reference_id",
        "customer_email",
        "customer",
        "customer_creation",
        "payment_intent_data",
        "payment_method_types",
        "submit_type",
        "locale",
        "expires_at",
        "ui_mode",
        "return_url",
        "billing_address_collection",
        "custom_text",
        "allow_promotion_codes",
        "phone_number_collection",
        "currency",
    }

    def _create_checkout_session(self, path: str, params: JSON) -> JSON:
        _check_keys(params, self._CHECKOUT_PARAMS)
        mode = _enum(_required(params, "mode"), ("payment", "setup", "subscription"), "mode")
        if mode != "payment":
            raise invalid("The fake Stripe server only supports mode=payment.", param="mode")
        ui_mode = _enum(params.get("ui_mode", "hosted"), ("hosted", "embedded", "custom"), "ui_mode")
        for key in ("success_url", "cancel_url"):
            if key in params and not re.match(r"^https?://[^\s/]+", _str(params[key], key)):
                raise invalid("Not a valid URL", param=key, code="url_invalid")
        client_reference_id = params.get("client_reference_id")
        if client_reference_id is not None and len(_str(client_reference_id, "client_reference_id")) > 200:
            raise invalid("client_reference_id can be at most 200 characters.", param="client_reference_id")
        session_id = self._new_id("cs_test")
        items, currency, total = [], None, 0
        for index, raw in enumerate(_list(_required(params, "line_items"), "line_items")):
            where = f"line_items[{index}]"
            item = _dict(raw, where)
            _check_keys(item, {"price", "price_data", "quantity", "adjustable_quantity", "tax_rates"}, where)
            if "price" in item:
                raise no_such("price", _str(item["price"], f"{where}[price]"), f"{where}[price]", status=400)
            price_data = _dict(_required(item, "price_data", where), f"{where}[price_data]")
            pwhere = f"{where}[price_data]"
            _check_keys(
                price_data,
                {"currency", "unit_amount", "unit_amount_decimal", "product", "product_data", "tax_behavior"},
                pwhere,
            )
            item_currency = _currency(_required(price_data, "currency", pwhere), f"{pwhere}[currency]")
            unit = _int(_required(price_data, "unit_amount", pwhere), f"{pwhere}[unit_amount]", minimum=0)
            product_data = _dict(_required(price_data, "product_data", pwhere), f"{pwhere}[product_data]")
            _check_keys(
                product_data, {"name", "description", "images", "metadata", "tax_code"}, f"{pwhere}[product_data]"
            )
            name = _str(_required(product_data, "name", f"{pwhere}[product_data]"), f"{pwhere}[product_data][name]")
            quantity = _int(_required(item, "quantity", where), f"{where}[quantity]", minimum=1)
            if currency not in (None, item_currency):
                raise invalid("All line items must use the same currency.", param=f"{pwhere}[currency]")
            currency = item_currency
            total += unit * quantity
            items.append(
                {
                    "id": self._new_id("li"),
                    "object": "item",
                    "amount_discount": 0,
                    "amount_subtotal": unit * quantity,
                    "amount_tax": 0,
                    "amount_total": unit * quantity,
                    "currency": item_currency,
                    "description": name,
                    "price": {
                        "id": self._new_id("price"),
                        "object": "price",
                        "active": False,
                        "currency": item_currency,
                        "livemode": False,
                        "metadata": {},
                        "product": self._new_id("prod"),
                        "type": "one_time",
                        "unit_amount": unit,
                        "unit_amount_decimal": str(unit),
                    },
                    "quantity": quantity,
                }
            )
        if not items:
            raise missing("line_items")
        if total < 50:
            raise invalid(
                f"The Checkout Session's total amount due must add up to at least 50 {currency}.",
                param="line_items",
            )
        pi_data = _dict(params.get("payment_intent_data", {}), "payment_intent_data")
        _check_keys(
            pi_data,
            {"metadata", "description", "statement_descriptor", "statement_descriptor_suffix", "receipt_email"},
            "payment_intent_data",
        )
        now = self.now()
        expires_at = _int(params["expires_at"], "expires_at") if "expires_at" in params else now + 24 * 3600
        session: JSON = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": client_reference_id,
            "client_secret": f"{session_id}_secret_{secrets.token_hex(8)}" if ui_mode != "hosted" else None,
            "created": now,
            "currency": currency,
            "customer": params.get("customer"),
            "customer_details": None,
            "customer_email": params.get("customer_email"),
            "expires_at": expires_at,
            "livemode": False,
            "locale": params.get("locale"),
            "metadata": _metadata(params.get("metadata", {})),
            "mode": mode,
            "payment_intent": None,
            "payment_method_types": params.get("payment_method_types") or ["card"],
            "payment_status": "unpaid",
            "return_url": params.get("return_url"),
            "status": "open",
            "submit_type": params.get("submit_type"),
            "success_url": params.get("success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": ui_mode,
            "url": f"{self.api_base}/c/pay/{session_id}" if ui_mode == "hosted" else None,
            "_payment_intent_metadata": _metadata(pi_data.get("metadata", {}), param="payment_intent_data[metadata]"),
            "_payment_intent_description": pi_data.get("description"),
        }
        self._line_items[session_id] = items
        self._insert(session)
        return self._respond(session, params)

    def _list_checkout_sessions(self, path: str, params: JSON) -> JSON:
        return self._list_response(
            path,
            params,
            "checkout.session",
            lambda o: all(params.get(k) in (None, o[k]) for k in ("payment_intent", "status", "customer")),
            {"payment_intent", "status", "customer"},
        )

    def _line_items_list(self, session_id: str, params: JSON) -> JSON:
        items = self._line_items[session_id]
        return {
            "object": "list",
            "data": copy.deepcopy(items),
            "has_more": False,
            "url": f"/v1/checkout/sessions/{session_id}/line_items",
        }

    def _list_line_items(self, path: str, params: JSON, id: str) -> JSON:
        _check_keys(params, {"limit", "starting_after", "ending_before"})
        self._fetch("/v1/checkout/sessions/", id)
        return self._line_items_list(id, params)

    def _expire_checkout_session(self, path: str, params: JSON, id: str) -> JSON:
        _check_keys(params, set())
        session = self._fetch("/v1/checkout/sessions/", id)
        self._expire(session)
        return self._respond(session, params)

    def _expire(self, session: JSON) -> None:
        if session["status"] != "open":
            raise invalid('Only Checkout Sessions with a status in ["open"] can be expired.', param="session")
        session["status"], session["url"] = "expired", None
        self._api_event("checkout.session.expired", session)

    def _list_balance_transactions(self, path: str, params: JSON) -> JSON:
        return self._list_response(
            path,
            params,
            "balance_transaction",
            lambda o: all(params.get(k) in (None, o[k]) for k in ("type", "source", "currency")),
            {"type", "source", "currency", "payout"},
        )

    def _list_events(self, path: str, params: JSON) -> JSON:
        types = params.get("types")
        return self._list_response(
            path,
            params,
            "event",
            lambda o: params.get("type") in (None, o["type"]) and (not types or o["type"] in types),
            {"type", "types", "delivery_success"},
        )

    def _balance_transaction(
        self, amount: int, currency: str, txn_type: str, source: str, *, fee: int = 0, balance_type: str = "issuing"
    ) -> JSON:
        now = self.now()
        fee_details = (
            [
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency,
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            ]
            if fee
            else []
        )
        return self._insert(
            {
                "id": self._new_id("txn"),
                "object": "balance_transaction",
                "amount": amount,
                "available_on": now + (2 * 86400 if txn_type == "charge" else 0),
                "balance_type": balance_type,
                "created": now,
                "currency": currency,
                "description": None,
                "exchange_rate": None,
                "fee": fee,
                "fee_details": fee_details,
                "net": amount - fee,
                "reporting_category": txn_type,
                "source": source,
                "status": "available",
                "type": txn_type,
            }
        )

    # ------------------------------------------------------------------------------------------------- delivery

    def signed_request(self, event: JSON, variant: Variant = "valid") -> tuple[str, dict[str, str]]:
        """The body and headers of a webhook POST for ``event``, correctly signed or broken on purpose:

        - ``valid``: as Stripe signs it; ``forged``: HMAC with another secret; ``stale``: correct HMAC, timestamp
          ``DEFAULT_TOLERANCE + 60`` s old; ``tampered``: the body changed after signing (header for the
          original body); ``missing``: no Stripe-Signature header; ``malformed``: a header without ``t=``/``v1=``.
        """
        payload = encode_event(event)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Cache-Control": "no-cache",
            "Accept": "*/*; q=0.5, application/xml",
        }
        signature: str | None = signature_header(payload, self.webhook_secret)
        if variant == "forged":
            signature = signature_header(payload, "whsec_" + secrets.token_hex(16))
        elif variant == "stale":
            signature = signature_header(payload, self.webhook_secret, int(time.time()) - DEFAULT_TOLERANCE - 60)
        elif variant == "tampered":
            changed = copy.deepcopy(event)
            obj = changed["data"]["object"]
            if isinstance(obj.get("amount"), int):
                obj["amount"] += 100_00
            else:
                obj.setdefault("metadata", {})["tampered"] = "1"
            payload = encode_event(changed)
        elif variant == "missing":
            signature = None
        elif variant == "malformed":
            signature = "v0=deadbeef"
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        return payload, headers

    def _prepare(
        self, event: JSON, variant: Variant = "valid", url: str | None = None, timeout: float | None = None
    ) -> Delivery:
        payload, headers = self.signed_request(event, variant)
        delivery = Delivery(event, payload, headers, url or self.webhook_url)
        delivery.extra["timeout"] = timeout or self.webhook_timeout
        return delivery

    def _post(self, delivery: Delivery) -> None:
        if delivery.url is None:
            return
        start = time.monotonic()
        try:
            with httpx.Client(timeout=delivery.extra["timeout"]) as client:
                delivery.response = client.post(
                    delivery.url, content=delivery.payload.encode(), headers=delivery.headers
                )
        except httpx.HTTPError as exc:
            delivery.error = exc
        delivery.elapsed = time.monotonic() - start
        with self._lock:
            self.deliveries.append(delivery)

    async def _apost(self, delivery: Delivery) -> None:
        if delivery.url is None:
            return
        transport = httpx.ASGITransport(app=self.webhook_asgi_app) if self.webhook_asgi_app is not None else None
        start = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=delivery.extra["timeout"], transport=transport) as client:
                delivery.response = await asyncio.wait_for(
                    client.post(delivery.url, content=delivery.payload.encode(), headers=delivery.headers),
                    delivery.extra["timeout"],
                )
        except (httpx.HTTPError, TimeoutError) as exc:
            delivery.error = exc
        delivery.elapsed = time.monotonic() - start
        with self._lock:
            self.deliveries.append(delivery)

    def _drive(self, flow: Flow) -> Any:
        sent: Delivery | None = None
        try:
            while True:
                delivery = flow.send(sent)
                self._post(delivery)
                sent = delivery
        except StopIteration as stop:
            return stop.value

    async def _adrive(self, flow: Flow) -> Any:
        sent: Delivery | None = None
        try:
            while True:
                delivery = flow.send(sent)
                await self._apost(delivery)
                sent = delivery
        except StopIteration as stop:
            return stop.value

    def deliver(self, event: JSON, variant: Variant = "valid", *, url: str | None = None) -> Delivery:
        """POST ``event`` to the webhook URL (again, with the same event id, if called twice)."""
        delivery = self._prepare(event, variant, url)
        self._post(delivery)
        return delivery

    async def adeliver(self, event: JSON, variant: Variant = "valid", *, url: str | None = None) -> Delivery:
        delivery = self._prepare(event, variant, url)
        await self._apost(delivery)
        return delivery

    def deliver_concurrently(self, event: JSON, n: int = 2, *, url: str | None = None) -> list[Delivery]:
        """Deliver the same event ``n`` times at once (threads released together by a barrier)."""
        deliveries = [self._prepare(event, url=url) for _ in range(n)]
        barrier = threading.Barrier(n)

        def run(delivery: Delivery) -> None:
            barrier.wait()
            self._post(delivery)

        threads = [threading.Thread(target=run, args=(d,)) for d in deliveries]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return deliveries

    async def adeliver_concurrently(self, event: JSON, n: int = 2, *, url: str | None = None) -> list[Delivery]:
        deliveries = [self._prepare(event, url=url) for _ in range(n)]
        await asyncio.gather(*(self._apost(d) for d in deliveries))
        return deliveries

    def send_event(self, event_type: str, data_object: JSON, previous_attributes: JSON | None = None) -> Delivery:
        """Build, record, sign and deliver an event."""
        return self.deliver(self.build_event(event_type, data_object, previous_attributes))

    async def asend_event(
        self, event_type: str, data_object: JSON, previous_attributes: JSON | None = None
    ) -> Delivery:
        return await self.adeliver(self.build_event(event_type, data_object, previous_attributes))

    def redeliver(self, event_id: str) -> Delivery:
        """Stripe's retry of an already-sent event: same id and body, fresh signature."""
        return self.deliver(self.get(event_id))

    async def aredeliver(self, event_id: str) -> Delivery:
        return await self.adeliver(self.get(event_id))

    # ------------------------------------------------------------------------------------------------- issuing sim

    def request_authorization(
        self,
        card_id: str,
        amount: int,
        *,
        merchant_category: str = "hotels_motels_and_resorts",
        merchant_name: str = "Hotel Test",
        currency: str | None = None,
        merchant_city: str = "Montreal",
        merchant_country: str = "CA",
    ) -> AuthorizationResult:
        """A purchase on the card: Stripe's own checks (card active, spending controls), then the signed
        ``issuing_authorization.request`` to the authorization webhook (the app answers ``{"approved": bool}``
        with a ``Stripe-Version`` header within ``authorization_timeout`` s), then ``issuing_authorization.created``.
        With no webhook URL, Stripe approves (reason ``card_active``) when its own checks pass."""
        return typing.cast(
            AuthorizationResult,
            self._drive(
                self._authorization_flow(
                    card_id, amount, merchant_category, merchant_name, currency, merchant_city, merchant_country
                )
            ),
        )

    async def arequest_authorization(
        self,
        card_id: str,
        amount: int,
        *,
        merchant_category: str = "hotels_motels_and_resorts",
        merchant_name: str = "Hotel Test",
        currency: str | None = None,
        merchant_city: str = "Montreal",
        merchant_country: str = "CA",
    ) -> AuthorizationResult:
        return typing.cast(
            AuthorizationResult,
            await self._adrive(
                self._authorization_flow(
                    card_id, amount, merchant_category, merchant_name, currency, merchant_city, merchant_country
                )
            ),
        )

    def _authorization_flow(
        self,
        card_id: str,
        amount: int,
        category: str,
        merchant_name: str,
        currency: str | None,
        city: str,
        country: str,
    ) -> Flow:
        if category not in MERCHANT_CATEGORIES:
            raise ValueError(f"unknown Stripe merchant category {category!r}")
        if amount <= 0:
            raise ValueError("authorization amounts are positive")
        with self._lock:
            card = self._objects[card_id]
            cur = currency or card["currency"]
            now = self.now()
            auth: JSON = {
                "id": self._new_id("iauth"),
                "object": "issuing.authorization",
                "amount": 0,
                "amount_details": {"atm_fee": None, "cashback_amount": None},
                "approved": False,
                "authorization_method": "online",
                "balance_transactions": [],
                "card": card_id,
                "cardholder": card["cardholder"],
                "created": now,
                "currency": cur,
                "livemode": False,
                "merchant_amount": 0,
                "merchant_currency": cur,
                "merchant_data": {
                    "category": category,
                    "category_code": MCC.get(category, "5999"),
                    "city": city,
                    "country": country,
                    "name": merchant_name,
                    "network_id": "1234567890",
                    "postal_code": None,
                    "state": None,
                    "terminal_id": None,
                    "url": None,
                },
                "metadata": {},
                "network_data": {
                    "acquiring_institution_id": None,
                    "system_trace_audit_number": None,
                    "transaction_id": None,
                },
                "pending_request": {
                    "amount": amount,
                    "amount_details": {"atm_fee": None, "cashback_amount": None},
                    "currency": cur,
                    "is_amount_controllable": False,
                    "merchant_amount": amount,
                    "merchant_currency": cur,
                    "network_risk_score": None,
                },
                "request_history": [],
                "status": "pending",
                "transactions": [],
                "verification_data": {
                    "address_line1_check": "not_provided",
                    "address_postal_code_check": "not_provided",
                    "cvc_check": "match",
                    "expiry_check": "match",
                },
                "wallet": None,
            }
            self._insert(auth)
            decline = self._stripe_decline(card, amount, category)
            pending = self._render(auth)
        url = self.authorization_webhook_url or self.webhook_url
        request_delivery: Delivery | None = None
        metadata: dict[str, str] = {}
        reason_message: str | None = None
        if decline is not None:
            approved, reason = False, decline
        elif url is None:
            approved, reason = True, "card_active"
        else:
            event = self.build_event("issuing_authorization.request", pending)
            request_delivery = yield self._prepare(event, url=url, timeout=self.authorization_timeout)
            assert request_delivery is not None
            approved, reason, reason_message, metadata = self._decision(request_delivery)
        with self._lock:
            auth["approved"] = approved
            auth["amount"] = auth["merchant_amount"] = amount if approved else 0
            auth["pending_request"] = None
            auth["status"] = "pending" if approved else "closed"
            auth["metadata"].update(metadata)
            auth["request_history"].append(
                {
                    "amount": amount,
                    "amount_details": {"atm_fee": None, "cashback_amount": None},
                    "approved": approved,
                    "authorization_code": secrets.token_hex(3).upper() if approved else None,
                    "created": self.now(),
                    "currency": cur,
                    "merchant_amount": amount,
                    "merchant_currency": cur,
                    "network_risk_score": None,
                    "reason": reason,
                    "reason_message": reason_message,
                    "requested_at": now,
                }
            )
            if approved:
                hold = self._balance_transaction(-amount, cur, "issuing_authorization_hold", auth["id"])
                auth["balance_transactions"].append(hold["id"])
            final = self._render(auth)
        created = yield self._prepare(self.build_event("issuing_authorization.created", final))
        assert created is not None
        return AuthorizationResult(final, approved, reason, request_delivery, created)

    def _decision(self, delivery: Delivery) -> tuple[bool, str, str | None, dict[str, str]]:
        fallback = self.authorization_timeout_approves
        response = delivery.response
        if response is None:
            if isinstance(delivery.error, httpx.TimeoutException | TimeoutError):
                return fallback, "webhook_timeout", None, {}
            return fallback, "webhook_error", f"could not reach the endpoint: {delivery.error!r}", {}
        if response.status_code != 200:
            return fallback, "webhook_error", f"the endpoint answered HTTP {response.status_code}", {}
        if self.require_version_header_on_decision and "stripe-version" not in response.headers:
            return fallback, "webhook_error", "the response has no Stripe-Version header", {}
        try:
            body = response.json()
        except ValueError:
            return fallback, "webhook_error", "the response body is not JSON", {}
        if not isinstance(body, dict) or not isinstance(body.get("approved"), bool):
            return fallback, "webhook_error", "the response has no boolean 'approved'", {}
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        approved = body["approved"]
        return (
            approved,
            "webhook_approved" if approved else "webhook_declined",
            None,
            {str(k): str(v) for k, v in (metadata or {}).items()},
        )

    def _stripe_decline(self, card: JSON, amount: int, category: str) -> str | None:
        """Stripe declines before asking the app: inactive card or cardholder, spending controls."""
        holder = self._objects[card["cardholder"]]
        if card["status"] == "canceled":
            return "card_canceled"
        if card["status"] != "active":
            return "card_inactive"
        if holder["status"] == "blocked":
            return "cardholder_blocked"
        if holder["status"] != "active":
            return "cardholder_inactive"
        now = self.now()
        for owner, card_ids in (
            (card, {card["id"]}),
            (
                holder,
                {
                    c["id"]
                    for c in self._objects.values()
                    if c["object"] == "issuing.card" and c["cardholder"] == holder["id"]
                },
            ),
        ):
            controls = owner["spending_controls"]
            if controls["allowed_categories"] and category not in controls["allowed_categories"]:
                return "spending_controls"
            if controls["blocked_categories"] and category in controls["blocked_categories"]:
                return "spending_controls"
            for limit in controls["spending_limits"]:
                if limit["categories"] and category not in limit["categories"]:
                    continue
                spent = 0 if limit["interval"] == "per_authorization" else self._spent(card_ids, limit, now)
                if spent + amount > limit["amount"]:
                    return "spending_controls"
        return None

    def _spent(self, card_ids: set[str], limit: JSON, now: int) -> int:
        start = _window_start(limit["interval"], now)
        total = 0
        for obj in self._objects.values():
            if obj.get("card") not in card_ids or obj["created"] < start:
                continue
            if limit["categories"] and obj["merchant_data"]["category"] not in limit["categories"]:
                continue
            if obj["object"] == "issuing.authorization" and obj["approved"] and obj["status"] == "pending":
                total += obj["amount"]
            elif obj["object"] == "issuing.transaction":
                total -= obj["amount"]
        return total

    def capture(self, authorization_id: str, amount: int | None = None, *, close_authorization: bool = True) -> JSON:
        """The merchant captures: an ``issuing.transaction`` of type ``capture`` with amount ``-amount``
        (default: the authorized amount), ``issuing_transaction.created`` then ``issuing_authorization.updated``.
        Returns the transaction."""
        return typing.cast(JSON, self._drive(self._capture_flow(authorization_id, amount, close_authorization)))

    async def acapture(
        self, authorization_id: str, amount: int | None = None, *, close_authorization: bool = True
    ) -> JSON:
        return typing.cast(JSON, await self._adrive(self._capture_flow(authorization_id, amount, close_authorization)))

    def _capture_flow(self, authorization_id: str, amount: int | None, close: bool) -> Flow:
        with self._lock:
            auth = self._objects[authorization_id]
            if not auth["approved"] or auth["status"] != "pending":
                raise ValueError(f"authorization {authorization_id} is {auth['status']}, not pending and approved")
            value = auth["amount"] if amount is None else amount
            if value <= 0:
                raise ValueError("capture amounts are positive (the transaction's amount will be negative)")
            release = self._balance_transaction(
                auth["amount"], auth["currency"], "issuing_authorization_release", auth["id"]
            )
            txn = self._transaction(auth["card"], "capture", -value, auth["currency"], auth["id"], auth)
            auth["transactions"].append(txn["id"])
            auth["balance_transactions"].append(release["id"])
            if close:
                auth["status"] = "closed"
            rendered_txn, rendered_auth = self._render(txn), self._render(auth)
        yield self._prepare(self.build_event("issuing_transaction.created", rendered_txn))
        yield self._prepare(self.build_event("issuing_authorization.updated", rendered_auth, {"status": "pending"}))
        return rendered_txn

    def _transaction(
        self, card_id: str, txn_type: str, amount: int, currency: str, authorization: str | None, source: JSON
    ) -> JSON:
        card = self._objects[card_id]
        txn_id = self._new_id("ipi")
        balance = self._balance_transaction(amount, currency, "issuing_transaction", txn_id)
        return self._insert(
            {
                "id": txn_id,
                "object": "issuing.transaction",
                "amount": amount,
                "amount_details": {"atm_fee": None, "cashback_amount": None},
                "authorization": authorization,
                "balance_transaction": balance["id"],
                "card": card_id,
                "cardholder": card["cardholder"],
                "created": self.now(),
                "currency": currency,
                "dispute": None,
                "livemode": False,
                "merchant_amount": amount,
                "merchant_currency": currency,
                "merchant_data": copy.deepcopy(source["merchant_data"]),
                "metadata": {},
                "network_data": {
                    "authorization_code": None,
                    "processing_date": dt.datetime.fromtimestamp(self.now(), dt.UTC).date().isoformat(),
                    "transaction_id": None,
                },
                "purchase_details": None,
                "token": None,
                "treasury": None,
                "type": txn_type,
                "wallet": None,
            }
        )

    def refund(self, transaction_id: str, amount: int | None = None) -> JSON:
        """The merchant refunds (part of) a capture: a ``refund`` transaction with a POSITIVE amount and
        ``issuing_transaction.created``. Returns the refund transaction."""
        return typing.cast(JSON, self._drive(self._refund_flow(transaction_id, amount)))

    async def arefund(self, transaction_id: str, amount: int | None = None) -> JSON:
        return typing.cast(JSON, await self._adrive(self._refund_flow(transaction_id, amount)))

    def _refund_flow(self, transaction_id: str, amount: int | None) -> Flow:
        with self._lock:
            capture = self._objects[transaction_id]
            if capture["type"] != "capture":
                raise ValueError("only captures can be refunded")
            refunded = sum(
                o["amount"]
                for o in self._objects.values()
                if o["object"] == "issuing.transaction"
                and o["type"] == "refund"
                and o.get("_refund_of") == transaction_id
            )
            remaining = -capture["amount"] - refunded
            value = remaining if amount is None else amount
            if not 0 < value <= remaining:
                raise ValueError(f"refund amount must be between 1 and {remaining}")
            txn = self._transaction(
                capture["card"], "refund", value, capture["currency"], capture["authorization"], capture
            )
            txn["_refund_of"] = transaction_id
            if capture["authorization"]:
                self._objects[capture["authorization"]]["transactions"].append(txn["id"])
            rendered = self._render(txn)
        yield self._prepare(self.build_event("issuing_transaction.created", rendered))
        return rendered

    def reverse_authorization(self, authorization_id: str) -> JSON:
        """The merchant reverses (or the hold expires): status ``reversed``, hold released."""
        return typing.cast(JSON, self._drive(self._reverse_flow(authorization_id)))

    async def areverse_authorization(self, authorization_id: str) -> JSON:
        return typing.cast(JSON, await self._adrive(self._reverse_flow(authorization_id)))

    def _reverse_flow(self, authorization_id: str) -> Flow:
        with self._lock:
            auth = self._objects[authorization_id]
            if not auth["approved"] or auth["status"] != "pending":
                raise ValueError(f"authorization {authorization_id} is not pending")
            release = self._balance_transaction(
                auth["amount"], auth["currency"], "issuing_authorization_release", auth["id"]
            )
            auth["balance_transactions"].append(release["id"])
            auth["status"] = "reversed"
            rendered = self._render(auth)
        yield self._prepare(self.build_event("issuing_authorization.updated", rendered, {"status": "pending"}))
        return rendered

    # ------------------------------------------------------------------------------------------------- checkout sim

    def complete_checkout(
        self, session_id: str, *, email: str = "donor@example.org", name: str | None = "Test Donor"
    ) -> Delivery:
        """The donor pays: PaymentIntent + Charge + ``charge`` balance transaction, the session becomes
        ``complete``/``paid``, and ``checkout.session.completed`` is delivered (returned)."""
        return typing.cast(Delivery, self._drive(self._complete_flow(session_id, email, name)))

    async def acomplete_checkout(
        self, session_id: str, *, email: str = "donor@example.org", name: str | None = "Test Donor"
    ) -> Delivery:
        return typing.cast(Delivery, await self._adrive(self._complete_flow(session_id, email, name)))

    def _complete_flow(self, session_id: str, email: str, name: str | None) -> Flow:
        with self._lock:
            session = self._objects[session_id]
            if session["status"] != "open":
                raise ValueError(f"checkout session {session_id} is {session['status']}")
            amount, currency, now = session["amount_total"], session["currency"], self.now()
            pi_id, charge_id = self._new_id("pi"), self._new_id("ch")
            fee = round(amount * self.fee_rate_bps / 10_000) + self.fee_fixed if amount else 0
            balance = self._balance_transaction(amount, currency, "charge", charge_id, fee=fee, balance_type="payments")
            self._insert(
                {
                    "id": charge_id,
                    "object": "charge",
                    "amount": amount,
                    "amount_captured": amount,
                    "amount_refunded": 0,
                    "balance_transaction": balance["id"],
                    "billing_details": {"address": None, "email": email, "name": name, "phone": None},
                    "captured": True,
                    "created": now,
                    "currency": currency,
                    "description": session["_payment_intent_description"],
                    "livemode": False,
                    "metadata": dict(session["_payment_intent_metadata"]),
                    "paid": True,
                    "payment_intent": pi_id,
                    "refunded": False,
                    "status": "succeeded",
                }
            )
            self._insert(
                {
                    "id": pi_id,
                    "object": "payment_intent",
                    "amount": amount,
                    "amount_capturable": 0,
                    "amount_received": amount,
                    "capture_method": "automatic_async",
                    "client_secret": f"{pi_id}_secret_{secrets.token_hex(8)}",
                    "created": now,
                    "currency": currency,
                    "customer": session["customer"],
                    "description": session["_payment_intent_description"],
                    "latest_charge": charge_id,
                    "livemode": False,
                    "metadata": dict(session["_payment_intent_metadata"]),
                    "payment_method": self._new_id("pm"),
                    "payment_method_types": ["card"],
                    "status": "succeeded",
                }
            )
            session.update(
                status="complete",
                payment_status="paid",
                payment_intent=pi_id,
                url=None,
                customer_details={
                    "address": None,
                    "email": email,
                    "name": name,
                    "phone": None,
                    "tax_exempt": "none",
                    "tax_ids": [],
                },
            )
            rendered = self._render(session)
        delivery = yield self._prepare(self.build_event("checkout.session.completed", rendered))
        return delivery

    def expire_checkout(self, session_id: str) -> Delivery:
        """The session expires unpaid: ``checkout.session.expired`` is delivered (returned)."""
        return typing.cast(Delivery, self._drive(self._expire_flow(session_id)))

    async def aexpire_checkout(self, session_id: str) -> Delivery:
        return typing.cast(Delivery, await self._adrive(self._expire_flow(session_id)))

    def _expire_flow(self, session_id: str) -> Flow:
        with self._lock:
            session = self._objects[session_id]
            if session["status"] != "open":
                raise ValueError(f"checkout session {session_id} is {session['status']}")
            session["status"], session["url"] = "expired", None
            rendered = self._render(session)
        delivery = yield self._prepare(self.build_event("checkout.session.expired", rendered))
        return delivery

    def _checkout_page(
        self, method: str, path: str, body: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """The hosted Checkout page at ``session.url``: a Pay button (completes the session, delivers the event
        in the background, redirects to ``success_url``) and a cancel link."""
        session_id = path.removeprefix("/c/pay/")
        with self._lock:
            session = self._objects.get(session_id)
        if session is None or session["object"] != "checkout.session":
            return 404, {**headers, "Content-Type": "text/plain"}, b"No such checkout session"
        if method == "POST":
            email = dict(parse_qsl(body)).get("email") or "donor@example.org"
            flow = self._complete_flow(session_id, email, "Test Donor")
            try:
                first = next(flow)
            except ValueError:
                return 409, {**headers, "Content-Type": "text/plain"}, b"This session is no longer open"

            def finish() -> None:
                self._post(first)
                with contextlib.suppress(StopIteration):
                    flow.send(first)

            thread = threading.Thread(target=finish, daemon=True)
            self._background.append(thread)
            thread.start()
            target = (session["success_url"] or self.api_base).replace("{CHECKOUT_SESSION_ID}", session_id)
            return 303, {**headers, "Location": target}, b""
        amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
        cancel = escape(session["cancel_url"] or "")
        page = (
            "<!doctype html><html><head><title>Fake Stripe Checkout</title></head><body>"
            f"<h1>Pay {escape(amount)}</h1><p>Status: {escape(session['status'])}</p>"
            f'<form method="post"><input name="email" type="email" value="donor@example.org">'
            f'<button type="submit">Pay</button></form><a href="{cancel}">Cancel</a></body></html>'
        )
        return 200, {**headers, "Content-Type": "text/html; charset=utf-8"}, page.encode()


@contextlib.contextmanager
def fake_stripe_server(**kwargs: Any) -> Iterator[FakeStripe]:
    """``with fake_stripe_server() as fake: ...`` (the same as ``with FakeStripe() as fake``)."""
    with FakeStripe(**kwargs) as fake:
        yield fake
