# When and why a pupil left (卒業・転出・退学) replaces the graduation date alone: every known
# graduation date becomes a leaving by graduation on that day, so retention goes on as before.

from django.db import migrations, models


# SQL, not Python: a new tenant's schema is made by replaying the migrations' SQL
# (renkei.tenants.schema), which a RunPython would prevent.
GRADUATIONS_TO_LEAVINGS = """
UPDATE edudata_student SET left_on = graduation_date, leaving_reason = 'graduated'
WHERE graduation_date IS NOT NULL
"""
# Back to the old field: only graduations had a place there.
LEAVINGS_TO_GRADUATIONS = """
UPDATE edudata_student SET graduation_date = left_on WHERE leaving_reason = 'graduated'
"""


class Migration(migrations.Migration):

    dependencies = [
        ("edudata", "0015_futoko_rollup"),
    ]

    operations = [
        migrations.AddField(
            model_name="student",
            name="leaving_reason",
            field=models.CharField(
                blank=True,
                choices=[("graduated", "卒業"), ("transferred", "転出"), ("withdrew", "退学")],
                max_length=12,
                verbose_name="離籍の理由",
            ),
        ),
        migrations.AddField(
            model_name="student",
            name="left_on",
            field=models.DateField(blank=True, null=True, verbose_name="離籍日"),
        ),
        migrations.RunSQL(GRADUATIONS_TO_LEAVINGS, LEAVINGS_TO_GRADUATIONS),
        migrations.RemoveIndex(
            model_name="student",
            name="edudata_stu_graduat_d93839_idx",
        ),
        migrations.RemoveField(
            model_name="student",
            name="graduation_date",
        ),
        migrations.AddIndex(
            model_name="student",
            index=models.Index(fields=["left_on"], name="edudata_stu_left_on_cb698d_idx"),
        ),
        migrations.AddConstraint(
            model_name="student",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("leaving_reason", ""), ("left_on__isnull", True)),
                    models.Q(
                        ("left_on__isnull", False),
                        models.Q(("leaving_reason", ""), _negated=True),
                    ),
                    _connector="OR",
                ),
                name="student_left_with_a_reason",
            ),
        ),
    ]
