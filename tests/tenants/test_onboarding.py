import pytest
from citus_support import on_citus
from django.db import connection
from django_tenants.utils import schema_exists

from renkei.platform.audit import Actor
from renkei.tenants.actions import OnboardingError, do_onboard_municipality
from renkei.tenants.models import Domain, Municipality

TEST_ACTOR = Actor.system("test")

pytestmark = pytest.mark.django_db


def _tables(schema):
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", [schema])
        return c.fetchone()[0]


def test_onboarding_creates_a_migrated_schema_and_domain():
    m = do_onboard_municipality("141003", "横浜市", "14", actor=TEST_ACTOR)
    assert m.schema_name == "m141003"
    assert schema_exists("m141003")
    assert _tables("m141003") == _tables("m131130") > 10
    with connection.cursor() as c:
        c.execute('SELECT count(*) FROM "m141003".django_migrations WHERE app = %s', ["edudata"])
        assert c.fetchone()[0] >= 2
    assert Domain.objects.get(tenant=m).domain == "141003.localhost"
    assert m.prefecture.name == "神奈川県"
    assert m.pseudonym_key and "141003" not in m.pseudonym_key


def test_cloned_access_log_trigger_calls_its_own_schema(shibuya):
    with connection.cursor() as c:
        c.execute("""SELECT t.tgname, t.tgisinternal, p.pronamespace::regnamespace::text,
                            p.proname
                     FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                     WHERE t.tgrelid = 'm131130.edudata_accesslog'::regclass""")
        triggers = c.fetchall()
    ours = {(name, schema) for name, internal, schema, _ in triggers if not internal}
    assert ours == {
        ("access_log_no_update_or_delete", "m131130"),
        ("access_log_no_truncate", "m131130"),
    }
    internal = {(name, function) for name, internal, _, function in triggers if internal}
    if on_citus():  # a distributed table's own: TRUNCATE goes on to the shard
        assert {function for _, function in internal} == {"citus_truncate_trigger"}
        assert all(name.startswith("truncate_trigger_") for name, _ in internal)
    else:
        assert internal == set()


@pytest.mark.parametrize(
    "code,prefecture,message",
    [
        ("131131", None, "検査数字"),
        ("13113", None, "6 桁"),
        ("482001", None, "都道府県コード「48」"),
        ("131130", "14", "都道府県コード 13 に属します"),
        ("132012", "99", "都道府県コード「99」"),
    ],
)
def test_bad_codes_get_clear_messages_and_create_nothing(code, prefecture, message):
    before = Municipality.objects.count()
    with pytest.raises(OnboardingError, match=message):
        do_onboard_municipality(code, "テスト", prefecture, actor=TEST_ACTOR)
    assert Municipality.objects.count() == before


def test_duplicate_is_refused_by_name(shibuya):
    with pytest.raises(OnboardingError, match="既に登録されています"):
        do_onboard_municipality("131130", "渋谷区", actor=TEST_ACTOR)


def test_failure_after_schema_creation_leaves_nothing_behind(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Domain.objects, "create", broken)
    with pytest.raises(RuntimeError):
        do_onboard_municipality("401307", "福岡市", actor=TEST_ACTOR)
    assert not Municipality.objects.filter(code="401307").exists()
    assert not schema_exists("m401307")


def test_schema_name_cannot_be_chosen(db):
    m = Municipality(code="472018", name="那覇市", prefecture_id=None, schema_name="public")
    from renkei.tenants.models import Prefecture

    m.prefecture = Prefecture.for_code("47")
    m.pseudonym_key = "x"
    m.auto_create_schema = False
    m.save()
    assert m.schema_name == "m472018"


def test_database_refuses_a_schema_name_not_derived_from_the_code(shibuya):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Municipality.objects.filter(pk=shibuya.pk).update(schema_name="public")


def test_min_cell_size_may_only_be_raised(shibuya):
    from django.core.exceptions import ValidationError

    shibuya.min_cell_size = 15
    shibuya.save()
    shibuya.min_cell_size = 12
    with pytest.raises(ValidationError, match="引き上げのみ"):
        shibuya.save()
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Municipality.objects.filter(pk=shibuya.pk).update(min_cell_size=9)
