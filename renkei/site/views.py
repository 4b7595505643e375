"""The pages of the site itself: the landing page and the second-factor step-up."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.forms import OTPTokenForm

from renkei.tenants.models import Municipality


def landing(request: HttpRequest) -> HttpResponse:
    municipalities = Municipality.objects.select_related("prefecture").order_by("code")
    return render(request, "platform/landing.html", {"municipalities": municipalities})


class SecondFactorForm(OTPTokenForm):
    otp_error_messages = dict(
        OTPTokenForm.otp_error_messages,
        token_required=_("ワンタイムパスワードを入力してください。"),
        invalid_token=_(
            "ワンタイムパスワードが違います。認証アプリの最新の 6 桁を入力してください。"
        ),
    )


@login_required
def verify_second_factor(request: HttpRequest) -> HttpResponse:
    """Step-up: a TOTP code from the user's authenticator unlocks sensitive items for the
    rest of the session (django-otp). The user's (first confirmed) device is the one asked."""
    device = next(devices_for_user(request.user, confirmed=True), None)
    data = None
    if request.method == "POST":
        data = request.POST.copy()
        data["otp_device"] = device.persistent_id if device else ""
    form = SecondFactorForm(request.user, request, data=data)
    if data is not None and device is not None and form.is_valid():
        otp_login(request, request.user.otp_device)
        next_url = request.GET.get("next", "")
        if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
            next_url = ""
        return redirect(next_url or "home")
    return render(request, "platform/verify.html", {"form": form, "device": device})
