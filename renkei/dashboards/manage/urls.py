"""Municipality administration (mounted at ``manage/`` inside a tenant)."""

from django.urls import path

from renkei.dashboards.manage import resumable, roles, views

app_name = "manage"

urlpatterns = [
    path("", views.index, name="index"),
    path("imports/", views.imports, name="imports"),
    path("imports/new/", views.import_new, name="import_new"),
    path("imports/uploads/", resumable.uploads, name="uploads"),
    path("imports/uploads/<str:upload_id>", resumable.upload, name="upload"),
    path("imports/<int:run_id>/", views.import_detail, name="import_detail"),
    path("imports/<int:run_id>/status.json", views.import_status, name="import_status"),
    path("imports/<int:run_id>/cancel/", views.import_cancel, name="import_cancel"),
    path("imports/<int:run_id>/errors.csv", views.import_errors_csv, name="import_errors_csv"),
    path("connectors/", views.connectors, name="connectors"),
    path("connectors/<str:name>/", views.connector_edit, name="connector_edit"),
    path("connectors/<str:name>/check/", views.connector_check, name="connector_check"),
    path("opt-outs/", views.opt_outs, name="opt_outs"),
    path("opt-outs/<int:opt_out_id>/withdraw/", views.opt_out_withdraw, name="opt_out_withdraw"),
    path("access-log/", views.access_log, name="access_log"),
    path("access-log.csv", views.access_log_csv, name="access_log_csv"),
    path("audit/", views.audit_trail, name="audit_trail"),
    path("audit.csv", views.audit_trail_csv, name="audit_trail_csv"),
    path("ingest-tokens/", views.ingest_tokens, name="ingest_tokens"),
    path(
        "ingest-tokens/<int:token_id>/revoke/",
        views.ingest_token_revoke,
        name="ingest_token_revoke",
    ),
    path("widgets/", views.widgets, name="widgets"),
    path("widgets/<int:token_id>/revoke/", views.widget_revoke, name="widget_revoke"),
    path("members/", views.members, name="members"),
    path("members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path("members/<int:membership_id>/change/", roles.member_change, name="member_change"),
]
