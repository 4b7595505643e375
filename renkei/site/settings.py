"""Django settings, driven by the environment. Every setting has a safe default for the
embedded demo; the production value is documented next to it and in infra/README.md."""

from __future__ import annotations

import os

from django.utils.translation import gettext_lazy as _

from renkei.platform import deploy_secrets, environment


def _flag(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


HOME = environment.home()

# Production: DJANGO_SECRET_KEY, RENKEI_SERVICE_TOKEN_KEY and RENKEI_MASTER_KEY from the secret
# store (nothing starts without them, renkei.platform.deploy_secrets); the embedded default generates
# them once under RENKEI_HOME.
_SECRETS = deploy_secrets.resolve(os.environ, HOME)
SECRET_KEY = _SECRETS[deploy_secrets.SECRET_KEY]
DEBUG = _flag("DEBUG")

# Tenants are reached as <code>.<base domain> or under /m/<code>/ on any allowed host.
BASE_DOMAIN = os.environ.get("RENKEI_BASE_DOMAIN", "localhost")
ALLOWED_HOSTS = os.environ.get(
    "RENKEI_ALLOWED_HOSTS", f"{BASE_DOMAIN},.{BASE_DOMAIN},127.0.0.1,testserver"
).split(",")

SHARED_APPS = [
    "django_tenants",
    "renkei.tenants",
    "renkei.platform",
    "renkei.accounts",
    "renkei.dashboards",
    "renkei.graphql.widgets",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "django.contrib.postgres",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",  # one-time recovery codes (renkei.accounts.second_factor)
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "renkei.edudata",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Municipality"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# New tenant schemas are created by replaying the tenant migrations' SQL, collected once per
# process (renkei.tenants.schema), not by migrating each from scratch.
PUBLIC_SCHEMA_URLCONF = "renkei.site.urls_public"
ROOT_URLCONF = "renkei.site.urls_tenant"

DATABASES = {
    "default": {
        # django-tenants' backend, with the tenant's schema sent with every statement: safe
        # behind a pooler in transaction mode (renkei/tenants/postgresql_backend/base.py).
        "ENGINE": "renkei.tenants.postgresql_backend",
        # Production: 60 (infra/README.md), with or without a pooler.
        "CONN_MAX_AGE": int(os.environ.get("RENKEI_CONN_MAX_AGE", "0")),
        **environment.database_settings(),
        # Several test runs on one server (parallel checkouts, CI jobs) each need their own.
        "TEST": {"NAME": os.environ.get("RENKEI_TEST_DATABASE") or None},
    }
}
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"  # Citus needs 64-bit keys

MIDDLEWARE = [
    "renkei.tenants.middleware.TenantRoutingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "renkei.platform.errors.ClearErrorsMiddleware",  # after auth: its pages show the menu
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "renkei.platform.security.FrameAncestorsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "renkei.dashboards.navigation.nav",
            ]
        },
    }
]

WSGI_APPLICATION = "renkei.site.wsgi.application"

# Japanese by default; English available.
LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("日本語")), ("en", _("English"))]
# One catalogue for the whole project, kept beside the kernel that every area uses.
LOCALE_PATHS = [os.path.join(os.path.dirname(os.path.dirname(__file__)), "platform", "locale")]
USE_I18N = True
TIME_ZONE = "Asia/Tokyo"
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = HOME / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True  # the demo serves static files without collectstatic
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGIN_URL = "login"
# The name authenticator apps show beside the user name (the otpauth:// issuer).
OTP_TOTP_ISSUER = "Renkei"
LOGIN_REDIRECT_URL = "home"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = _flag("RENKEI_SECURE_COOKIES")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        # Cache keys carry the tenant (PITFALLS: django-tenants).
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}

# Encrypts each tenant's pseudonymization key (a Fernet key).
RENKEI_MASTER_KEY = _SECRETS[deploy_secrets.MASTER_KEY]

# The largest file 管理 › 取り込み accepts, in bytes (default 2 GB); larger ones get a 413.
RENKEI_UPLOAD_MAX_BYTES = int(os.environ.get("RENKEI_UPLOAD_MAX_BYTES", str(2 << 30)))
# A resumable upload nobody continues is deleted this many seconds after its last part.
RENKEI_UPLOAD_EXPIRES = int(os.environ.get("RENKEI_UPLOAD_EXPIRES", str(24 * 3600)))

# One console handler for everything (Django's request errors included, with DEBUG off too);
# every line bounded in length.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "renkei.platform.log_format.BoundedFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"renkei": {"level": "INFO"}},  # propagates to the root handler
}

# -- GraphQL --------------------------------------------------------------------------------
# Introspection and GraphiQL only with DEBUG on; depth and cost limits always.
GRAPHQL_MAX_DEPTH = int(os.environ.get("RENKEI_GRAPHQL_MAX_DEPTH", "8"))
GRAPHQL_MAX_COST = int(os.environ.get("RENKEI_GRAPHQL_MAX_COST", "1000"))  # a class board is 200
GRAPHQL_MAX_ALIASES = int(os.environ.get("RENKEI_GRAPHQL_MAX_ALIASES", "30"))
# A request body past this is refused with 413 before it is read (docs/api-errors.md).
GRAPHQL_MAX_BODY_BYTES = int(os.environ.get("RENKEI_GRAPHQL_MAX_BODY_BYTES", str(256 * 1024)))
# Remote tenants (municipalities running their own deployment) the federation calls over HTTP:
# JSON list of {"code": "271004", "url": "https://renkei.city.osaka.example/federation/tenant"};
# "trusted": true when that deployment sends this prefecture exact counts (next setting there).
RENKEI_FEDERATION_REMOTES = os.environ.get("RENKEI_FEDERATION_REMOTES", "[]")
# On a municipality's own deployment: the prefectures (codes, comma-separated) whose aggregator
# may receive its exact counts over the signed channel, to protect them jointly with the rest
# of the prefecture (docs/disclosure.md, "Remote municipalities"). Empty: released tables only.
RENKEI_FEDERATION_TRUSTED_AGGREGATORS = frozenset(
    code.strip()
    for code in os.environ.get("RENKEI_FEDERATION_TRUSTED_AGGREGATORS", "").split(",")
    if code.strip()
)
# On the prefecture's side: how long a trusted remote's data version is used before it is
# asked again (seconds). Its new data shows that much later; no question waits on it meanwhile.
RENKEI_FEDERATION_TRUSTED_VERSION_TTL = float(
    os.environ.get("RENKEI_FEDERATION_TRUSTED_VERSION_TTL", "10")
)
# Signs service tokens between deployments (a secret shared with them, never SECRET_KEY).
RENKEI_SERVICE_TOKEN_KEY = _SECRETS[deploy_secrets.SERVICE_TOKEN_KEY]
RENKEI_FEDERATION_TIMEOUT_SECONDS = float(os.environ.get("RENKEI_FEDERATION_TIMEOUT", "5"))
# After a data change commits, protect again (in a background thread of the process that
# made the change) the prefecture tables that were asked for before, so the next question is
# answered from a stored release (renkei.edudata.metrics.release). "0" turns it off.
RENKEI_RELEASE_WARMUP = os.environ.get("RENKEI_RELEASE_WARMUP", "1") != "0"
# Objects allocated between two collections of Python's youngest generation (Python: 700),
# set once Django is ready (renkei/platform/apps.py).
RENKEI_GC_YOUNG_THRESHOLD = int(os.environ.get("RENKEI_GC_YOUNG_THRESHOLD", "20000"))
# Time limit of the federation's call that makes (or loads) a prefecture's release: a release
# made anew protects the whole prefecture's table at once.
RENKEI_RELEASE_TIMEOUT_SECONDS = float(os.environ.get("RENKEI_RELEASE_TIMEOUT", "60"))

# How long a change made from a page waits for a lock a running import holds before it says
# so (tenants.context.waiting_briefly) instead of waiting minutes for the import's end.
RENKEI_LOCK_WAIT_SECONDS = float(os.environ.get("RENKEI_LOCK_WAIT_SECONDS", "5"))

# -- Jobs -----------------------------------------------------------------------------------
# With no broker, tasks run in-process (the embedded default); production: Redis.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True

# -- Storage --------------------------------------------------------------------------------
# "local" (a directory under RENKEI_HOME) or "s3" (per-tenant prefix, SSE-KMS).
RENKEI_STORAGE = os.environ.get("RENKEI_STORAGE", "local")
RENKEI_S3_BUCKET = os.environ.get("RENKEI_S3_BUCKET", "")
RENKEI_S3_KMS_KEY_ID = os.environ.get("RENKEI_S3_KMS_KEY_ID", "")
RENKEI_S3_ENDPOINT_URL = os.environ.get("RENKEI_S3_ENDPOINT_URL") or None
AWS_REGION = os.environ.get("AWS_REGION", "ap-northeast-1")
