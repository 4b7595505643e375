"""Routes each request to one tenant schema, or to the public schema, or to a clear 404.

Two forms name a tenant: the subdomain (``131130.localhost``, looked up in ``Domain``) and
the path prefix for local use (``/m/131130/...``). A request that names no known tenant
never falls through to the public schema's pages.
"""

from __future__ import annotations

import os
import re

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import set_script_prefix, set_urlconf

from renkei.platform.health import healthz
from renkei.tenants.codes import CodeError, validate_municipality_code
from renkei.tenants.models import Domain, Municipality

PATH_PREFIX = re.compile(r"^/m/(?P<code>[^/]*)(?P<rest>/.*)?$")


def _public_hosts() -> set[str]:
    default = f"{settings.BASE_DOMAIN},localhost,127.0.0.1,testserver"
    return set(os.environ.get("RENKEI_PUBLIC_HOSTS", default).split(","))


class TenantRoutingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.public_hosts = _public_hosts()

    def __call__(self, request):
        if request.path_info == "/healthz":
            # Load balancers probe with the task's IP as Host: answer before host checks and
            # tenant routing, and touch nothing but the database connection.
            return healthz(request)
        connection.set_schema_to_public()
        set_script_prefix(self._script_name(request) + "/")
        try:
            response = self._route(request)
            return response if response is not None else self.get_response(request)
        finally:
            connection.set_schema_to_public()

    def _route(self, request):
        match = PATH_PREFIX.match(request.path_info)
        if match:
            return self._route_path(request, match["code"], match["rest"] or "/")
        hostname = request.get_host().split(":")[0].lower()
        if hostname in self.public_hosts:
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
            set_urlconf(request.urlconf)
            return None
        domain = Domain.objects.select_related("tenant__prefecture").filter(domain=hostname).first()
        if domain is None:
            return _not_found(request, f"「{hostname}」に対応する自治体は登録されていません。")
        self._enter(request, domain.tenant)
        return None

    def _route_path(self, request, code: str, rest: str):
        try:
            validate_municipality_code(code)
        except CodeError as e:
            return _not_found(request, str(e))
        tenant = Municipality.objects.select_related("prefecture").filter(code=code).first()
        if tenant is None:
            return _not_found(request, f"自治体コード {code} の自治体は登録されていません。")
        request.path_info = rest
        set_script_prefix(f"{self._script_name(request)}/m/{code}/")
        self._enter(request, tenant)
        return None

    @staticmethod
    def _script_name(request) -> str:
        return request.META.get("SCRIPT_NAME", "").rstrip("/")

    @staticmethod
    def _enter(request, tenant: Municipality) -> None:
        request.tenant = tenant
        connection.set_tenant(tenant)
        request.urlconf = settings.ROOT_URLCONF
        set_urlconf(request.urlconf)


def _not_found(request, reason: str):
    request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
    if request.path_info.rstrip("/").endswith("/graphql"):
        # An API client reads errors in the GraphQL shape, like every other refusal there.
        return JsonResponse(
            {"errors": [{"message": reason, "extensions": {"code": "NOT_FOUND"}}]},
            status=404,
            json_dumps_params={"ensure_ascii": False},
        )
    return render(request, "tenants/not_found.html", {"reason": reason}, status=404)
