# The pupil's own index on each table the import fills goes: the natural key's unique index
# leads with the pupil and serves the same lookups, and every imported row wrote both.
#
# SQL only (tenant schemas replay migration SQL, renkei/tenants/schema.py). AlterField alone
# would find the index to drop by looking at the database, which the replay's scratch schema
# does not have (it would drop nothing there); so the state changes by AlterField and the
# database by naming each index Django created for the field.

import django.db.models.deletion
from django.db import migrations, models

# (model, related_name, the index Django created for the foreign key)
IMPORTED = [
    ("assessmentresult", "assessments", "edudata_assessmentresult_student_id_cbbaa482"),
    ("attendanceday", "attendance", "edudata_attendanceday_student_id_9e2c93f1"),
    ("healthobservation", "health", "edudata_healthobservation_student_id_4a405505"),
    ("learningactivity", "activities", "edudata_learningactivity_student_id_7e7cb654"),
    ("m365dailyusage", "m365_usage", "edudata_m365dailyusage_student_id_5f8fbfdc"),
    ("nursevisit", "nurse_visits", "edudata_nursevisit_student_id_93a419d7"),
    ("subjectevaluation", "evaluations", "edudata_subjectevaluation_student_id_ac995e74"),
    ("surveyresponse", "surveys", "edudata_surveyresponse_student_id_a118fd8c"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("edudata", "0020_pupil_assignments"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name=model,
                    name="student",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name=related_name,
                        to="edudata.student",
                    ),
                )
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX "{index}"',
                    reverse_sql=f'CREATE INDEX "{index}" ON "edudata_{model}" ("student_id")',
                )
            ],
        )
        for model, related_name, index in IMPORTED
    ]
