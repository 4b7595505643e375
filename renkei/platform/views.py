from __future__ import annotations

from django.apps import apps
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django_otp import login as otp_login
from django_otp.forms import OTPTokenForm

from renkei.platform import policy


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database answers, 503 otherwise (used by the container HEALTHCHECK)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any failure means unhealthy
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
    school_model = apps.get_model("edudata", "School")
    if policy.may_see_tenant_aggregates(principal, request.tenant):
        schools = school_model.objects.all()
    else:
        schools = school_model.objects.filter(code__in=principal.school_codes_in(request.tenant))
    return render(request, "platform/tenant_home.html", {
        "municipality": request.tenant,
        "roles": [m.get_role_display() for m in principal.memberships_in(request.tenant)],
        "schools": schools.order_by("code"),
        "step_up": principal.step_up,
    })


@login_required
def verify_second_factor(request: HttpRequest) -> HttpResponse:
    """Step-up: a TOTP code from the user's authenticator unlocks sensitive items for the
    rest of the session (django-otp)."""
    form = OTPTokenForm(request.user, request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        otp_login(request, request.user.otp_device)
        return redirect(request.GET.get("next") or "home")
    return render(request, "platform/verify.html", {"form": form})
