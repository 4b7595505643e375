"""For each role, what it may and may not see."""

import pytest

from renkei.accounts import policy
from renkei.edudata import access
from renkei.edudata.models import AccessLog, AttendanceDay, NurseVisit, Student, SurveyResponse
from renkei.tenants.context import in_tenant
from renkei.tenants.models import Prefecture

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_user, school_world, shibuya, shinjuku):
    return {
        "teacher_a": make_user(
            "teacher-a", "teacher", municipality=shibuya, schools=[school_world["A"].code]
        ),
        "manager_b": make_user(
            "manager-b", "school_manager", municipality=shibuya, schools=[school_world["B"].code]
        ),
        "board": make_user("board", "board_analyst", municipality=shibuya),
        "admin": make_user("admin-s", "tenant_admin", municipality=shibuya),
        "pref_tokyo": make_user(
            "pref-13", "prefecture_analyst", prefecture=Prefecture.for_code("13")
        ),
        "pref_osaka": make_user(
            "pref-27", "prefecture_analyst", prefecture=Prefecture.for_code("27")
        ),
        "shinjuku_teacher": make_user(
            "teacher-shinjuku", "teacher", municipality=shinjuku, schools=[school_world["A"].code]
        ),
        "nobody": make_user("nobody"),
    }


def visible(user, municipality):
    with in_tenant(municipality):
        return set(
            access.visible_students(policy.principal_for(user), municipality).values_list(
                "pseudonym", flat=True
            )
        )


def test_teacher_sees_only_own_school(people, school_world, shibuya):
    seen = visible(people["teacher_a"], shibuya)
    assert school_world["a1"].pseudonym in seen
    assert school_world["b1"].pseudonym not in seen
    assert {
        s.pseudonym for s in (school_world["a1"], school_world["a2"], school_world["old"])
    } == seen


def test_teacher_cannot_read_pupil_of_another_school_in_same_tenant(people, school_world, shibuya):
    principal = policy.principal_for(people["teacher_a"])
    with in_tenant(shibuya):
        with pytest.raises(policy.AccessDenied, match="所属校"):
            access.read_pupil(principal, shibuya, school_world["b1"].pk, what="board", via="test")
        assert not AccessLog.objects.filter(student_pseudonym=school_world["b1"].pseudonym).exists()


def test_school_membership_does_not_carry_to_another_tenant(people, school_world, shibuya):
    # Same 学校コード in the membership, but the membership is for 新宿区.
    assert visible(people["shinjuku_teacher"], shibuya) == set()


@pytest.mark.parametrize("who", ["board", "admin", "pref_tokyo", "pref_osaka", "nobody"])
def test_non_school_roles_see_no_pupil(people, shibuya, school_world, who):
    assert visible(people[who], shibuya) == set()
    principal = policy.principal_for(people[who])
    with in_tenant(shibuya), pytest.raises(policy.AccessDenied):
        access.read_pupil(principal, shibuya, school_world["a1"].pk, what="board", via="test")


def test_aggregate_permissions(people, shibuya, osaka, school_world):
    p = {k: policy.principal_for(u) for k, u in people.items()}
    a, b = school_world["A"].code, school_world["B"].code
    assert policy.may_see_tenant_aggregates(p["board"], shibuya)
    assert policy.may_see_tenant_aggregates(p["admin"], shibuya)
    assert policy.may_see_tenant_aggregates(p["pref_tokyo"], shibuya)
    assert not policy.may_see_tenant_aggregates(p["pref_osaka"], shibuya)
    assert policy.may_see_tenant_aggregates(p["pref_osaka"], osaka)
    assert not policy.may_see_tenant_aggregates(p["teacher_a"], shibuya)
    assert policy.may_see_school_aggregates(p["teacher_a"], shibuya, a)
    assert not policy.may_see_school_aggregates(p["teacher_a"], shibuya, b)
    assert policy.may_see_school_aggregates(p["board"], shibuya, b)
    assert not policy.may_see_school_aggregates(p["pref_tokyo"], shibuya, a)


def test_prefecture_analyst_never_enters_a_tenant(people, shibuya):
    assert not policy.may_enter_tenant(policy.principal_for(people["pref_tokyo"]), shibuya)
    assert policy.may_enter_tenant(policy.principal_for(people["board"]), shibuya)


def test_visible_students_refuses_outside_the_tenant_schema(people, shibuya, shinjuku):
    principal = policy.principal_for(people["teacher_a"])
    with pytest.raises(policy.AccessDenied):
        access.visible_students(principal, shibuya)  # still in public
    with in_tenant(shinjuku), pytest.raises(policy.AccessDenied):
        access.visible_students(principal, shibuya)  # in the wrong tenant


def test_read_is_access_logged(people, school_world, shibuya):
    principal = policy.principal_for(people["teacher_a"])
    with in_tenant(shibuya):
        student = access.read_pupil(
            principal, shibuya, school_world["a1"].pk, what="student_board", via="test"
        )
        assert student == school_world["a1"]
        row = AccessLog.objects.get(student_pseudonym=student.pseudonym)
    assert (row.user_id, row.username, row.what, row.via, row.sensitive) == (
        people["teacher_a"].pk,
        "teacher-a",
        "student_board",
        "test",
        False,
    )


def test_sensitive_items_need_step_up(people, school_world, shibuya):
    without = policy.principal_for(people["teacher_a"], step_up=False)
    with_2fa = policy.principal_for(people["teacher_a"], step_up=True)
    with in_tenant(shibuya):
        with pytest.raises(policy.StepUpRequired):
            access.read_pupil(
                without, shibuya, school_world["a1"].pk, what="survey", via="t", sensitive=True
            )
        access.read_pupil(
            with_2fa, shibuya, school_world["a1"].pk, what="survey", via="t", sensitive=True
        )
        assert AccessLog.objects.filter(sensitive=True).count() == 1
    with pytest.raises(policy.StepUpRequired):
        policy.check_fields(without, AttendanceDay, ["date", "status", "reason"])
    policy.check_fields(without, AttendanceDay, ["date", "status"])
    policy.check_fields(with_2fa, AttendanceDay, ["reason"])
    assert "reason" not in policy.readable_fields(without, AttendanceDay)
    assert "note" not in policy.readable_fields(without, NurseVisit)
    assert policy.readable_fields(without, SurveyResponse) == []
    assert "answers" in policy.readable_fields(with_2fa, SurveyResponse)
    assert "status" in policy.readable_fields(without, AttendanceDay)


def test_step_up_comes_from_a_verified_totp_device(client, people, shibuya):
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = people["teacher_a"]
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)
    home = client.get("/m/131130/")
    assert "二要素認証で本人確認" in home.content.decode()
    # The page asks the user's own device: the form posts the code only.
    wrong = client.post("/m/131130/accounts/verify/", {"otp_token": "000000"})
    assert wrong.status_code == 200  # form redisplayed, not verified
    assert "ワンタイムパスワードが違います" in wrong.content.decode()
    device.refresh_from_db()
    device.throttle_reset()  # django-otp throttles after a failure; that is not under test
    token = f"{totp(device.bin_key):06d}"
    ok = client.post("/m/131130/accounts/verify/?next=https://evil.example/", {"otp_token": token})
    assert ok.status_code == 302
    assert "evil.example" not in ok["Location"]  # no open redirect after the second factor
    home = client.get("/m/131130/")
    assert "二要素認証で本人確認" not in home.content.decode()


def test_students_table_holds_no_names(db):
    names = {f.name for f in Student._meta.concrete_fields}
    assert not names & {
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "source_id",
        "principal_name",
    }
