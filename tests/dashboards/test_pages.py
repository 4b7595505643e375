"""The pages, through Django's test client on a real PostgreSQL: who may open which page,
403 with a clear message otherwise, and no pupil's name where only aggregates belong. (The
widgets on these pages are exercised in a real browser in tests/browser.)"""

from __future__ import annotations

import datetime as dt

import pytest

from renkei.edudata import rollups
from renkei.edudata.models import AttendanceDay, Enrollment, Homeroom, StudentIdentity
from renkei.tenants.context import in_tenant
from renkei.tenants.models import Prefecture

NAMES = {
    "a1": ("青木", "一郎"),
    "a2": ("青木", "二郎"),
    "b1": ("馬場", "花子"),
    "b2": ("馬場", "次郎"),
}


@pytest.fixture
def pages(school_world, shibuya, make_user):
    w = dict(school_world)
    with in_tenant(shibuya):
        for tag, school in (("a", w["A"]), ("b", w["B"])):
            room = Homeroom.objects.create(school=school, school_year=2025, grade=3, name="3年1組")
            w[f"room_{tag}"] = room
            for n in (1, 2):
                pupil = w[f"{tag}{n}"]
                Enrollment.objects.create(student=pupil, homeroom=room, attendance_number=n)
                family, given = NAMES[f"{tag}{n}"]
                StudentIdentity.objects.create(
                    student=pupil,
                    source_system="c4th",
                    source_id=f"{tag}{n}",
                    family_name=family,
                    given_name=given,
                )
                AttendanceDay.objects.create(
                    student=pupil, date=dt.date(2025, 6, 5), status="present"
                )
        rollups.refresh([2025])
    a_code, b_code = w["A"].code, w["B"].code
    w["teacher"] = make_user("p-teacher", "teacher", municipality=shibuya, schools=[a_code])
    w["board"] = make_user("p-board", "board_analyst", municipality=shibuya)
    w["admin"] = make_user("p-admin", "tenant_admin", municipality=shibuya)
    w["pref"] = make_user("p-pref", "prefecture_analyst", prefecture=Prefecture.for_code("13"))
    w["outsider"] = make_user(
        "p-outsider", "teacher", municipality=w["municipality"], schools=[b_code]
    )
    return w


def _text(response) -> str:
    return response.content.decode()


def _no_names(html: str) -> None:
    for family, given in NAMES.values():
        assert family not in html and given not in html


def test_teacher_home_offers_the_class_board_not_the_analysis(client, pages):
    client.force_login(pages["teacher"])
    html = _text(client.get("/m/131130/"))
    assert "/m/131130/boards/classes/" in html
    assert "/m/131130/analysis/long-term-absence/" not in html
    assert "/m/131130/manage/" not in html


def test_class_list_shows_own_school_homerooms_only(client, pages):
    client.force_login(pages["teacher"])
    r = client.get("/m/131130/boards/classes/?as_of=2025-06-05")
    assert r.status_code == 200
    html = _text(r)
    assert f"/m/131130/boards/classes/{pages['room_a'].pk}/" in html
    assert f"/m/131130/boards/classes/{pages['room_b'].pk}/" not in html


def test_default_as_of_is_the_last_day_with_records(client, pages):
    client.force_login(pages["teacher"])
    html = _text(client.get(f"/m/131130/boards/classes/{pages['room_a'].pk}/"))
    assert 'as-of="2025-06-05"' in html
    assert "記録のある最新の日（2025-06-05）で表示しています" in html  # and says so


def test_unreadable_as_of_says_so(client, pages):
    client.force_login(pages["teacher"])
    r = client.get(f"/m/131130/boards/classes/{pages['room_a'].pk}/?as_of=6月5日")
    assert r.status_code == 200
    assert "日付として読めません" in _text(r)


def test_class_and_student_boards_of_own_school_open(client, pages):
    client.force_login(pages["teacher"])
    r = client.get(f"/m/131130/boards/classes/{pages['room_a'].pk}/")
    assert r.status_code == 200
    assert f'homeroom-id="{pages["room_a"].pk}"' in _text(r)
    r = client.get(f"/m/131130/boards/students/{pages['a1'].pk}/")
    assert r.status_code == 200
    assert f'student-id="{pages["a1"].pk}"' in _text(r)


def test_other_school_is_not_reachable_by_editing_the_url(client, pages):
    client.force_login(pages["teacher"])
    for url in (
        f"/m/131130/boards/classes/{pages['room_b'].pk}/",
        f"/m/131130/boards/students/{pages['b1'].pk}/",
    ):
        r = client.get(url)
        assert r.status_code == 403, url
        html = _text(r)
        assert "所属校の教職員のみ" in html
        _no_names(html)
    # a missing pupil or homeroom gets the same answer as another school's: the URL does not
    # tell whether it exists (the API answers both the same way too)
    for url in ("/m/131130/boards/students/999999/", "/m/131130/boards/classes/999999/"):
        r = client.get(url)
        assert r.status_code == 403 and "所属校の教職員のみ" in _text(r), url


def test_board_analyst_gets_aggregates_and_no_pupil_page(client, pages):
    client.force_login(pages["board"])
    for url in (
        "/m/131130/",
        "/m/131130/analysis/long-term-absence/",
        "/m/131130/analysis/schools/",
        f"/m/131130/analysis/schools/{pages['A'].code}/",
    ):
        r = client.get(url)
        assert r.status_code == 200, url
        _no_names(_text(r))
    html = _text(client.get("/m/131130/analysis/long-term-absence/"))
    assert 'metric="long_term_absence"' in html and "<renkei-chart" in html
    # they may see every school: for them a missing one is simply not found
    assert client.get("/m/131130/analysis/schools/B000000000000/").status_code == 404
    for url in (
        "/m/131130/boards/classes/",
        f"/m/131130/boards/classes/{pages['room_a'].pk}/",
        f"/m/131130/boards/students/{pages['a1'].pk}/",
    ):
        r = client.get(url)
        assert r.status_code == 403, url
        assert "所属校の教員・管理職だけ" in _text(r)


def test_analysis_pages_refuse_teachers_except_own_school_karte(client, pages):
    client.force_login(pages["teacher"])
    assert client.get("/m/131130/analysis/long-term-absence/").status_code == 403
    assert client.get("/m/131130/analysis/schools/").status_code == 403
    assert client.get(f"/m/131130/analysis/schools/{pages['A'].code}/").status_code == 200
    r = client.get(f"/m/131130/analysis/schools/{pages['B'].code}/")
    assert r.status_code == 403 and "この学校の集計を見る権限がありません" in _text(r)
    # a school that does not exist: the same refusal, not a 404 that tells it apart
    r = client.get("/m/131130/analysis/schools/B000000000000/")
    assert r.status_code == 403 and "この学校の集計を見る権限がありません" in _text(r)


def test_other_municipality_and_prefecture_analyst_are_refused(client, pages, shinjuku, make_user):
    stranger = make_user("p-shinjuku", "board_analyst", municipality=shinjuku)
    for user in (stranger, pages["pref"]):
        client.force_login(user)
        for url in (
            "/m/131130/",
            "/m/131130/analysis/long-term-absence/",
            f"/m/131130/boards/students/{pages['a1'].pk}/",
        ):
            r = client.get(url)
            assert r.status_code == 403, (user, url)
            assert "この自治体のデータを見る権限がありません" in _text(r)


def test_signed_out_visitors_go_to_sign_in(client, pages):
    r = client.get(f"/m/131130/boards/students/{pages['a1'].pk}/")
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]


def test_prefecture_page_puts_municipalities_side_by_side_in_code_order(client, pages):
    client.force_login(pages["pref"])
    r = client.get("/prefecture/?metric=long_term_absence&year=2025")
    assert r.status_code == 200
    html = _text(r)
    assert (
        html.index('data-code="131041"')
        < html.index('data-code="131130"')
        < html.index('data-code="__total__"')
    )
    # The fan-out's threads see committed data only (this test's is not): no answer is
    # shown as such. Suppressed cells with real data: tests/browser/test_prefecture_page.py.
    assert "この年度の集計対象データがありません" in html
    _no_names(html)


def test_prefecture_page_is_for_prefecture_analysts(client, pages):
    client.force_login(pages["board"])
    r = client.get("/prefecture/")
    assert r.status_code == 403
    assert "都道府県の分析担当者だけ" in _text(r)


def test_english_is_available(client, pages):
    client.force_login(pages["teacher"])
    client.cookies["django_language"] = "en"
    html = _text(client.get("/m/131130/"))
    assert 'lang="en"' in html
    assert "Class board" in html


def test_refusals_are_explained_in_english_too(client, pages):
    client.force_login(pages["teacher"])
    client.cookies["django_language"] = "en"
    r = client.get(f"/m/131130/boards/students/{pages['b1'].pk}/")
    assert r.status_code == 403
    assert "only staff of the pupil&#x27;s school can" in _text(r)


def test_a_year_without_aggregates_is_named_not_silently_replaced(client, pages):
    client.force_login(pages["board"])
    for asked in ("1999", "２０２５", "abc"):
        r = client.get(f"/m/131130/analysis/long-term-absence/?year={asked}")
        assert r.status_code == 200
        html = _text(r)
        assert f"「{asked}」年度の集計はありません。2025年度で表示しています" in html, asked
        assert 'school-year="2025"' in html
    assert "年度の集計はありません" not in _text(
        client.get("/m/131130/analysis/long-term-absence/?year=2025")
    )


def test_prefecture_page_says_what_it_shows_instead(client, pages):
    client.force_login(pages["pref"])
    html = _text(client.get("/prefecture/?metric=nope&year=1999&breakdown=school"))
    assert "指標「nope」はありません。長期欠席を表示しています" in html
    assert "「1999」年度の集計はありません" in html
    assert "この指標は「school」で内訳できません" in html
    assert 'role="status" class="note"' not in _text(
        client.get("/prefecture/?metric=attendance_rate")
    )


def test_a_missing_page_is_explained_in_japanese(client, pages):
    client.force_login(pages["board"])
    r = client.get("/m/131130/analysis/schools/B000000000000/")
    assert r.status_code == 404
    html = _text(r)
    assert "ページが見つかりません" in html and "学校が見つかりません" in html  # the view's reason
    r = client.get("/m/131130/no-such-page/")
    assert r.status_code == 404
    assert "URL が正しいか確かめてください" in _text(r) and "Resolver404" not in _text(r)


def test_prefecture_rows_are_labelled_in_the_readers_language():
    from renkei.dashboards.prefecture import side_by_side

    result = {
        "dimensions": ["municipality", "grade"],
        "labels": [
            {
                "dimension": "grade",
                "code": "B1-3",
                "label": "小学校 3年",
                "labelEn": "Elementary grade 3",
            },
            {"dimension": "municipality", "code": "131130", "label": "渋谷区", "labelEn": "渋谷区"},
        ],
        "municipalities": [{"code": "131130", "name": "渋谷区"}],
        "cells": [{"key": ["131130", "B1-3"], "value": 1.0}],
    }
    assert side_by_side(result)["rows"][0]["label"] == "小学校 3年"
    assert side_by_side(result, english=True)["rows"][0]["label"] == "Elementary grade 3"


# -- 長期欠席: 不登校 and three school years ---------------------------------------------------


@pytest.fixture
def absences(pages, shibuya):
    """School A's grade 3 gets 38 more pupils in 2024 and 2025: 26 absent 31 days each year,
    classified by the school (12 不登校 as the latest decision, 14 その他), 12 present."""
    from renkei.edudata.models import AbsenceClassification, Student
    from renkei.edudata.privacy import pseudonym_for

    with in_tenant(shibuya):
        for n in range(38):
            pupil = Student.objects.create(
                pseudonym=pseudonym_for(shibuya, "test", f"x{n}"),
                school=pages["A"],
                grade=3,
                birth_year_month="2017-05",
            )
            for year in (2024, 2025):
                first = dt.date(year, 4, 7)
                AttendanceDay.objects.bulk_create(
                    AttendanceDay(
                        student=pupil,
                        date=first + dt.timedelta(days=d),
                        status="absent_other" if n < 26 else "present",
                    )
                    for d in range(31 if n < 26 else 1)
                )
                for at, reason in enumerate(("other", "futoko" if n < 12 else "other")):
                    if n < 26:
                        AbsenceClassification.objects.create(
                            student=pupil,
                            school_year=year,
                            reason=reason,
                            absence_days=31,
                            decided_at=dt.datetime(year, 6, 1 + at, tzinfo=dt.UTC),
                            decided_by="test",
                        )
        rollups.refresh([2024, 2025])
    return pages


def test_long_term_absence_shows_futoko_and_three_years_as_released(client, absences, shibuya):
    from renkei.edudata import metrics

    client.force_login(absences["board"])
    html = _text(client.get("/m/131130/analysis/long-term-absence/?year=2025"))
    # the 不登校 widgets, for the board
    assert 'data-testid="futoko"' in html
    assert 'metric="futoko" school-year="2025" breakdown="grade"' in html
    # three school years side by side, each the released figure the API serves
    table = html[html.index('data-testid="year-over-year"') :]
    assert table.index('data-year="2023"') < table.index('data-year="2024"')
    assert table.index('data-year="2024"') < table.index('data-year="2025"')
    shown = 0
    for metric, codes in (("long_term_absence", {"absence_category": "long_term"}),
                          ("futoko", {})):  # fmt: skip
        row = table[table.index(f'data-metric="{metric}"') :].split("</tr>")[0]
        cells = row.split("<td")[1:]
        assert len(cells) == 3
        assert 'data-state="no-data"' in cells[0]  # 2023: nothing imported
        for year, cell in zip((2024, 2025), cells[1:], strict=True):
            released = metrics.compute(metric, shibuya, school_year=year).cell(**codes)
            assert not released.suppressed, (metric, year)  # 26 and 12 of 38 pupils
            assert f'data-pupils="{released.pupils}"' in cell
            assert f"{released.value:.1f}%" in cell
            shown += 1
    assert shown == 4
    _no_names(html)


def test_futoko_figures_are_not_on_the_page_without_the_municipalitys_board(
    client, absences, shibuya
):
    from renkei.accounts import policy
    from renkei.dashboards.views import year_over_year

    # the page is the board's (a teacher is refused); the 不登校 rows and widgets go with
    # the policy's answer, which a prefecture analyst never gets
    client.force_login(absences["teacher"])
    assert client.get("/m/131130/analysis/long-term-absence/").status_code == 403
    prefecture = policy.principal_for(absences["pref"])
    assert policy.may_see_tenant_aggregates(prefecture, shibuya)
    assert not policy.is_own_board(prefecture, shibuya)
    rows = year_over_year(shibuya, 2025, with_futoko=False)["rows"]
    assert [r["metric"] for r in rows] == ["long_term_absence"]


def test_the_prefecture_page_offers_no_futoko_and_says_why(client, pages):
    client.force_login(pages["pref"])
    r = client.get("/prefecture/?metric=futoko&year=2025")
    assert r.status_code == 200
    html = _text(r)
    assert "指標「不登校」は市区町村の教育委員会と学校だけに公開されます" in html
    assert 'value="futoko"' not in html and 'value="long_term_absence"' in html
