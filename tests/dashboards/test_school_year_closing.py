"""年度の締め in 管理: a tenant admin closes an ended school year, after confirming; others
cannot; the page says what closing does and lists what was closed."""

from __future__ import annotations

import datetime as dt

import pytest

from renkei.edudata import rollups
from renkei.edudata.models import AttendanceDay, FrozenCounts
from renkei.platform.models import AuditEvent
from renkei.tenants.context import in_tenant
from renkei.tenants.models import ClosedSchoolYear

PAGE = "/m/131130/manage/school-years/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def year_2025(school_world, shibuya):
    """Attendance of 2025年度 in 渋谷区, in the rollups."""
    with in_tenant(shibuya):
        for key in ("a1", "a2", "b1"):
            AttendanceDay.objects.create(
                student=school_world[key], date=dt.date(2025, 6, 2), status="present"
            )
        rollups.refresh([2025])
    return 2025


def test_an_admin_closes_an_ended_year_after_confirming(client, make_user, shibuya, year_2025):
    client.force_login(make_user("close-admin", "tenant_admin", municipality=shibuya))
    # the page offers the year, with the day it would close by itself
    html = client.get(PAGE).content.decode()
    assert "2025年度を締める" in html and "2026-10-01" in html
    assert "締めた年度の公開値は変わりません" in html or "公開値は変わりません" in html
    # without the confirmation nothing is closed, and the page says why
    html = client.post(PAGE, {"school_year": "2025"}, follow=True).content.decode()
    assert "確認の欄にチェックを入れてから" in html
    assert not ClosedSchoolYear.objects.filter(municipality=shibuya).exists()
    # confirmed: closed, its counts kept, audited, listed as closed and no longer offered
    html = client.post(PAGE, {"school_year": "2025", "confirm": "yes"}, follow=True)
    html = html.content.decode()
    assert "2025年度を締めました" in html
    closing = ClosedSchoolYear.objects.get(municipality=shibuya, school_year=2025)
    assert not closing.automatic
    with in_tenant(shibuya):
        assert FrozenCounts.objects.filter(school_year=2025, family="population").exists()
    event = AuditEvent.objects.get(action="schoolyear.close")
    assert (event.username, event.municipality_code, event.target) == (
        "close-admin",
        "131130",
        "2025年度",
    )
    assert 'data-testid="closed-years"' in html and "2025年度を締める" not in html
    # closing it again is refused with a message
    html = client.post(PAGE, {"school_year": "2025", "confirm": "yes"}, follow=True)
    assert "既に締めています" in html.content.decode()


def test_a_year_not_over_cannot_be_closed(client, make_user, shibuya, year_2025):
    client.force_login(make_user("close-admin", "tenant_admin", municipality=shibuya))
    html = client.post(PAGE, {"school_year": "2099", "confirm": "yes"}, follow=True)
    assert "2099年度はまだ終わっていません" in html.content.decode()
    html = client.post(PAGE, {"school_year": "二〇二五", "confirm": "yes"}, follow=True)
    assert "西暦の数字で" in html.content.decode()
    assert not ClosedSchoolYear.objects.exists()


@pytest.mark.parametrize("role", ["board_analyst", "teacher"])
def test_only_the_tenant_admin_may_close(client, make_user, shibuya, school_world, year_2025, role):
    schools = [school_world["A"].code] if role == "teacher" else []
    user = make_user(f"close-{role}", role, municipality=shibuya, schools=schools)
    client.force_login(user)
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, {"school_year": "2025", "confirm": "yes"}).status_code == 403
    assert not ClosedSchoolYear.objects.exists()
