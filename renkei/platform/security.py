"""Response headers every page gets unless its view set its own."""

from __future__ import annotations


class FrameAncestorsMiddleware:
    """``frame-ancestors 'none'`` by default: no other site may frame our pages. The widget
    frame sets its own policy, listing the origins its token allows."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = "frame-ancestors 'none'"
        return response
