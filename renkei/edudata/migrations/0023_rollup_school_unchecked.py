# The rollups' school: no foreign-key constraint and no index. A refresh writes every rollup
# row from a join with edudata_school in the same statement, and no code deletes a school, so
# the constraint only re-checked what the join had just read: at COMMIT, one query per row
# (after a year's attendance import, about 100,000 rows: half a second of it). Every reader of
# a rollup filters by school_year, never by school alone. The pupil's constraint stays: it
# is what keeps a refresh and a purge of the same pupil from leaving that pupil's rows behind.
#
# SQL only, naming what Django created, for the reason 0021 gives.

import django.db.models.deletion
from django.db import migrations, models

# (model, the foreign key's constraint, its index)
ROLLUPS = [
    (
        "assessmentbin",
        "edudata_assessmentbin_school_id_7924b0d8_fk_edudata_school_id",
        "edudata_assessmentbin_school_id_7924b0d8",
    ),
    (
        "attendancepupilmonth",
        "edudata_attendancepu_school_id_47a66532_fk_edudata_s",
        "edudata_attendancepupilmonth_school_id_47a66532",
    ),
    (
        "attendancepupilyear",
        "edudata_attendancepu_school_id_7388984d_fk_edudata_s",
        "edudata_attendancepupilyear_school_id_7388984d",
    ),
    (
        "learningpupilmonth",
        "edudata_learningpupi_school_id_7f420a90_fk_edudata_s",
        "edudata_learningpupilmonth_school_id_7f420a90",
    ),
    (
        "m365appmonth",
        "edudata_m365appmonth_school_id_00e6cf6a_fk_edudata_school_id",
        "edudata_m365appmonth_school_id_00e6cf6a",
    ),
    (
        "nursevisitmonth",
        "edudata_nursevisitmonth_school_id_4d639923_fk_edudata_school_id",
        "edudata_nursevisitmonth_school_id_4d639923",
    ),
]


class Migration(migrations.Migration):
    dependencies = [
        ("edudata", "0022_rollup_tables_pupil_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name=model,
                    name="school",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="edudata.school",
                        verbose_name="学校",
                    ),
                )
            ],
            database_operations=[
                migrations.RunSQL(
                    [
                        f'ALTER TABLE "edudata_{model}" DROP CONSTRAINT "{constraint}"',
                        f'DROP INDEX "{index}"',
                    ],
                    reverse_sql=[
                        f'CREATE INDEX "{index}" ON "edudata_{model}" ("school_id")',
                        f'ALTER TABLE "edudata_{model}" ADD CONSTRAINT "{constraint}" '
                        f'FOREIGN KEY ("school_id") REFERENCES "edudata_school" ("id") '
                        f"DEFERRABLE INITIALLY DEFERRED",
                    ],
                )
            ],
        )
        for model, constraint, index in ROLLUPS
    ]
