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

from exchange.web.i18n import gettext as _

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


def error_response(request: Request, status: int, code: str, detail: str, **extra: Any) -> Response:
    if wants_json(request):
        return Response({"error": code, "detail": detail, **extra}, status_code=status, media_type=MediaType.JSON)
    if request.headers.get("hx-request"):
        # htmx swaps this into the page's message area instead of the target.
        return Template(
            template_name="fragments/error.html",
            context={"status": status, "detail": detail},
            status_code=status,
            headers={"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"},
        )
    return Template(template_name="error.html", context={"status": status, "detail": detail}, status_code=status)


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
    return error_response(request, status, code, exc.detail)


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
