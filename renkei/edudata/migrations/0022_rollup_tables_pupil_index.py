# As 0021 for the tables the import fills, now for the rollups it refreshes: the pupil's own
# index goes, as the natural key's unique index leads with the pupil. A refresh after a big
# import writes about 100,000 rollup rows, each one index fewer. SQL only, for the reason
# 0021 gives.

import django.db.models.deletion
from django.db import migrations, models

# (model, the index Django created for the foreign key)
ROLLUPS = [
    ("attendancepupilmonth", "edudata_attendancepupilmonth_student_id_7b879e56"),
    ("attendancepupilyear", "edudata_attendancepupilyear_student_id_1ab8fa4f"),
    ("learningpupilmonth", "edudata_learningpupilmonth_student_id_e6d237b8"),
    ("longabsencereasonyear", "edudata_longabsencereasonyear_student_id_cf992f5e"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("edudata", "0021_imported_tables_pupil_index"),
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
                        related_name="+",
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
        for model, index in ROLLUPS
    ]
