"""Municipality administration (mounted at ``manage/`` inside a tenant)."""

from django.urls import path

from renkei.dashboards.manage import (
    resumable,
    rights,
    roles,
    school_years,
    settings_views,
    transfer,
    views,
)

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
    path("transfers/", transfer.transfers, name="transfers"),
    path("transfers/in/", transfer.transfer_in, name="transfer_in"),
    path(
        "transfers/<int:transfer_pk>/package/",
        transfer.transfer_package,
        name="transfer_package",
    ),
    path("settings/", settings_views.tenant_settings, name="settings"),
    path("second-factors/", settings_views.second_factors, name="second_factors"),
    path(
        "second-factors/<int:user_id>/reset/",
        settings_views.second_factor_reset,
        name="second_factor_reset",
    ),
    path("rights/", rights.register, name="rights"),
    path("rights/pupils/<int:student_id>/", rights.pupil, name="rights_pupil"),
    path("rights/pupils/<int:student_id>/receive/", rights.receive, name="rights_receive"),
    path("rights/pupils/<int:student_id>/opt-out/", rights.opt_out, name="rights_opt_out"),
    path(
        "rights/pupils/<int:student_id>/opt-out/withdraw/",
        rights.opt_out_withdraw,
        name="rights_opt_out_withdraw",
    ),
    path("rights/pupils/<int:student_id>/correct/", rights.correct, name="rights_correct"),
    path("rights/pupils/<int:student_id>/delete/", rights.delete, name="rights_delete"),
    path("rights/requests/<int:request_id>/", rights.request_detail, name="rights_request"),
    path("rights/requests/<int:request_id>/decline/", rights.decline, name="rights_decline"),
    path(
        "rights/requests/<int:request_id>/disclosure/",
        rights.disclosure_html,
        name="rights_disclosure",
    ),
    path(
        "rights/requests/<int:request_id>/disclosure.json",
        rights.disclosure_json,
        name="rights_disclosure_json",
    ),
    path("school-years/", school_years.school_years, name="school_years"),
    path("members/<int:membership_id>/change/", roles.member_change, name="member_change"),
]
