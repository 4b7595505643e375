"""心の相談 is counted in no figure any more (edudata.codes.SENSITIVE_NURSE_REASONS): forget
the released tables of those visits that an earlier version stored. Nothing asks for them
now; this removes them from the database too."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tenants", "0002_release_engine")]

    operations = [
        migrations.RunSQL(
            "DELETE FROM tenants_release WHERE \"table\" LIKE 'nurse:%%:mental'",
            reverse_sql=migrations.RunSQL.noop,
        )
    ]
