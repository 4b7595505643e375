"""Staff notes and support records (共有配慮事項, 日常所見, 支援記録): written and read only by
staff of the pupil's school after step-up, every read logged, every write an audited action
whose event holds no text; the class board's 新着 shows what is new or due; and nothing of
it reaches any aggregate or API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from source_support import PACKAGE, names_used

from renkei.accounts import policy
from renkei.edudata import notes
from renkei.edudata.models import (
    AccessLog,
    Enrollment,
    Homeroom,
    StaffNote,
    SupportAction,
    SupportCase,
)
from renkei.platform.models import AuditEvent
from renkei.tenants.context import in_tenant

pytestmark = pytest.mark.django_db

SECRET = "卵アレルギー（エピペン所持）"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(school_world, make_user):
    municipality = school_world["municipality"]
    school_world["teacher_a"] = make_user(
        "t-a", "teacher", municipality=municipality, schools=[school_world["A"].code]
    )
    school_world["teacher_b"] = make_user(
        "t-b", "teacher", municipality=municipality, schools=[school_world["B"].code]
    )
    school_world["admin"] = make_user("adm", "tenant_admin", municipality=municipality)
    return school_world


def as_(world, who: str, step_up: bool = True):
    return policy.principal_for(world[who], step_up=step_up)


def test_staff_write_and_read_and_the_trail_holds_no_text(world):
    m, a1 = world["municipality"], world["a1"]
    with in_tenant(m):
        notes.do_add_staff_note(as_(world, "teacher_a"), m, a1.pk, "consideration", SECRET)
        notes.do_add_staff_note(as_(world, "teacher_a"), m, a1.pk, "observation", "元気がない")
        case = notes.do_open_support_case(
            as_(world, "teacher_a"), m, a1.pk, "欠席が続く", dt.date(2026, 12, 10)
        )
        notes.do_add_support_action(
            as_(world, "teacher_a"),
            m,
            case.pk,
            done_on=dt.date(2026, 12, 1),
            done_by="担任",
            text="家庭訪問",
            follow_up_on=dt.date(2026, 12, 15),
        )
        records = notes.pupil_records(as_(world, "teacher_a"), m, a1.pk)
        assert [n.kind for n in records.notes] == ["consideration", "observation"]
        (case,) = records.cases
        assert case.follow_up_on == dt.date(2026, 12, 15) and case.status == "open"
        assert [s.text for s in case.actions.all()] == ["家庭訪問"]
        logged = AccessLog.objects.filter(what="staff_notes")
        assert logged.count() == 5 and all(log.sensitive for log in logged)  # 4 writes + 1 read
    events = AuditEvent.objects.filter(action__in=["note.add", "support.open", "support.action"])
    assert events.count() == 4
    for event in events:
        assert SECRET not in str(event.changes) and "家庭訪問" not in str(event.changes)
        assert event.target == f"pupil {a1.pseudonym}"


@pytest.mark.parametrize(
    ("who", "step_up", "refusal"),
    [
        ("teacher_b", True, policy.AccessDenied),  # a teacher of another school
        ("admin", True, policy.AccessDenied),  # the municipality's admin is no school staff
        ("teacher_a", False, policy.StepUpRequired),
    ],
)
def test_nobody_else_writes_or_reads_them(world, who, step_up, refusal):
    m, a1 = world["municipality"], world["a1"]
    with in_tenant(m):
        notes.do_add_staff_note(as_(world, "teacher_a"), m, a1.pk, "consideration", SECRET)
        case = notes.do_open_support_case(as_(world, "teacher_a"), m, a1.pk, "欠席が続く")
        principal = as_(world, who, step_up)
        for attempt in (
            lambda: notes.do_add_staff_note(principal, m, a1.pk, "observation", "x"),
            lambda: notes.do_open_support_case(principal, m, a1.pk, "x"),
            lambda: notes.do_add_support_action(
                principal, m, case.pk, done_on=dt.date(2026, 12, 1), done_by="x", text="x"
            ),
            lambda: notes.pupil_records(principal, m, a1.pk),
        ):
            with pytest.raises(refusal):
                attempt()
        assert StaffNote.objects.count() == 1 and not SupportAction.objects.exists()


def test_bad_records_are_refused_with_why(world):
    m, a1 = world["municipality"], world["a1"]
    teacher = as_(world, "teacher_a")
    with in_tenant(m):
        with pytest.raises(notes.NoteError, match="空では保存できません"):
            notes.do_add_staff_note(teacher, m, a1.pk, "observation", "   ")
        with pytest.raises(notes.NoteError, match="4000 文字まで"):
            notes.do_add_staff_note(teacher, m, a1.pk, "observation", "あ" * 4001)
        with pytest.raises(notes.NoteError, match="種類「diagnosis」はありません"):
            notes.do_add_staff_note(teacher, m, a1.pk, "diagnosis", "x")
        case = notes.do_open_support_case(teacher, m, a1.pk, "欠席が続く")
        tomorrow = timezone.localdate() + dt.timedelta(days=1)
        with pytest.raises(notes.NoteError, match="未来の日付"):
            notes.do_add_support_action(
                teacher, m, case.pk, done_on=tomorrow, done_by="担任", text="x"
            )
        notes.do_add_support_action(
            teacher, m, case.pk, done_on=timezone.localdate(), done_by="担任", text="x", close=True
        )
        with pytest.raises(notes.NoteError, match="終結しています"):
            notes.do_add_support_action(
                teacher, m, case.pk, done_on=timezone.localdate(), done_by="担任", text="y"
            )
        with pytest.raises(policy.AccessDenied):  # a case that does not exist
            notes.do_add_support_action(
                teacher, m, 999_999, done_on=timezone.localdate(), done_by="担任", text="y"
            )
        assert not StaffNote.objects.exists()
        assert SupportAction.objects.count() == 1
        assert SupportCase.objects.get().status == "closed"


def test_the_class_board_news_shows_new_notes_and_follow_ups_due(world):
    m, a1, a2 = world["municipality"], world["a1"], world["a2"]
    teacher = as_(world, "teacher_a")
    today = timezone.localdate()
    with in_tenant(m):
        notes.do_add_staff_note(teacher, m, a1.pk, "observation", "元気がない")
        old = notes.do_add_staff_note(teacher, m, a2.pk, "observation", "前の週")
        StaffNote.objects.filter(pk=old.pk).update(
            written_at=timezone.now() - dt.timedelta(days=notes.NEWS_DAYS + 1)
        )
        notes.do_open_support_case(teacher, m, a2.pk, "忘れ物", today + dt.timedelta(days=2))
        notes.do_open_support_case(teacher, m, a2.pk, "先の話", today + dt.timedelta(days=30))
        news = notes.news(teacher, m, [world["a1"], world["a2"]], today)
        assert [n.student_id for n in news.notes] == [a1.pk]
        assert [c.concern for c in news.due] == ["忘れ物"]
        with pytest.raises(policy.StepUpRequired):
            notes.news(as_(world, "teacher_a", step_up=False), m, [a1], today)
        # a teacher of another school sees nothing of these pupils
        other = notes.news(as_(world, "teacher_b"), m, [a1, a2], today)
        assert other.notes == [] and other.due == []


def test_the_boards_show_them_after_step_up_and_write_through_the_forms(world, verified_client):
    m, a1 = world["municipality"], world["a1"]
    board = f"/m/131130/boards/students/{a1.pk}/"
    plain = Client()
    plain.force_login(world["teacher_a"])
    with in_tenant(m):
        notes.do_add_staff_note(as_(world, "teacher_a"), m, a1.pk, "consideration", SECRET)
        homeroom = Homeroom.objects.create(
            school=world["A"], school_year=2026, grade=3, name="3年1組"
        )
        Enrollment.objects.create(student=a1, homeroom=homeroom)
    page = plain.get(board).content.decode()
    assert SECRET not in page and "二要素認証で本人確認する" in page
    client = verified_client(world["teacher_a"])
    assert SECRET in client.get(board).content.decode()
    response = client.post(f"{board}notes/", {"kind": "observation", "text": "給食を残した"})
    assert response.status_code == 302 and response["Location"] == f"{board}#records"
    page = client.get(board).content.decode()
    assert "記録しました" in page and "給食を残した" in page
    news = client.get(f"/m/131130/boards/classes/{homeroom.pk}/").content.decode()
    assert "日常所見" in news and f"/boards/students/{a1.pk}/#records" in news
    assert "給食を残した" not in news  # 新着 names what is new; the text stays on the board
    # the other school's teacher, stepped up, can post nothing about this pupil
    other = verified_client(world["teacher_b"])
    assert other.post(f"{board}notes/", {"kind": "observation", "text": "x"}).status_code == 403
    with in_tenant(m):
        assert StaffNote.objects.count() == 2


def test_no_aggregate_api_or_export_code_touches_them():
    """The records are read only through renkei.edudata.notes (and written by its actions):
    no rollup, metric, API, widget, federation or export module names their models."""
    models = {"StaffNote", "SupportCase", "SupportAction", "staff_notes", "support_cases"}
    allowed = {
        PACKAGE / "edudata" / "models.py",
        PACKAGE / "edudata" / "notes.py",
        PACKAGE / "dashboards" / "notes.py",
        PACKAGE / "demo" / "seed.py",  # writes the demo's examples through the actions
    }
    found = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path not in allowed and "migrations" not in path.parts and names_used(path) & models
    ]
    assert found == []


def test_they_go_with_the_pupil_at_the_end_of_retention(world):
    from renkei.edudata.privacy import do_purge_expired
    from renkei.platform.audit import Actor

    m, old = world["municipality"], world["old"]
    with in_tenant(m):
        notes.do_add_staff_note(as_(world, "teacher_a"), m, old.pk, "consideration", SECRET)
        case = notes.do_open_support_case(as_(world, "teacher_a"), m, old.pk, "欠席が続く")
        notes.do_add_support_action(
            as_(world, "teacher_a"),
            m,
            case.pk,
            done_on=timezone.localdate(),
            done_by="担任",
            text="面談",
        )
        report = do_purge_expired(m, actor=Actor.system("test"))
        assert report.deleted["edudata.StaffNote"] == 1
        assert report.deleted["edudata.SupportAction"] == 1
        assert not StaffNote.objects.exists() and not SupportCase.objects.exists()


def test_open_cases_come_before_closed_ones_on_the_board(world):
    m, a1 = world["municipality"], world["a1"]
    teacher = as_(world, "teacher_a")
    with in_tenant(m):
        closed = notes.do_open_support_case(teacher, m, a1.pk, "前の件")
        notes.do_add_support_action(
            teacher,
            m,
            closed.pk,
            done_on=timezone.localdate(),
            done_by="担任",
            text="x",
            close=True,
        )
        notes.do_open_support_case(teacher, m, a1.pk, "今の件")
        cases = notes.pupil_records(teacher, m, a1.pk).cases
    assert [(c.concern, c.status) for c in cases] == [("今の件", "open"), ("前の件", "closed")]
