"""Pages for holds: a police planner's operations, a shelter's hold requests, standing agreements.

Writes are plain forms (POST, then 303 back), so every page works without JavaScript and on a phone;
htmx only previews a plan in place and reloads a list when the board socket says a hold changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import msgspec
from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template

from beds.errors import BedsError, Invalid, NotFound
from beds.models import PROVINCES, Profile
from beds.planner import PlanOptions
from beds.timeutil import utcnow
from exchange.accounts.models import Role, User
from exchange.holds.fit import DISTANCE_CHOICES, MAX_DISTANCE_KM, fit_form_error
from exchange.holds.schemas import (
    AgreementForm,
    AllocateForm,
    ClaimForm,
    DeclineForm,
    DeclineRequesterForm,
    IncidentForm,
    KeptPageForm,
    NextForm,
    OperationForm,
    PlanForm,
    parse_count,
)
from exchange.holds.service import SERVICE, HoldService
from exchange.web.auth import requires_roles
from exchange.web.errors import KIND_STATUS, error_text
from exchange.web.forms import (
    FORM,
    IDEMPOTENCY_KEY_MAX,
    first_use_of_form,
    flash,
    forget_form_use,
    new_idempotency_key,
    request_hash,
    safe_next,
)
from exchange.web.i18n import gettext as _
from exchange.web.i18n import ngettext
from exchange.web.nav import page_context
from exchange.web.personal_data import PersonalDataRefused


def _confirmed(value: str) -> None:
    """A bulk step runs only once its box is ticked: the page asks before it acts."""
    if value != "yes":
        raise Invalid("confirmation_required", "Tick the box to confirm this step; it acts on several holds at once.")


def _page(request: Request, template: str, block: str, context: dict[str, Any]) -> Template:
    """The whole page, or only `block` when htmx asks for it (a plan preview, a live refresh)."""
    if request.htmx:
        return HTMXBlockTemplate(template_name=template, block_name=block, context=context)
    return Template(template, context=context)


# What the operation form says beside a field, in the page's language, for each error the domain names.
def _operation_form_errors(exc: Exception, data: OperationForm, max_beds: int) -> dict[str, str]:
    code, extra = getattr(exc, "code", ""), getattr(exc, "extra", {}) or {}
    if (fit := fit_form_error(exc)) is not None:
        return fit
    if isinstance(exc, PersonalDataRefused):
        return {exc.field: exc.detail}
    if code == "invalid_code_name":
        return {"code_name": _("Give the operation a code name of 1 to 80 characters.")}
    if code == "invalid_province":
        return {"province": _("Choose a province.")}
    if code in ("invalid_local_time", "nonexistent_local_time"):  # exchange/web/localtime.py parse_local
        return {extra.get("field", "window_start"): error_text(exc)}
    if code == "invalid_window":
        if extra.get("problem") == "order":
            return {"window_end": _("The window must end after it starts.")}
        if extra.get("problem") == "over":
            return {"window_end": _("This window is already over: choose times still to come.")}
        field = extra.get("field") or ("window_start" if not _is_datetime(data.window_start) else "window_end")
        return {field: _("Enter a date and a time.")}
    if code == "invalid_count":
        return {extra.get("field", "needs"): _("Write a whole number of beds, 0 or more.")}
    if code == "too_many_beds":
        return {"needs": _("An operation may ask for at most %(max)s beds in all.", max=max_beds)}
    if code in ("invalid_needs", "invalid_profile"):
        return {"needs": _("Write how many beds of at least one kind are needed.")}
    if code == "idempotency_key_reused":
        return {"form": _("This form was already sent with other values. Check them and send it again.")}
    return {"form": error_text(exc)}


def _is_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _blank_fields(data: OperationForm) -> dict[str, str]:
    """Required fields left empty, each with its message (checked before the domain, all at once)."""
    errors: dict[str, str] = {}
    if not data.code_name.strip():
        errors["code_name"] = _("Give the operation a code name of 1 to 80 characters.")
    if not data.province.strip():
        errors["province"] = _("Choose a province.")
    for field in ("window_start", "window_end"):
        if not getattr(data, field).strip():
            errors[field] = _("Enter a date and a time.")
    for profile in PROFILE_FIELDS:
        try:
            parse_count(getattr(data, profile), profile)
        except Invalid:
            errors[profile] = _("Write a whole number of beds, 0 or more.")
    return errors


PROFILE_FIELDS = tuple(f"need_{p.value}" for p in Profile)


def _allocation_error(exc: BedsError) -> str:
    """What the plan card says when allocating failed, in the page's language."""
    extra = exc.extra or {}
    if exc.code == "insufficient_capacity":
        return _(
            "The network can no longer cover every need. Place what is available and keep looking, or widen the search."
        )
    if exc.code == "hold_limit":
        return _(
            "Your service has reached its limit of %(max)s beds waiting for a shelter's answer. Wait for answers, "
            "or release holds you no longer need.",
            max=extra.get("max_beds", ""),
        )
    if exc.code == "idempotency_key_reused":
        return _("This form was already sent with other values. Propose holds again.")
    return error_text(exc)


def _form_key(text: str) -> str | None:
    """The key the page's form carried, when it looks like one of ours."""
    key = text.strip()
    return key if 0 < len(key) <= IDEMPOTENCY_KEY_MAX else None


class OperationPages(Controller):
    """A police planner's operations; coordinators read them."""

    dependencies = SERVICE

    async def _list_context(self, request: Request[User, str, object], service: HoldService, **form: Any) -> dict:
        return page_context(
            request,
            operations=await service.operations(),
            provinces=PROVINCES,
            profiles=[p.value for p in Profile],
            can_create=request.user.has(Role.POLICE_PLANNER),
            max_beds=service.settings.operation_need_max_beds,
            typed=form.get("typed", {}),
            errors=form.get("errors", {}),
            # The key of this rendering of the form; kept when the form comes back with an error.
            form_key=form.get("form_key") or new_idempotency_key(),
            now=utcnow(),
        )

    @get("/operations", guards=[requires_roles(Role.POLICE_PLANNER, Role.COORDINATOR)])
    async def operations(self, request: Request[User, str, object], service: HoldService) -> Template:
        return Template("operations.html", context=await self._list_context(request, service))

    @post("/operations", guards=[requires_roles(Role.POLICE_PLANNER)], status_code=303)
    async def create_operation(
        self, request: Request[User, str, object], service: HoldService, data: Annotated[OperationForm, FORM]
    ) -> Response:
        """Record the operation and open it; on any error, the form again with what was typed and the message
        beside the field. The form's key makes a double submit record one operation."""
        key = _form_key(data.idempotency_key)
        errors = _blank_fields(data)
        if not errors:
            try:
                operation, _needs = await service.create_operation(
                    data.new_operation(), idempotency_key=key, request_hash=request_hash(data.typed())
                )
                return Redirect(path=f"/operations/{operation.id}", status_code=303)
            except (BedsError, PersonalDataRefused) as exc:
                errors = _operation_form_errors(exc, data, service.settings.operation_need_max_beds)
                if getattr(exc, "code", "") == "idempotency_key_reused":
                    key = None
        context = await self._list_context(request, service, typed=data.typed(), errors=errors, form_key=key)
        return Template("operations.html", context=context, status_code=422)

    async def _context(self, request: Request[User, str, object], service: HoldService, operation_id: str) -> dict:
        found = await service.operation(operation_id)
        labels = await service.pools_with_facilities({h.pool_id for h in found.holds})
        placed = request.query_params.get("placed")
        return page_context(
            request,
            operation=found.operation,
            needs=found.needs,
            holds=found.holds,
            coverage=found.coverage,
            status=found.status.value,
            labels=labels,
            # Shown (and written to the audit log) only once a hold there is confirmed.
            contacts=await service.contacts(facility for _pool, facility in labels.values()),
            can_act=request.user.has(Role.POLICE_PLANNER),
            now=utcnow(),
            plan=None,
            options=PlanOptions(),
            distance_choices=DISTANCE_CHOICES,
            any_distance=MAX_DISTANCE_KM,
            # After a partial allocation: how many beds it placed (the coverage says what is still missing).
            placed=int(placed) if placed and placed.isdigit() else None,
            allocate_error=None,
            # The live refresh renders the holds alone, and the coverage beside them out of band.
            refresh=bool(request.htmx),
        )

    @get("/operations/{operation_id:str}")
    async def operation(self, request: Request[User, str, object], service: HoldService, operation_id: str) -> Template:
        context = await self._context(request, service, operation_id)
        return _page(request, "operation.html", "operation_holds", context)

    @post("/operations/{operation_id:str}/plan", status_code=200)
    async def plan(
        self,
        request: Request[User, str, object],
        service: HoldService,
        operation_id: str,
        data: Annotated[PlanForm, FORM],
    ) -> Template:
        _operation, plan = await service.plan(operation_id, data.options())
        context = await self._context(request, service, operation_id)
        context.update(plan=plan, options=data.options(), refresh=False)
        return _page(request, "operation.html", "plan_block", context)

    @post("/operations/{operation_id:str}/allocate", status_code=303)
    async def allocate(
        self,
        request: Request[User, str, object],
        service: HoldService,
        operation_id: str,
        data: Annotated[AllocateForm, FORM],
    ) -> Response:
        """All or none ("Place all these holds"), or `mode=partial` ("Place what is available and keep
        looking"). A failure shows the operation page again with the message in the plan card."""
        partial = data.is_partial()
        body = {"options": data.options(), "partial": partial}
        try:
            result = await service.allocate(
                operation_id,
                data.options(),
                partial=partial,
                idempotency_key=_form_key(data.idempotency_key),
                request_hash=request_hash(body),
            )
        except BedsError as exc:
            if exc.kind == "not_found":
                raise
            # The page again, with the message and the plan as it is now (its "keep looking" button if short).
            _operation, plan = await service.plan(operation_id, data.options())  # before the reads it would expire
            context = await self._context(request, service, operation_id)
            context.update(plan=plan, options=data.options(), allocate_error=_allocation_error(exc), refresh=False)
            return Template("operation.html", context=context, status_code=KIND_STATUS.get(exc.kind, 422))
        if partial:
            placed = sum(h.beds for h in result.holds)
            return Redirect(path=f"/operations/{operation_id}", query_params={"placed": str(placed)}, status_code=303)
        return Redirect(path=f"/operations/{operation_id}", status_code=303)


class HoldPages(Controller):
    """A shelter's hold requests, and the four steps either side takes on a hold."""

    dependencies = SERVICE

    @get("/requests", guards=[requires_roles(Role.SHELTER_STAFF)])
    async def requests(self, request: Request[User, str, object], service: HoldService) -> Template:
        return _page(request, "requests.html", "requests_list", await self._requests_context(request, service))

    @staticmethod
    async def _requests_context(request: Request[User, str, object], service: HoldService, **extra: Any) -> dict:
        now = utcnow()
        holds = await service.requests()
        labels = await service.pools_with_facilities({h.pool_id for h in holds})
        # Open requests by requester, for "decline every open request of this requester" (largest first).
        open_by: dict[str, dict[str, Any]] = {}
        for hold in holds:
            if hold.status == "requested":
                entry = open_by.setdefault(
                    hold.requested_by,
                    {"requested_by": hold.requested_by, "service_name": hold.service_name, "holds": 0, "beds": 0},
                )
                entry["holds"] += 1
                entry["beds"] += hold.beds
        requesters = sorted(open_by.values(), key=lambda e: -e["beds"])
        return page_context(request, holds=holds, labels=labels, now=now, requesters=requesters, **extra)

    async def _once(
        self,
        request: Request[User, str, object],
        service: HoldService,
        next_path: str,
        step: Callable[..., Awaitable[object]],
        *args: object,
    ) -> Redirect | Template:
        """A step from a page, acted once per rendered form (a double click posts the same key twice).

        Refused (it changed meanwhile, a bad number): the page it came from again, with the message; the
        requests page is rendered in place with the refusal's status, another page shows it after the redirect.
        """
        target = safe_next(next_path)
        if not await first_use_of_form(request):
            return Redirect(path=target, status_code=303)
        try:
            await step(*args)
        except BedsError as exc:
            await forget_form_use(request)
            if exc.kind in ("forbidden", "not_found"):
                raise
            if target == "/requests" and request.user.has(Role.SHELTER_STAFF):
                context = await self._requests_context(request, service, error=error_text(exc))
                return Template("requests.html", context=context, status_code=KIND_STATUS.get(exc.kind, 422))
            flash(request, error_text(exc))
        return Redirect(path=target, status_code=303)

    @post("/requests/decline-requester", guards=[requires_roles(Role.SHELTER_STAFF)], status_code=303)
    async def decline_requester(
        self, request: Request[User, str, object], service: HoldService, data: Annotated[DeclineRequesterForm, FORM]
    ) -> Redirect | Template:
        async def step() -> object:
            _confirmed(data.confirm)
            return await service.decline_requester(data.requested_by, data.reason)

        return await self._once(request, service, "/requests", step)

    @get("/holds/incident", guards=[requires_roles(Role.COORDINATOR)])
    async def incident(self, request: Request[User, str, object], service: HoldService) -> Template:
        return await self._incident_page(request, service)

    async def _incident_page(
        self,
        request: Request[User, str, object],
        service: HoldService,
        *,
        typed: IncidentForm | None = None,
        error: str = "",
        status_code: int = 200,
    ) -> Template:
        users, orgs = await service.holders()
        incidents = await service.incidents()
        context = page_context(
            request,
            users=users,
            orgs=orgs,
            incidents=incidents,
            names=await service.names(incidents),
            typed=typed,
            error=error,
        )
        return Template("hold_incident.html", context=context, status_code=status_code)

    @post("/holds/incident", guards=[requires_roles(Role.COORDINATOR)], status_code=303)
    async def release_all(
        self, request: Request[User, str, object], service: HoldService, data: Annotated[IncidentForm, FORM]
    ) -> Redirect | Template:
        try:  # checked before the step, so a refusal comes back as the form with what was typed
            _confirmed(data.confirm)
            data.whom()
        except BedsError as exc:
            return await self._incident_page(request, service, typed=data, error=error_text(exc), status_code=422)

        async def step() -> object:
            return await service.release_all(**data.whom(), reason=data.reason)

        return await self._once(request, service, "/holds/incident", step)

    @post("/holds/{hold_id:str}/confirm", status_code=303)
    async def confirm(
        self, request: Request[User, str, object], service: HoldService, hold_id: str, data: Annotated[NextForm, FORM]
    ) -> Redirect | Template:
        return await self._once(request, service, data.next, service.confirm, hold_id)

    @post("/holds/{hold_id:str}/decline", status_code=303)
    async def decline(
        self,
        request: Request[User, str, object],
        service: HoldService,
        hold_id: str,
        data: Annotated[DeclineForm, FORM],
    ) -> Redirect | Template:
        return await self._once(request, service, data.next, service.decline, hold_id, data.reason)

    @post("/holds/{hold_id:str}/release", status_code=303)
    async def release(
        self, request: Request[User, str, object], service: HoldService, hold_id: str, data: Annotated[NextForm, FORM]
    ) -> Redirect | Template:
        return await self._once(request, service, data.next, service.release, hold_id)

    @post("/holds/{hold_id:str}/claim", status_code=303)
    async def claim(
        self, request: Request[User, str, object], service: HoldService, hold_id: str, data: Annotated[ClaimForm, FORM]
    ) -> Redirect | Template:
        return await self._once(request, service, data.next, service.claim, hold_id, data.beds_used)


def _kept_refusal(exc: BedsError) -> str:
    """The rule a change of K broke, in the page's language, with its numbers."""
    extra = exc.extra
    if exc.code == "kept_needs_free_beds":
        return _(
            "Only %(free)s bed(s) of this pool are free: keeping more beds needs that many free beds.",
            free=extra.get("free", 0),
        )
    if exc.code == "kept_below_in_use":
        return _(
            "The partner's holds use %(in_use)s kept bed(s) now: the agreement cannot keep fewer until they end.",
            in_use=extra.get("in_use", 0),
        )
    return error_text(exc)


class AgreementPages(Controller):
    """A shelter's standing agreements."""

    dependencies = SERVICE
    guards = [requires_roles(Role.SHELTER_STAFF)]

    @get("/agreements")
    async def agreements(self, request: Request[User, str, object], service: HoldService) -> Template:
        return Template("agreements.html", context=await self._context(request, service))

    @staticmethod
    async def _context(request: Request[User, str, object], service: HoldService, **extra: Any) -> dict:
        agreements = await service.agreements()
        partners = await service.partners()
        return page_context(
            request,
            agreements=agreements,
            partners=partners,
            partner_names={o.id: o.name for o in partners},
            own_pools=await service.own_pools(),
            labels=await service.pools_with_facilities({a.pool_id for a in agreements}),
            **extra,
        )

    @post("/agreements", status_code=303)
    async def create_agreement(
        self, request: Request[User, str, object], service: HoldService, data: Annotated[AgreementForm, FORM]
    ) -> Redirect | Template:
        if not await first_use_of_form(request):
            return Redirect(path="/agreements", status_code=303)
        try:
            await service.create_agreement(
                pool_id=data.pool_id,
                beds=data.beds,
                partner_org_id=data.partner_org_id,
                scope=data.scope,
                note=data.note,
            )
        except BedsError as exc:
            await forget_form_use(request)
            if exc.kind in ("forbidden", "not_found"):
                raise
            # The form again, with what was typed and the message beside it.
            context = await self._context(request, service, error=error_text(exc), typed=msgspec.to_builtins(data))
            return Template("agreements.html", context=context, status_code=KIND_STATUS.get(exc.kind, 422))
        return Redirect(path="/agreements", status_code=303)

    @post("/agreements/{agreement_id:str}/kept", status_code=303)
    async def set_kept(
        self,
        request: Request[User, str, object],
        service: HoldService,
        agreement_id: str,
        data: Annotated[KeptPageForm, FORM],
    ) -> Redirect | Template:
        """Change K. Lowering it asks first (the page comes back with the question, with or without JavaScript);
        the rule's refusals come back beside the agreement's field with what was typed."""
        current = next((a for a in await service.agreements() if a.id == agreement_id), None)
        if current is None:
            raise NotFound("not_found", "No such agreement.")
        text = data.beds.strip()
        beds = int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else None
        if beds is None or beds < 1:
            context = await self._context(
                request,
                service,
                kept_error={
                    "id": agreement_id,
                    "text": _("Type a whole number of beds, 1 or more; end the agreement to keep none."),
                    "typed": data.beds,
                },
            )
            return Template("agreements.html", context=context, status_code=422)
        if current.active and beds < current.beds and data.confirm != "yes":
            context = await self._context(
                request, service, lowering={"id": agreement_id, "beds": beds, "from": current.beds}
            )
            return Template("agreements.html", context=context)
        if not await first_use_of_form(request):
            return Redirect(path="/agreements", status_code=303)
        try:
            await service.set_kept(agreement_id, beds)
        except BedsError as exc:
            await forget_form_use(request)
            if exc.kind in ("forbidden", "not_found"):
                raise
            context = await self._context(
                request, service, kept_error={"id": agreement_id, "text": _kept_refusal(exc), "typed": data.beds}
            )
            return Template("agreements.html", context=context, status_code=KIND_STATUS.get(exc.kind, 422))
        flash(request, ngettext("The agreement now keeps %(num)s bed.", "The agreement now keeps %(num)s beds.", beds))
        return Redirect(path="/agreements", status_code=303)

    @post("/agreements/{agreement_id:str}/end", status_code=303)
    async def end_agreement(
        self, request: Request[User, str, object], service: HoldService, agreement_id: str
    ) -> Redirect | Template:
        if await first_use_of_form(request):
            try:
                await service.end_agreement(agreement_id)
            except BedsError as exc:
                await forget_form_use(request)
                if exc.kind in ("forbidden", "not_found"):
                    raise
                context = await self._context(request, service, error=error_text(exc))
                return Template("agreements.html", context=context, status_code=KIND_STATUS.get(exc.kind, 422))
        return Redirect(path="/agreements", status_code=303)
