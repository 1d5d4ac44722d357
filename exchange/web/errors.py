"""One error shape everywhere: `{"error": code, "detail": sentence}` for the API, a page for browsers."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from exchange.web.i18n import LOCALE_COOKIE, N_, get_locale, negotiate, set_locale
from exchange.web.i18n import gettext as _
from exchange.web.nav import page_context

log = structlog.get_logger()

KIND_STATUS = {"invalid": 422, "not_found": 404, "forbidden": 403, "conflict": 409, "bad_request": 400}
STATUS_CODE = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    422: "invalid",
    429: "rate_limited",
}


def wants_json(request: Request) -> bool:
    path = request.scope["path"]
    return path.startswith(("/api/", "/webhooks/", "/schema")) or "application/json" in request.headers.get(
        "accept", ""
    )


# What a page says for an error, in the person's language. The domain's own sentences are English (they are the
# API's `detail`); a page shows its translation when the catalogue has one, else the sentence for its code here,
# else the one for its status.
STATUS_TITLES = {
    400: N_("Something sent is not valid"),
    401: N_("Log in first"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Not possible here"),
    409: N_("This changed meanwhile"),
    413: N_("Too much was sent"),
    422: N_("This cannot be done as sent"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong on our side"),
}
STATUS_TEXTS = {
    400: N_("Some of what was sent is not valid. Check the form and try again."),
    401: N_("Log in first."),
    403: N_("You may not do this."),
    404: N_("This page or item does not exist, or you may not see it."),
    405: N_("This address does not take this kind of request."),
    409: N_("This changed meanwhile: someone else acted first. The page shows it as it is now; try again if needed."),
    413: N_("Too much was sent at once."),
    422: N_("This cannot be done as sent. Check what was typed and try again."),
    429: N_("Too many attempts. Wait a few minutes and try again."),
    500: N_("Something went wrong on our side. Try again in a moment."),
}
CODE_TEXTS = {
    "invalid_state": N_("This hold changed meanwhile (answered, released or expired). The page shows it as it is now."),
    "reason_required": N_("A decline needs a reason; the requester sees it."),
    "invalid_reason": N_("The reason is too long: at most 500 characters."),
    "invalid_beds_used": N_("Beds used: at least 1 and at most the beds held. Release the hold if nobody came."),
    "invalid_beds": N_("Write a number of beds of at least 1."),
    "insufficient_capacity": N_("Not enough free beds for this."),
    "confirmation_required": N_("Tick the box to confirm this step; it acts on several holds at once."),
    "invalid_partner": N_("Choose a partner organisation."),
    "invalid_scope": N_("Choose who the agreement is for."),
    "invalid_target": N_("Choose a user or an organisation."),
    "invalid_window": N_("The window must end after it starts, and dates must look like 2026-05-01 21:30."),
    "invalid_expiry": N_("The hold must end in the future, within the longest time allowed."),
    "idempotency_key_reused": N_("This form was already sent with other values. Reload the page and send it again."),
    "invalid_idempotency_key": N_("This form is damaged. Reload the page and send it again."),
    "invalid_amount": N_("Write the amount in dollars, like 25 or 25.50."),
    "insufficient_funds": N_("The fund does not hold enough money for this."),
    "csrf_failed": N_("This page is too old to send. Reload it and try again."),
    "invalid_body": N_("Some of what was sent is not valid. Check the form and try again."),
    "unauthorized": N_("Log in first."),
    "forbidden": N_("You may not do this."),
    "not_found": N_("This page or item does not exist, or you may not see it."),
    "rate_limited": N_("Too many attempts. Wait a few minutes and try again."),
    "internal_error": N_("Something went wrong on our side. Try again in a moment."),
}
# Sentences written for developers (field paths, decoder messages): a page never shows them, in any language.
_DEVELOPER_CODES = frozenset({"invalid_body", "unknown_fields", "internal_error", "csrf_failed"})


def page_error_text(status: int, code: str, detail: str) -> str:
    """The sentence a page shows for an error, in the page's language."""
    if code in _DEVELOPER_CODES:
        return _(CODE_TEXTS.get(code) or STATUS_TEXTS.get(status, STATUS_TEXTS[422]))
    translated = _(detail) if detail else ""
    if detail and (translated != detail or get_locale() == "en"):
        return translated
    if code in CODE_TEXTS:
        return _(CODE_TEXTS[code])
    return _(STATUS_TEXTS.get(status) or (STATUS_TEXTS[500] if status >= 500 else STATUS_TEXTS[422]))


def error_text(exc: Exception) -> str:
    """A domain error's sentence for a page (the form shows it beside what was typed)."""
    status = KIND_STATUS.get(getattr(exc, "kind", "invalid"), 422)
    return page_error_text(status, getattr(exc, "code", ""), getattr(exc, "detail", str(exc)))


def error_response(request: Request, status: int, code: str, detail: str, **extra: Any) -> Response:
    if wants_json(request):
        return Response({"error": code, "detail": detail, **extra}, status_code=status, media_type=MediaType.JSON)
    if request.scope.get("user") is None:
        # An address the router does not know is answered before the request's language is chosen.
        set_locale(negotiate(request.cookies.get(LOCALE_COOKIE), request.headers.get("accept-language")))
        if status == 404 and code == "not_found":
            detail = _(STATUS_TEXTS[404])
    context = {
        "status": status,
        "code": code,
        "title": _(STATUS_TITLES.get(status) or STATUS_TITLES[500 if status >= 500 else 422]),
        "detail": page_error_text(status, code, detail),
        # Where "Back" goes: the page the form was on, when it is ours.
        "back": _local_referer(request),
    }
    context["locale_next"] = context["back"] or "/"
    context = page_context(request, **context)
    if request.headers.get("hx-request"):
        # htmx swaps this into the page's message area instead of the target (static/app.js adds a Retry).
        return Template(
            template_name="fragments/error.html",
            context=context,
            status_code=status,
            headers={"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"},
        )
    return Template(template_name="error.html", context=context, status_code=status)


def _local_referer(request: Request) -> str | None:
    """The referring page's path and query when it is on this site, else None."""
    from urllib.parse import urlsplit

    referer = request.headers.get("referer", "")
    if not referer:
        return None
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc != request.headers.get("host", ""):
        return None
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//") or path == request.url.path:
        return None
    return path + (f"?{parts.query}" if parts.query else "")


def domain_error(request: Request, exc: Exception) -> Response:
    status = KIND_STATUS.get(getattr(exc, "kind", "invalid"), 422)
    return error_response(request, status, exc.code, exc.detail, **getattr(exc, "extra", {}))  # type: ignore[attr-defined]


def validation_error(request: Request, exc: ValidationException) -> Response:
    problems = exc.extra if isinstance(exc.extra, list) else []
    parts = [f"{p.get('key') or 'body'}: {p.get('message')}" for p in problems if isinstance(p, dict)]
    detail = "; ".join(parts) or str(exc.detail)
    return error_response(request, 400, "invalid_body", detail)


def not_authorized(request: Request, exc: NotAuthorizedException) -> Response:
    # A browser without a session goes to the login page; a caller with a bad bearer token is an API
    # client (and would loop: the login page would refuse the same header again), so it gets the 401.
    is_browser = not request.headers.get("hx-request") and "authorization" not in request.headers
    if not wants_json(request) and request.method == "GET" and is_browser:
        return Redirect(path="/login", query_params={"next": request.url.path})
    return error_response(request, 401, "unauthorized", exc.detail or _("Log in first."))


def permission_denied(request: Request, exc: PermissionDeniedException) -> Response:
    code = "csrf_failed" if "CSRF" in (exc.detail or "") else "forbidden"
    return error_response(request, 403, code, exc.detail or _("You may not do this."))


def http_error(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    code = STATUS_CODE.get(status, "error")
    if status >= 500:
        log.error("http_error", status=status, path=request.scope["path"])
        return error_response(request, status, "internal_error", "Something went wrong on our side.")
    # Litestar's own sentences ("Not Found") are English: a page says the status's sentence instead.
    detail = exc.detail if wants_json(request) else ""
    return error_response(request, status, code, detail or _(STATUS_TEXTS.get(status, STATUS_TEXTS[422])))


def internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", path=request.scope["path"], error_type=type(exc).__name__)
    return error_response(
        request, HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "Something went wrong on our side."
    )


ERROR_STATUSES = ("400", "401", "403", "404", "409", "422", "429")


def document_error_responses(app: Any) -> None:
    """Describe the API's real error body, `{"error", "detail", ...}`, in the OpenAPI document.

    Litestar documents a 400 as its own ValidationException shape; clients (and schemathesis) must see the
    shape this app actually answers with, for every error status an API operation can return.
    """
    from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Reference, Schema

    openapi = app.openapi_schema
    components = openapi.components
    if components.schemas is None:
        components.schemas = {}
    components.schemas["Error"] = Schema(
        type=OpenAPIType.OBJECT,
        required=["error", "detail"],
        properties={"error": Schema(type=OpenAPIType.STRING), "detail": Schema(type=OpenAPIType.STRING)},
    )
    for path, item in (openapi.paths or {}).items():
        # Pages answer an error page (JSON only when asked with Accept: application/json).
        is_api = path.startswith(("/api/", "/webhooks/"))
        content = {"application/json": OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Error"))}
        if not is_api:
            content = {"text/html": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)), **content}
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            responses = operation.responses if operation.responses is not None else {}
            for status in ERROR_STATUSES:
                responses[status] = OpenAPIResponse(
                    description=STATUS_CODE.get(int(status), "error").replace("_", " ").capitalize(),
                    content=content,
                )
            operation.responses = responses


def out_of_range(request: Request, exc: Exception) -> Response:
    """A number too large for the database column is bad input (400), not a crash (500)."""
    return error_response(request, 400, "invalid_body", "A number is out of range.")


def _raised_while_decoding(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name in {"decode_json", "json", "json_extractor"}:
            return True
        tb = tb.tb_next
    return False


def too_deep(request: Request, exc: RecursionError) -> Response:
    """A body nested deeper than the decoder goes (`"[" * 200000`) is bad input (400), not a crash.

    Only a RecursionError raised while the body was being decoded; one anywhere else is still a 500.
    """
    if _raised_while_decoding(exc):
        return error_response(request, 400, "invalid_body", "The body is nested too deeply.")
    return internal_error(request, exc)


# Form fields the correction form never shows back: the CSRF token comes fresh from the page.
_NOT_ECHOED = frozenset({"_csrf_token"})


def personal_data(request: Request, exc: Exception) -> Response:
    """A free-text value that looks like a phone number, an e-mail address or a date of birth.

    The API answers 422 `personal_data` with the field. A page answers the form again, posted to the same
    address: every field as it was typed, the refused one editable with the message beside it, so the person
    rephrases and sends again.
    """
    from litestar.utils.scope.state import ScopeState

    from exchange.web.personal_data import field_label

    field = getattr(exc, "field", "")
    detail = getattr(exc, "detail", str(exc))
    if wants_json(request) or request.method != "POST":
        return error_response(request, 422, "personal_data", detail, **getattr(exc, "extra", {}))
    form = ScopeState.from_scope(request.scope).form
    values = form if isinstance(form, dict) else {}
    fields = [
        (name, value)
        for name, raw in values.items()
        if name not in _NOT_ECHOED
        for value in (raw if isinstance(raw, list) else [raw])
        if isinstance(value, str)
    ]
    context = {
        "status": 422,
        "detail": detail,
        "field": field,
        "label": field_label(field),
        "typed": next((value for name, value in fields if name == field), ""),
        "others": [(name, value) for name, value in fields if name != field],
        "action": request.url.path,
    }
    if request.headers.get("hx-request"):
        return Template(
            template_name="fragments/personal_data.html",
            context=context,
            status_code=422,
            headers={"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"},
        )
    return Template(template_name="personal_data.html", context=context, status_code=422)


def database_error(request: Request, exc: Exception) -> Response:
    """PostgreSQL refuses an out-of-range integer with a DataError, and text with a NUL character as an
    invalid byte sequence: both are bad input (400), refused before anything was written. Anything else is a 500.
    """
    orig = getattr(exc, "orig", None)
    if "invalid byte sequence" in str(orig) or "CharacterNotInRepertoire" in type(orig).__name__:
        return error_response(request, 400, "invalid_text", "Text may not contain NUL characters.")
    if type(orig).__name__ == "DataError" or ("out of" in str(orig) and "range" in str(orig)):
        return out_of_range(request, exc)
    return internal_error(request, exc)
