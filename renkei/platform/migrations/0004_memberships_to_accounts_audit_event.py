"""Memberships and API tokens move to renkei.accounts (their tables stay, by name); the
audit trail arrives, append-only in the database itself."""

from django.db import migrations, models

FORBID = [
    """
    CREATE OR REPLACE FUNCTION audit_event_is_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'platform_auditevent is append-only: % is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$
    """,
    """
    CREATE TRIGGER audit_event_no_update_or_delete
        BEFORE UPDATE OR DELETE ON platform_auditevent
        FOR EACH ROW EXECUTE FUNCTION audit_event_is_append_only()
    """,
]
ALLOW = [
    "DROP TRIGGER IF EXISTS audit_event_no_update_or_delete ON platform_auditevent",
    "DROP FUNCTION IF EXISTS audit_event_is_append_only()",
]


class Migration(migrations.Migration):
    dependencies = [("platform", "0003_apitoken_allowed_origins")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ApiToken"),
                migrations.DeleteModel(name="Membership"),
            ],
            database_operations=[],
        ),
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(auto_now_add=True, verbose_name="日時")),
                ("user_id", models.BigIntegerField(blank=True, null=True, verbose_name="利用者ID")),
                ("username", models.CharField(max_length=200, verbose_name="実行者")),
                ("role", models.CharField(blank=True, max_length=100, verbose_name="役割")),
                ("via", models.CharField(max_length=20, verbose_name="経路")),
                ("action", models.CharField(max_length=60, verbose_name="操作")),
                ("municipality_code", models.CharField(blank=True, max_length=6, verbose_name="自治体コード")),
                ("prefecture_code", models.CharField(blank=True, max_length=2, verbose_name="都道府県コード")),
                ("target", models.CharField(blank=True, max_length=200, verbose_name="対象")),
                ("changes", models.JSONField(blank=True, default=dict, verbose_name="変更内容")),
            ],
            options={
                "verbose_name": "監査記録",
                "verbose_name_plural": "監査記録",
                "indexes": [
                    models.Index(fields=["municipality_code", "at"], name="platform_au_municip_000487_idx"),
                    models.Index(fields=["prefecture_code", "at"], name="platform_au_prefect_e3fea9_idx"),
                ],
            },
        ),
        *[migrations.RunSQL(forbid, allow) for forbid, allow in zip(FORBID, reversed(ALLOW))],
    ]
