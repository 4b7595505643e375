"""URLs inside one municipality (``<code>.<domain>/...`` or ``/m/<code>/...``)."""

from django.urls import include, path

from renkei.connectors.api import api as ingest_api
from renkei.dashboards import views as dashboards_views
from renkei.platform.health import healthz

urlpatterns = [
    path("", dashboards_views.tenant_home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("renkei.site.urls_accounts")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("renkei.graphql.tenant.urls")),
    path("", include("renkei.dashboards.urls")),
    path("manage/", include("renkei.dashboards.manage.urls")),
    path("widgets/", include("renkei.graphql.widgets.urls")),
    path("api/v1/", ingest_api.urls),
]

# A database out of reach is a 503 (renkei.platform.errors).
handler500 = "renkei.platform.errors.server_error"
