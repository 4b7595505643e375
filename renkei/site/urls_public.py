"""URLs of the public host (no tenant): landing page, sign-in, admin, health."""

from django.contrib import admin
from django.urls import include, path

from renkei.connectors.api import openapi_json as ingest_openapi_json
from renkei.platform.health import healthz
from renkei.site import views

urlpatterns = [
    path("", views.landing, name="home"),
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("renkei.site.urls_accounts")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("", include("renkei.graphql.federation.urls")),
    path("prefecture/", include("renkei.dashboards.urls_public")),
    path("api/v1/openapi.json", ingest_openapi_json, name="ingest-openapi"),
]

# A database out of reach is a 503 (renkei.platform.errors).
handler500 = "renkei.platform.errors.server_error"
