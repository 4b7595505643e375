from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from renkei.platform import policy


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database answers, 503 otherwise (used by the container HEALTHCHECK)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means unhealthy
        return JsonResponse({"status": "unavailable", "database": "down"}, status=503)
    return JsonResponse({"status": "ok", "database": "up"})


def landing(request: HttpRequest) -> HttpResponse:
    from renkei.tenants.models import Municipality  # composition root: may look at tenants

    municipalities = Municipality.objects.select_related("prefecture").order_by("code")
    return render(request, "platform/landing.html", {"municipalities": municipalities})


@login_required
def tenant_home(request: HttpRequest) -> HttpResponse:
    principal = policy.principal_for(request)
    if not policy.may_enter_tenant(principal, request.tenant):
        raise PermissionDenied(policy.FORBIDDEN_TENANT)
    return render(request, "platform/tenant_home.html", {
        "municipality": request.tenant,
        "roles": [m.get_role_display() for m in principal.memberships_in(request.tenant)],
    })
