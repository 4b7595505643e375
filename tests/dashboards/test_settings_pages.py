"""管理 › 自治体の設定: a tenant admin past step-up changes the alert thresholds, the retention
and k (raise only, after a confirmation that says what it changes); bad input is refused with
a clear message and nothing changes."""

from __future__ import annotations

import pytest

from renkei.platform.models import AuditEvent
from renkei.tenants.models import Municipality, Release

pytestmark = pytest.mark.django_db

SETTINGS = "/m/131130/manage/settings/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin(make_user, shibuya):
    return make_user("admin-settings", "tenant_admin", municipality=shibuya)


@pytest.fixture
def client_(admin, verified_client):
    return verified_client(admin)


def current(**overrides) -> dict[str, int]:
    municipality = Municipality.objects.get(code="131130")
    values = {
        name: getattr(municipality, name)
        for name in (
            "alert_consecutive_absence_days",
            "alert_monthly_absence_days",
            "alert_yearly_absence_days",
            "retention_years",
            "min_cell_size",
        )
    }
    return {**values, **overrides}


def shibuya_now() -> Municipality:
    return Municipality.objects.get(code="131130")


def settings_events():
    return AuditEvent.objects.filter(action="municipality.settings", municipality_code="131130")


def test_only_a_tenant_admin_past_step_up_reaches_the_settings(
    admin, make_user, shibuya, client, verified_client
):
    teacher = make_user("teacher-settings", "teacher", municipality=shibuya, schools=["X"])
    assert verified_client(teacher).get(SETTINGS).status_code == 403
    client.force_login(admin)
    to_verify = client.post(SETTINGS, current(alert_consecutive_absence_days=5))
    assert to_verify.status_code == 302
    assert to_verify["Location"].endswith("/accounts/verify/?next=/m/131130/manage/settings/")
    assert shibuya_now().alert_consecutive_absence_days == 3
    index = verified_client(admin).get("/m/131130/manage/").content.decode()
    assert SETTINGS in index and "/m/131130/manage/second-factors/" in index


def test_alert_thresholds_change_at_once_with_the_change_in_the_trail(client_):
    page = client_.get(SETTINGS).content.decode()
    assert 'name="retention_years"' in page and 'value="10"' in page
    response = client_.post(
        SETTINGS, current(alert_consecutive_absence_days=5, alert_yearly_absence_days=25)
    )
    assert response.status_code == 302
    municipality = shibuya_now()
    assert municipality.alert_consecutive_absence_days == 5
    assert municipality.alert_yearly_absence_days == 25
    event = settings_events().get()
    assert event.username == "admin-settings" and event.via == "web"
    assert event.changes == {
        "alert_consecutive_absence_days": {"before": 3, "after": 5},
        "alert_yearly_absence_days": {"before": 30, "after": 25},
    }
    # Nothing changed: nothing recorded.
    client_.post(SETTINGS, current())
    assert settings_events().count() == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("min_cell_size", 9, "k は引き上げのみ可能です。現在の k は 10 なので、10 以上"),
        ("retention_years", 0, "保存年数は 1 年以上にしてください"),
        ("retention_years", -2, "保存年数は 1 年以上にしてください"),
        ("alert_monthly_absence_days", 0, "1 日以上を指定してください"),
        ("alert_monthly_absence_days", 40, "31 日以下を指定してください"),
        ("min_cell_size", "十五", "k を半角数字で入力してください"),
    ],
)
def test_bad_input_is_refused_clearly_and_nothing_changes(client_, field, value, message):
    before = current()
    response = client_.post(SETTINGS, current(alert_consecutive_absence_days=7, **{field: value}))
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert f'id="id_{field}_error"' in page  # said beside the field it concerns
    assert current() == before  # the valid change beside it is not half-written either
    assert not settings_events().exists()


def test_lowering_k_is_refused_after_it_was_raised(client_, shibuya):
    shibuya.min_cell_size = 15
    shibuya.save()
    response = client_.post(SETTINGS, current(min_cell_size=12, confirmed="1"))
    assert response.status_code == 400
    assert "現在の k は 15 なので、15 以上" in response.content.decode()
    assert shibuya_now().min_cell_size == 15


def _release(table: str, released: dict[str, int]) -> None:
    """A stored release of 東京都 with one dimension, the area (prefecture > municipality >
    school), as the release engine stores it."""
    leaves = sorted(k for k in released if ":" in k)
    Release.objects.create(
        prefecture_id="13",
        table=table,
        school_year=2025,
        version="v-" + table,
        cells={
            "dims": [["area", leaves, {leaf: leaf.split(":")[0] for leaf in leaves}]],
            "released": released,
            "measures": {},
        },
        primary_cells=0,
        withheld_cells=0,
        total_cells=len(released),
    )


def test_raising_k_asks_first_and_says_what_it_withholds(client_, shinjuku):
    _release(
        "population",
        {
            "131130": 40,
            "131130:1": 12,
            "131130:2": 28,
            "131130:3": 0,
            "131041": 14,
            "__total__": 54,
        },
    )
    _release("month:2025-04", {"131130": 13, "131130:1": 13})

    # when: k 10 -> 15 is asked for
    asked = client_.post(SETTINGS, current(min_cell_size=15))

    # then: nothing changed yet; the page says what the change does, in numbers
    assert asked.status_code == 200
    assert shibuya_now().min_cell_size == 10 and not settings_events().exists()
    page = asked.content.decode()
    assert "k を 10 から 15 に引き上げると" in page
    assert "一度上げると、下げることはできません" in page
    assert "東京都の公開表は、東京都内の自治体で最も大きい k で秘匿します" in page
    assert "公開表はすべて k = 15（現在 10）で計算し直され" in page
    # 6 released cells of 渋谷区 in 2 tables; 12, 13 and 13 are below 15 (0 is structural,
    # 新宿区's 14 is another municipality's).
    assert (
        "いま公開されている表 2 件にあるこの自治体（と各学校）のセル 6 個のうち、公開値が 15 未満の 3 個"
        in page
    )
    assert 'name="confirmed"' in page

    # when: confirmed
    done = client_.post(SETTINGS, current(min_cell_size=15, confirmed="1"))
    assert done.status_code == 302
    assert shibuya_now().min_cell_size == 15
    assert settings_events().get().changes == {"min_cell_size": {"before": 10, "after": 15}}

    # A k below another municipality's of the prefecture changes no threshold: said so.
    shinjuku.min_cell_size = 30
    shinjuku.save()
    page = client_.post(SETTINGS, current(min_cell_size=20)).content.decode()
    assert "すでに東京都内で最も大きい k = 30 で秘匿しているため、秘匿の基準は変わりません" in page


def test_a_shorter_retention_asks_first(client_):
    asked = client_.post(SETTINGS, current(retention_years=3))
    assert asked.status_code == 200
    assert "保存年数を 5 年から 3 年に短くすると" in asked.content.decode()
    # and with no stored release, k's confirmation says so rather than "0 of 0 cells"
    page = client_.post(SETTINGS, current(min_cell_size=12)).content.decode()
    assert (
        "いま保存されている公開表はありません。次に集計が求められたときから、k = 12 で秘匿します"
        in page
    )
    assert shibuya_now().retention_years == 5
    assert client_.post(SETTINGS, current(retention_years=3, confirmed="1")).status_code == 302
    assert shibuya_now().retention_years == 3
    # A longer retention deletes nothing: no question asked.
    assert client_.post(SETTINGS, current(retention_years=7)).status_code == 302
    assert shibuya_now().retention_years == 7
    assert settings_events().count() == 2
