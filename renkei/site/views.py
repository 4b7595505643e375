"""The pages of the site itself: the landing page and the second-factor step-up."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django_otp import login as otp_login

from renkei.accounts import second_factor
from renkei.tenants.models import Municipality


def landing(request: HttpRequest) -> HttpResponse:
    municipalities = Municipality.objects.select_related("prefecture").order_by("code")
    return render(request, "platform/landing.html", {"municipalities": municipalities})


class StepUpForm(forms.Form):
    otp_token = forms.CharField(
        max_length=32,
        error_messages={"required": _("ワンタイムパスワードを入力してください。")},
    )


WRONG_CODE = _(
    "ワンタイムパスワードが違います。認証アプリの最新の 6 桁か、未使用の回復コードを入力してください"
    "（続けて間違えると、しばらく受け付けません）。"
)


@login_required
def verify_second_factor(request: HttpRequest) -> HttpResponse:
    """Step-up: a TOTP code from the user's authenticator, or one of their recovery codes
    (used up), unlocks sensitive items for the rest of the session (django-otp)."""
    device = second_factor.authenticator(request.user)
    form = StepUpForm(request.POST if request.method == "POST" else None)
    if form.is_bound and device is not None and form.is_valid():
        verified = second_factor.verify(request.user, form.cleaned_data["otp_token"])
        if verified is not None:
            otp_login(request, verified)
            next_url = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
                next_url = ""
            return redirect(next_url or "home")
        form.add_error("otp_token", WRONG_CODE)
    return render(request, "platform/verify.html", {"form": form, "device": device})
