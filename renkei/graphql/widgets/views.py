"""The widget frame: a page that shows one widget, for sites that embed with an ``<iframe>``.

The token's secret travels in the URL *fragment* (``#token=…``), which browsers never send
to a server, so it is in no access log; the page's script hands it to the widget. The
server only needs the token's id to answer with ``Content-Security-Policy: frame-ancestors``
listing the token's allowed origins: any other site that frames the page gets a refusal from
the browser.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt

from renkei.accounts.models import ApiToken

WIDGET_ATTRIBUTES = ("metric", "school-year", "breakdown", "school-code", "kind")


@xframe_options_exempt  # frame-ancestors below is the rule (X-Frame-Options cannot list sites)
def widget_frame(request, token_id: int):
    token = (
        ApiToken.objects.live()
        .filter(pk=token_id, kind=ApiToken.Kind.WIDGET, municipality__code=request.tenant.code)
        .first()
    )
    if token is None:
        raise Http404("このウィジェットは無効です（失効したか、期限が切れています）。")
    attributes = {name: request.GET.get(name, "")[:60] for name in WIDGET_ATTRIBUTES}
    response = render(
        request,
        "widgets/frame.html",
        {
            "endpoint": request.build_absolute_uri(reverse("tenant-graphql")),
            "attributes": {k: v for k, v in attributes.items() if v},
        },
    )
    ancestors = " ".join(["'self'", *token.allowed_origins])
    response["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
    response["Referrer-Policy"] = "no-referrer"
    return response
