"""Admin API for CSV imports: upload a file (it runs in the background), watch its progress,
resume one that stopped. The same rules as ``livedesk import`` (``integrations/imports.py``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from aiohttp import BodyPartReader, web
from aiohttp_pydantic.oas.typing import r200, r201, r401, r403, r404, r413, r422
from pydantic import BaseModel, Field

from livedesk.identity import guarded, require_staff
from livedesk.integrations import imports
from livedesk.integrations.schemas import ImportOut
from livedesk.kit.background import BACKGROUND
from livedesk.kit.context import DB, SETTINGS
from livedesk.kit.errors import PayloadTooLarge, ValidationFailed
from livedesk.kit.http import ErrorResponse, model_json
from livedesk.models import Role
from livedesk.models.integrations import ImportJob

ADMIN = Role.ADMIN
TASK = "livedesk-import"


def import_out(job: ImportJob) -> ImportOut:
    return ImportOut(
        id=job.id,
        kind=job.kind,
        filename=job.filename,
        status=job.status.value,
        total_rows=job.total_rows,
        processed_rows=imports.rows_done(job),
        ok_rows=job.ok_rows,
        error_rows=job.error_rows,
        errors=job.errors,
        message=job.message,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


async def _read_body(request: web.Request) -> tuple[bytes, str | None, str | None]:
    """The uploaded file, its name and the ``encoding`` form field if one came before it. A
    multipart upload (field ``file``) is streamed with its own limit, since a bulk load is
    bigger than any API call; a raw ``text/csv`` body is bounded by the request body limit."""
    if not request.content_type.startswith("multipart/"):
        return await request.read(), None, None
    reader = await request.multipart()
    encoding: str | None = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "encoding":
            encoding = (await part.read_chunk(64)).decode("ascii", errors="replace").strip()
            continue
        if part.name != "file":
            continue
        chunks: list[bytes] = []
        size = 0
        while chunk := await part.read_chunk(64 * 1024):
            size += len(chunk)
            if size > imports.MAX_FILE_BYTES:
                raise PayloadTooLarge(f"The file is larger than {imports.MAX_FILE_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks), part.filename, encoding
    raise ValidationFailed("The multipart body has no field named 'file'", code="no_file")


def _start(app: web.Application, job_id: uuid.UUID) -> None:
    async def run() -> None:
        await imports.run_job(app[DB], app[SETTINGS].data_dir, job_id)

    app[BACKGROUND].spawn(run(), name=f"{TASK}-{job_id}")


@guarded(ADMIN)
async def upload_import(
    request: web.Request,
    kind: Literal["customers", "orders", "events"],
    filename: Annotated[str, Field(max_length=300)] = "upload.csv",
    encoding: Annotated[
        str | None,
        Field(
            max_length=20,
            description=(
                "utf-8, cp932 (shift_jis), utf-16, utf-16-le, utf-16-be, euc-jp or auto (default: "
                "BOM, else UTF-8, else CP932). A multipart upload may send it as a field before 'file'."
            ),
        ),
    ] = None,
) -> (
    r201[ImportOut]
    | r200[ImportOut]
    | r401[ErrorResponse]
    | r403[ErrorResponse]
    | r413[ErrorResponse]
    | r422[ErrorResponse]
):
    """Upload a CSV file (multipart field "file", or the raw file as a text/csv body up to
    the request body limit) and import it in the background. The same file again resumes
    its unfinished import (200) instead of starting another. Watch progress with GET /api/v1/imports/{id}.

    Tags: imports
    """
    staff = await require_staff(request, ADMIN)
    raw, sent_name, form_encoding = await _read_body(request)
    job, created = await imports.create_job(
        request.app[DB],
        request.app[SETTINGS].data_dir,
        kind,
        raw,
        sent_name or filename,
        actor_staff_id=staff.staff_id,
        encoding=form_encoding or encoding,
    )
    if request.app[BACKGROUND].pending(f"{TASK}-{job.id}") == 0:
        _start(request.app, job.id)
    return model_json(import_out(job), status=201 if created else 200)


class ImportList(BaseModel):
    imports: list[ImportOut]


@guarded(ADMIN)
async def list_imports(request: web.Request) -> r200[ImportList] | r401[ErrorResponse] | r403[ErrorResponse]:
    """The latest imports with their progress.

    Tags: imports
    """
    await require_staff(request, ADMIN)
    async with request.app[DB].read() as session:
        out = ImportList(imports=[import_out(j) for j in await imports.list_jobs(session)])
    return model_json(out)


@guarded(ADMIN)
async def get_import(
    request: web.Request, import_id: uuid.UUID, /
) -> r200[ImportOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """One import's progress and the rows it refused (by line).

    Tags: imports
    """
    await require_staff(request, ADMIN)
    async with request.app[DB].read() as session:
        out = import_out(await imports.get_job(session, import_id))
    return model_json(out)


@guarded(ADMIN)
async def resume_import(
    request: web.Request, import_id: uuid.UUID, /
) -> r200[ImportOut] | r401[ErrorResponse] | r403[ErrorResponse] | r404[ErrorResponse]:
    """Go on with an import that stopped (a restart): from the first row not yet committed.

    Tags: imports
    """
    await require_staff(request, ADMIN)
    async with request.app[DB].read() as session:
        job = await imports.get_job(session, import_id)
    if request.app[BACKGROUND].pending(f"{TASK}-{job.id}") == 0:
        _start(request.app, job.id)
    return model_json(import_out(job))


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/imports", upload_import)
    app.router.add_get("/api/v1/imports", list_imports)
    app.router.add_get("/api/v1/imports/{import_id}", get_import)
    app.router.add_post("/api/v1/imports/{import_id}/resume", resume_import)
