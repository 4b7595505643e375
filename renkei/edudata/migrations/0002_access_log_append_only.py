"""The access log is append-only in the database itself, not only in Python.

One statement per operation: a Citus coordinator propagates each DDL statement to the worker
holding the schema and refuses several in one (docs/scaling.md)."""

from django.db import migrations

FORBID = [
    """
CREATE OR REPLACE FUNCTION access_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'edudata_accesslog is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
""",
    """
CREATE TRIGGER access_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON edudata_accesslog
    FOR EACH ROW EXECUTE FUNCTION access_log_is_append_only();
""",
    """
CREATE TRIGGER access_log_no_truncate
    BEFORE TRUNCATE ON edudata_accesslog
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_is_append_only();
""",
]
# In the order of FORBID: each undoes its statement (operations are reversed last first).
ALLOW = [
    "DROP FUNCTION IF EXISTS access_log_is_append_only();",
    "DROP TRIGGER IF EXISTS access_log_no_update_or_delete ON edudata_accesslog;",
    "DROP TRIGGER IF EXISTS access_log_no_truncate ON edudata_accesslog;",
]


class Migration(migrations.Migration):
    dependencies = [("edudata", "0001_initial")]
    operations = [
        migrations.RunSQL(forbid, allow) for forbid, allow in zip(FORBID, ALLOW, strict=True)
    ]
