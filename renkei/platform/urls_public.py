"""URLs of the public host (no tenant): landing page, sign-in, admin, health."""

from django.contrib import admin
from django.urls import include, path

from renkei.platform import views

urlpatterns = [
    path("", views.landing, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("renkei.platform.urls_accounts")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("", include("renkei.graphql.federation.urls")),
    path("prefecture/", include("renkei.dashboards.urls_public")),
]
