"""The network admin's directory page: upload an HSDS package (dry run first), see what changed and what did not fit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template

from beds.directory import PackageInvalid
from exchange.accounts.models import Role
from exchange.interop.service import SERVICE, InteropService
from exchange.web.auth import requires_roles
from exchange.web.nav import page_context

# A directory of thousands of services is a few megabytes of JSON; a zip of its tables far less.
UPLOAD_MAX_BYTES = 64 * 1024 * 1024


@dataclass
class ImportForm:
    package: UploadFile
    dry_run: str = ""


class DirectoryPages(Controller):
    path = "/admin/directory"
    guards = [requires_roles(Role.NETWORK_ADMIN)]
    dependencies = SERVICE

    @get("/")
    async def page(self, request: Request) -> Template:
        return Template("admin_directory.html", context=page_context(request, report=None, errors=None))

    @post("/import", status_code=200, request_max_body_size=UPLOAD_MAX_BYTES)
    async def upload(
        self,
        request: Request,
        service: InteropService,
        data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Template:
        name = data.package.filename or "package.json"
        content = await data.package.read()
        dry_run = bool(data.dry_run)
        template = "admin_directory.html" if not request.htmx else "fragments/directory_report.html"
        try:
            report = await service.import_package({name: content}, dry_run=dry_run)
        except PackageInvalid as invalid:
            context = page_context(request, report=None, errors=invalid.errors, file_name=name)
            # htmx swaps only successful answers (app.js): the list of errors is this form's answer, not a failure.
            return Template(template, context=context, status_code=200 if request.htmx else 422)
        return Template(template, context=page_context(request, report=report, errors=None, file_name=name))

    @get("/package.zip", media_type="application/zip")
    async def package(self, service: InteropService) -> Response[bytes]:
        return Response(
            await service.package(),
            media_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="refuge-exchange-hsds.zip"'},
        )
