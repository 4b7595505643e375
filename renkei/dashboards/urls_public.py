"""The prefecture's pages (public host: prefecture analysts are not inside a municipality)."""

from django.urls import path

from renkei.dashboards import prefecture

urlpatterns = [
    path("", prefecture.prefecture_home, name="prefecture_home"),
    path("token/", prefecture.analyst_token, name="prefecture_token"),
    path("audit/", prefecture.audit_trail, name="prefecture_audit"),
    path("audit.csv", prefecture.audit_trail_csv, name="prefecture_audit_csv"),
]
