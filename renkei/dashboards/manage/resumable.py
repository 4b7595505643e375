"""The tus endpoint of 管理 › 取り込み (the protocol's rules: renkei/connectors/resumable.py).

    POST   imports/uploads/         Upload-Length, Upload-Metadata: filename … → 201 Location
    HEAD   imports/uploads/<id>     → Upload-Offset (how much arrived)
    PATCH  imports/uploads/<id>     Upload-Offset, application/offset+octet-stream → 204
    DELETE imports/uploads/<id>     → 204

Tenant admins only, each seeing only their own uploads, and CSRF-checked like any form
(tus-js-client sends the token as ``X-CSRFToken``)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.utils.http import http_date
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from renkei.connectors import resumable
from renkei.connectors.resumable import ResumableError
from renkei.dashboards.manage.views import admin_view

VERSION = "1.0.0"


def _response(status: int, message: str = "", **headers) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["Tus-Resumable"] = VERSION
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = str(value)
    return response


def _protocol(view):
    """Version check, and a refusal as a status with a message that says why."""

    def wrapped(request, *args, **kwargs):
        if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != VERSION:
            return _response(412, _("Tus-Resumable: 1.0.0 が必要です。"), Tus_Version=VERSION)
        try:
            return view(request, *args, **kwargs)
        except ResumableError as e:
            return _response(e.status, str(e))

    return wrapped


def _number(request, header: str) -> int:
    try:
        value = int(request.headers.get(header, ""))
    except ValueError:
        value = -1
    if value < 0:
        raise ResumableError(
            400, _("%(header)s は 0 以上の整数で指定してください。") % {"header": header}
        )
    return value


@require_http_methods(["OPTIONS", "POST"])
@admin_view
@_protocol
def uploads(request):
    if request.method == "OPTIONS":
        return _response(
            204,
            Tus_Version=VERSION,
            Tus_Extension="creation,termination,expiration",
            Tus_Max_Size=settings.RENKEI_UPLOAD_MAX_BYTES,
        )
    metadata = resumable.parse_metadata(request.headers.get("Upload-Metadata", ""))
    name = metadata.get("filename", "").strip()
    if not name:
        raise ResumableError(400, _("Upload-Metadata に filename がありません。"))
    upload = resumable.create(
        request.tenant.code, request.user.pk, name[:255], _number(request, "Upload-Length")
    )
    return _response(
        201,
        Location=request.build_absolute_uri(upload.id),
        Upload_Expires=http_date(upload.expires_at),
    )


@require_http_methods(["HEAD", "PATCH", "DELETE"])
@admin_view
@_protocol
def upload(request, upload_id: str):
    found = resumable.find(request.tenant.code, upload_id, request.user.pk)
    if request.method == "DELETE":
        resumable.delete(found)
        return _response(204)
    if request.method == "PATCH":
        if request.content_type != "application/offset+octet-stream":
            raise ResumableError(415, _("Content-Type は application/offset+octet-stream です。"))
        offset = resumable.append(found, _number(request, "Upload-Offset"), request)
        return _response(204, Upload_Offset=offset, Upload_Expires=http_date(found.expires_at))
    return _response(
        200,
        Upload_Offset=found.offset,
        Upload_Length=found.length,
        Upload_Expires=http_date(found.expires_at),
    )
