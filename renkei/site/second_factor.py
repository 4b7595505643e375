"""The account page where each user enrols their own authenticator app (QR code, or the
secret typed in), confirms it with a code, and receives one-time recovery codes, shown once.
The rules (who may replace what) are in :mod:`renkei.accounts.second_factor`."""

from __future__ import annotations

import base64

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from renkei.accounts import policy
from renkei.accounts import second_factor as sf

TEMPLATE = "platform/second_factor.html"


def _where(request: HttpRequest) -> tuple:
    """The actor, and the municipality whose trail records the change (the one the page was
    opened in; none on the public site)."""
    tenant = getattr(request, "tenant", None)
    principal = policy.principal_for(request)
    return principal.actor(tenant), tenant.code if tenant is not None else ""


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # pages that show a secret or recovery codes
    return response


def qr_svg(text: str) -> str:
    """``text`` as an inline SVG QR code (white background, so phones read it on any theme)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathFillImage, border=4)
    return image.to_string(encoding="unicode")


def _secret_groups(device) -> str:
    """The secret as an authenticator app asks for it when typed in: base32, in fours."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@login_required
def account(request: HttpRequest) -> HttpResponse:
    return _page(request)


def _page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    user = request.user
    step_up = user.is_verified()
    # A pending enrolment's secret only to a session that may confirm it.
    pending = sf.pending_authenticator(user) if sf.may_replace(user, step_up=step_up) else None
    context = {
        "device": sf.authenticator(user),
        "pending": pending,
        "codes_left": sf.recovery_codes_left(user),
        "step_up": step_up,
        "verify_href": f"{reverse('verify')}?next={reverse('second_factor')}",
        "error": error,
    }
    if pending is not None:
        context["qr"] = mark_safe(qr_svg(pending.config_url))  # noqa: S308 - our own SVG
        context["secret"] = _secret_groups(pending)
    return _no_store(render(request, TEMPLATE, context, status=status))


@login_required
@require_POST
def start(request: HttpRequest) -> HttpResponse:
    actor, municipality_code = _where(request)
    try:
        sf.do_start_enrolment(
            request.user,
            actor=actor,
            step_up=request.user.is_verified(),
            municipality_code=municipality_code,
        )
    except sf.SecondFactorError as e:
        return _page(request, error=str(e), status=403)
    return redirect("second_factor")


@login_required
@require_POST
def confirm(request: HttpRequest) -> HttpResponse:
    actor, municipality_code = _where(request)
    try:
        device, codes = sf.do_confirm_enrolment(
            request.user,
            request.POST.get("otp_token", ""),
            actor=actor,
            step_up=request.user.is_verified(),
            municipality_code=municipality_code,
        )
    except sf.SecondFactorError as e:
        return _page(request, error=str(e), status=400)
    otp_login(request, device)  # the code just entered is a step-up with the new device
    messages.success(request, _("認証アプリを登録しました。"))
    return _codes_page(request, codes)


@login_required
@require_POST
def renew_codes(request: HttpRequest) -> HttpResponse:
    actor, municipality_code = _where(request)
    try:
        codes = sf.do_renew_recovery_codes(
            request.user,
            actor=actor,
            step_up=request.user.is_verified(),
            municipality_code=municipality_code,
        )
    except sf.SecondFactorError as e:
        return _page(request, error=str(e), status=403)
    messages.success(request, _("回復コードを作り直しました。前の回復コードは使えません。"))
    return _codes_page(request, codes)


def _codes_page(request: HttpRequest, codes: list[str]) -> HttpResponse:
    """Rendered on the POST's own response, never redirected to: no page shows the codes
    again."""
    return _no_store(
        render(request, "platform/recovery_codes.html", {"codes": [sf.shown(c) for c in codes]})
    )
