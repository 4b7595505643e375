import datetime as dt
import threading

import pytest
from concurrency_support import someone_waits_on_an_advisory_lock
from django.db import DatabaseError, connection, transaction

from renkei.accounts import policy
from renkei.edudata.models import AccessLog, AttendanceDay, OptOut, Student
from renkei.edudata.privacy import (
    OptOutError,
    do_purge_expired,
    do_record_opt_out,
    do_withdraw_opt_out,
    pseudonym_for,
)
from renkei.platform.audit import Actor
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

TEST_ACTOR = Actor.system("test")


@pytest.fixture
def admin(make_user, shibuya):
    return policy.principal_for(make_user("admin-s", "tenant_admin", municipality=shibuya))


def test_opted_out_pupils_leave_every_aggregate_and_come_back_on_withdrawal(
    admin, school_world, shibuya
):
    pupil = school_world["a1"]
    with in_tenant(shibuya):
        assert Student.objects.analyzable().filter(pk=pupil.pk).exists()
        do_record_opt_out(admin, shibuya, pupil)
        assert not Student.objects.analyzable().filter(pk=pupil.pk).exists()
        assert Student.objects.analyzable().count() == Student.objects.count() - 1
        # The school's records stay.
        assert Student.objects.filter(pk=pupil.pk).exists()
        with pytest.raises(OptOutError):
            do_record_opt_out(admin, shibuya, pupil)
        do_withdraw_opt_out(admin, shibuya, pupil)
        assert Student.objects.analyzable().filter(pk=pupil.pk).exists()
        opt_out = OptOut.objects.get(student=pupil)
        assert opt_out.withdrawn_at is not None
        with pytest.raises(OptOutError):
            do_withdraw_opt_out(admin, shibuya, pupil)


def test_only_admins_and_the_pupils_school_record_opt_outs(make_user, school_world, shibuya):
    other_teacher = policy.principal_for(
        make_user("teacher-b", "teacher", municipality=shibuya, schools=[school_world["B"].code])
    )
    board = policy.principal_for(make_user("board", "board_analyst", municipality=shibuya))
    with in_tenant(shibuya):
        for principal in (other_teacher, board):
            with pytest.raises(policy.AccessDenied):
                do_record_opt_out(principal, shibuya, school_world["a1"])
        assert Student.objects.get(pk=school_world["a1"].pk).opted_out_at is None


def test_retention_purge_dry_run_changes_nothing_and_real_run_removes_exactly_expired(
    school_world, shibuya
):
    today = dt.date(2026, 11, 22)
    with in_tenant(shibuya):
        recent = Student.objects.create(
            pseudonym=pseudonym_for(shibuya, "test", "recent"),
            school=school_world["A"],
            grade=6,
            left_on=dt.date(2022, 3, 20),
            leaving_reason="transferred",
        )
        for student in (school_world["old"], recent, school_world["a1"]):
            AttendanceDay.objects.create(
                student=student, date=dt.date(2014, 6, 2), status="present"
            )
        AccessLog.objects.create(
            user_id=1,
            username="t",
            what="board",
            via="test",
            student_pseudonym=school_world["old"].pseudonym,
        )
        before = (Student.objects.count(), AttendanceDay.objects.count())

        version = _data_version(shibuya)
        dry = do_purge_expired(shibuya, today, actor=TEST_ACTOR, dry_run=True)
        assert dry.cutoff == dt.date(2021, 11, 22)
        assert dry.deleted == {"edudata.Student": 1, "edudata.AttendanceDay": 1}
        assert (Student.objects.count(), AttendanceDay.objects.count()) == before
        assert _data_version(shibuya) == version  # nothing changed, nothing released anew

        real = do_purge_expired(shibuya, today, actor=TEST_ACTOR)
        assert real.deleted == {"edudata.Student": 1, "edudata.AttendanceDay": 1}
        # the prefecture's releases are made anew: no figure keeps the purged pupil
        assert _data_version(shibuya) != version
        assert not Student.objects.filter(pk=school_world["old"].pk).exists()
        assert Student.objects.filter(pk=recent.pk).exists()
        assert Student.objects.count() == before[0] - 1
        assert AttendanceDay.objects.count() == before[1] - 1
        assert AccessLog.objects.count() == 1  # the log outlives the purge


def _data_version(municipality):
    from renkei.tenants.models import Municipality

    return Municipality.objects.values_list("data_version", flat=True).get(pk=municipality.pk)


def test_retention_follows_the_tenant_setting(school_world, shibuya):
    shibuya.retention_years = 20
    shibuya.save()
    with in_tenant(shibuya):
        assert do_purge_expired(shibuya, dt.date(2026, 11, 22), actor=TEST_ACTOR).deleted == {}


def test_purge_log_names_no_pupil(school_world, shibuya, caplog):
    with in_tenant(shibuya), caplog.at_level("INFO"):
        do_purge_expired(shibuya, dt.date(2026, 11, 22), actor=TEST_ACTOR)
    assert "retention purge" in caplog.text
    assert school_world["old"].pseudonym not in caplog.text


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE edudata_accesslog SET username = 'someone else'",
        "DELETE FROM edudata_accesslog",
        "TRUNCATE edudata_accesslog",
    ],
)
def test_access_log_is_append_only_in_sql(shibuya, statement):
    with in_tenant(shibuya):
        AccessLog.objects.create(
            user_id=1, username="t", what="board", via="test", student_pseudonym="0" * 32
        )
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
        assert AccessLog.objects.get().username == "t"


def test_pseudonyms_are_keyed_per_tenant(shibuya, shinjuku):
    same_source = ("c4th", "12345")
    a, b = pseudonym_for(shibuya, *same_source), pseudonym_for(shinjuku, *same_source)
    assert a != b and len(a) == 32
    assert pseudonym_for(shibuya, *same_source) == a
    assert pseudonym_for(shibuya, "oneroster", "12345") != a


def test_tenant_key_is_not_stored_in_the_tenant_schema(shibuya):
    from renkei.platform.keys import _decrypt

    raw_key = _decrypt(shibuya.pseudonym_key).hex()
    with connection.cursor() as c:
        c.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'm131130' AND data_type IN ('text', 'character varying')"
        )
        text_columns = c.fetchall()
    assert raw_key not in shibuya.pseudonym_key
    # Nothing in the tenant schema is shaped to hold it, and it is encrypted where it is.
    assert not [c for c in text_columns if "key" in c[1]]


def test_a_purge_waits_for_the_running_import_of_its_tenant_whoever_calls_it(shibuya):
    # given an import of 渋谷区 holds the tenant's write lock (its own connection)
    from renkei.tenants.context import tenant_write_session

    holding, release = threading.Event(), threading.Event()
    done: list = []

    def import_running():
        try:
            with in_tenant(shibuya.code), tenant_write_session(shibuya.schema_name):
                holding.set()
                release.wait(60)
        finally:
            connection.close()

    def purge():  # what `renkei purge --dry-run` calls, on a connection of its own
        try:
            with in_tenant(shibuya.code):
                done.append(do_purge_expired(shibuya, actor=TEST_ACTOR, dry_run=True))
        finally:
            connection.close()

    importer = threading.Thread(target=import_running)
    importer.start()
    assert holding.wait(30)
    purger = threading.Thread(target=purge)
    purger.start()
    # then the purge waits on that lock, and has done nothing
    assert someone_waits_on_an_advisory_lock(), "the purge did not wait for the import"
    assert done == []
    # and it runs once the import ends
    release.set()
    importer.join(30)
    purger.join(30)
    assert len(done) == 1 and done[0].dry_run
