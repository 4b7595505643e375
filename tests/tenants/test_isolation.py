"""Rows written in one tenant are invisible from another: through the ORM, the tenant helper
and HTTP routing. Unknown tenants are a 404, never public-schema data."""

import pytest
from django.db import connection

from renkei.edudata.models import School
from renkei.tenants.codes import CodeError
from renkei.tenants.context import UnknownTenant, in_tenant

pytestmark = pytest.mark.django_db

SECRET_SCHOOL = "渋谷区立秘密小学校"


@pytest.fixture
def shibuya_school(shibuya):
    with in_tenant(shibuya):
        return School.objects.create(code="B113211309995", name=SECRET_SCHOOL, school_type="B1")


def test_orm_sees_only_the_current_tenant(shibuya_school, shinjuku, shibuya):
    with in_tenant(shinjuku):
        assert not School.objects.filter(name=SECRET_SCHOOL).exists()
        assert School.objects.count() == 0
    with in_tenant(shibuya):
        assert School.objects.filter(name=SECRET_SCHOOL).count() == 1


def test_public_schema_has_no_tenant_tables(shibuya_school):
    with connection.cursor() as c:
        c.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename LIKE 'edudata_%'"
        )
        assert c.fetchone()[0] == 0


def test_helper_restores_previous_schema_even_on_error(shibuya, shinjuku):
    with in_tenant(shibuya):
        with pytest.raises(ZeroDivisionError), in_tenant(shinjuku):
            assert connection.schema_name == "m131041"
            1 / 0
        assert connection.schema_name == "m131130"
    assert connection.schema_name == "public"


def test_helper_refuses_unknown_and_malformed_codes(db):
    with pytest.raises(UnknownTenant, match="401307"), in_tenant("401307"):
        pass
    with pytest.raises(CodeError), in_tenant("131130; DROP SCHEMA public"):
        pass
    assert connection.schema_name == "public"


@pytest.fixture
def two_tenant_admin(make_user, shibuya, shinjuku):
    user = make_user("two-hats", "tenant_admin", municipality=shibuya)
    from renkei.accounts.models import Membership

    Membership.objects.create(user=user, role="tenant_admin", municipality=shinjuku)
    return user


@pytest.mark.parametrize("how", ["path", "host"])
def test_http_routing_isolates_tenants(client, shibuya_school, two_tenant_admin, how):
    client.force_login(two_tenant_admin)

    def get(code):
        if how == "path":
            return client.get(f"/m/{code}/")
        return client.get("/", HTTP_HOST=f"{code}.localhost")

    shibuya_page, shinjuku_page = get("131130"), get("131041")
    assert shibuya_page.status_code == shinjuku_page.status_code == 200
    assert SECRET_SCHOOL in shibuya_page.content.decode()
    assert SECRET_SCHOOL not in shinjuku_page.content.decode()
    assert "新宿区" in shinjuku_page.content.decode()


@pytest.mark.parametrize(
    "path,host",
    [
        ("/m/401307/", "localhost"),  # valid code, not onboarded
        ("/m/131131/", "localhost"),  # bad check digit
        ("/m/abc/", "localhost"),  # malformed
        ("/m/131130%27%3B%20DROP/", "localhost"),  # injection attempt in the path
        ("/", "401307.localhost"),  # unknown subdomain
        ("/", "evil.localhost"),
        ("/admin/", "999999.localhost"),  # public pages are not reachable under a bad host
    ],
)
def test_unknown_tenants_get_a_clear_404(client, shibuya, path, host):
    response = client.get(path, HTTP_HOST=host)
    assert response.status_code == 404
    body = response.content.decode()
    assert "自治体が見つかりません" in body
    assert "新宿区" not in body  # no public-schema listing leaks into the error page


def test_public_host_lists_municipalities_but_no_tenant_data(client, shibuya_school):
    response = client.get("/", HTTP_HOST="localhost")
    assert response.status_code == 200
    assert "渋谷区" in response.content.decode()
    assert SECRET_SCHOOL not in response.content.decode()


def test_user_without_membership_is_refused_a_tenant(client, make_user, shibuya, shinjuku):
    client.force_login(make_user("shinjuku-teacher", "teacher", municipality=shinjuku))
    response = client.get("/m/131130/")
    assert response.status_code == 403
    assert "権限がありません" in response.content.decode()


def test_anonymous_is_sent_to_the_tenants_login(client, shibuya):
    response = client.get("/m/131130/")
    assert response.status_code == 302
    assert response["Location"].startswith("/m/131130/accounts/login/")


def test_healthz(client, db):
    response = client.get("/healthz", HTTP_HOST="localhost")
    assert response.status_code == 200 and response.json()["database"] == "up"


def test_healthz_answers_any_host_without_tenant_routing(client, db):
    response = client.get("/healthz", HTTP_HOST="10.0.3.17:8000")
    assert response.status_code == 200 and response.json()["status"] == "ok"
