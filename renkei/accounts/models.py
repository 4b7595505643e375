"""Public schema: who may do what. Users are Django's; a membership ties a user to one
municipality (or, for prefecture analysts, one prefecture) with a role."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    TENANT_ADMIN = "tenant_admin", _("自治体管理者")
    TEACHER = "teacher", _("教員")
    SCHOOL_MANAGER = "school_manager", _("管理職")
    BOARD_ANALYST = "board_analyst", _("教育委員会（分析）")
    PREFECTURE_ANALYST = "prefecture_analyst", _("都道府県（分析）")
    SCHOOL_NURSE = "school_nurse", _("養護教諭")
    SCHOOL_COUNSELOR = "school_counselor", _("スクールカウンセラー")
    SCHOOL_SOCIAL_WORKER = "school_social_worker", _("スクールソーシャルワーカー")


# The school staff (教員・管理職): they read a pupil's school records and write the school's.
SCHOOL_ROLES = frozenset({Role.TEACHER, Role.SCHOOL_MANAGER})
# Roles whose membership names schools (所属校, or for SC/SSW the schools they work at). What
# each reads there is the rule table of renkei.accounts.policy (READS).
SCHOOL_SCOPED_ROLES = SCHOOL_ROLES | {
    Role.SCHOOL_NURSE,
    Role.SCHOOL_COUNSELOR,
    Role.SCHOOL_SOCIAL_WORKER,
}


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField("役割", max_length=32, choices=Role.choices)
    # String references: the model modules of tenants need not be imported to define these.
    municipality = models.ForeignKey(
        "tenants.Municipality",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="memberships",
    )
    prefecture = models.ForeignKey(
        "tenants.Prefecture",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="memberships",
    )
    # 学校コード of the schools a school-scoped role (SCHOOL_SCOPED_ROLES) works at. Codes, not foreign keys:
    # schools live in the tenant schema and nothing may reference into a tenant schema.
    school_codes = ArrayField(
        models.CharField(max_length=13),
        default=list,
        blank=True,
        verbose_name="所属校（学校コード）",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "platform_membership"  # named before the move from renkei.platform
        verbose_name = "所属と役割"
        verbose_name_plural = "所属と役割"
        constraints = [
            models.CheckConstraint(
                name="membership_scope_matches_role",
                condition=(
                    Q(
                        role="prefecture_analyst",
                        prefecture__isnull=False,
                        municipality__isnull=True,
                    )
                    | (
                        ~Q(role="prefecture_analyst")
                        & Q(municipality__isnull=False, prefecture__isnull=True)
                    )
                ),
            ),
            models.CheckConstraint(
                name="membership_schools_only_for_school_roles",
                condition=Q(
                    role__in=[
                        "teacher",
                        "school_manager",
                        "school_nurse",
                        "school_counselor",
                        "school_social_worker",
                    ]
                )
                | Q(school_codes=[]),
            ),
            models.UniqueConstraint(
                fields=["user", "role", "municipality"],
                condition=Q(municipality__isnull=False),
                name="membership_unique_in_municipality",
            ),
            models.UniqueConstraint(
                fields=["user", "role", "prefecture"],
                condition=Q(prefecture__isnull=False),
                name="membership_unique_in_prefecture",
            ),
        ]

    def __str__(self) -> str:
        scope = self.municipality_id or self.prefecture_id
        return f"{self.user} {self.role} @ {scope}"


class ApiTokenQuerySet(models.QuerySet):
    def live(self) -> ApiTokenQuerySet:
        """Tokens that still work: not revoked, not expired."""
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class ApiToken(models.Model):
    """A bearer token for one municipality's GraphQL API (renkei.accounts.tokens).

    Only the SHA-256 of the secret is stored; the secret is shown once, when issued. The token
    acts with one role of its user in one municipality and never more: the user's memberships
    are checked again on every use, so removing a membership disables its tokens. A widget
    token is read-only and can only read the metrics it names.
    """

    class Kind(models.TextChoices):
        API = "api", "API"
        WIDGET = "widget", "ウィジェット（指標のみ）"

    name = models.CharField("名前", max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    municipality = models.ForeignKey(
        "tenants.Municipality", on_delete=models.CASCADE, related_name="api_tokens"
    )
    role = models.CharField("役割", max_length=32, choices=Role.choices)
    kind = models.CharField("種類", max_length=8, choices=Kind.choices, default=Kind.API)
    metrics = ArrayField(
        models.CharField(max_length=60),
        default=list,
        blank=True,
        verbose_name="読める指標（空ならすべて）",
    )
    # Web pages (origins: scheme://host[:port]) that may use the token from a browser. A
    # request carrying any other Origin is refused; empty means "not from other sites".
    allowed_origins = ArrayField(
        models.CharField(max_length=200),
        default=list,
        blank=True,
        verbose_name="利用を許可するサイト（オリジン）",
    )
    token_hash = models.CharField("トークンの SHA-256", max_length=64, unique=True, editable=False)
    prefix = models.CharField("先頭の文字（識別用）", max_length=16, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField("有効期限")
    revoked_at = models.DateTimeField("失効日時", null=True, blank=True)
    last_used_at = models.DateTimeField("最終利用", null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        db_table = "platform_apitoken"  # named before the move from renkei.platform
        verbose_name = "API トークン"
        verbose_name_plural = "API トークン"
        constraints = [
            models.CheckConstraint(
                name="api_token_not_prefecture_role", condition=~Q(role="prefecture_analyst")
            ),
            models.CheckConstraint(
                name="api_token_widget_names_metrics", condition=Q(kind="api") | ~Q(metrics=[])
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class IngestTokenQuerySet(models.QuerySet):
    def live(self) -> IngestTokenQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class IngestToken(models.Model):
    """A vendor's credential for the push API of one municipality (renkei.connectors.api):
    it may create imports for the connectors it names and read back its own runs, nothing
    else: no pupil, no aggregate, no other API. Only the SHA-256 of the secret is stored."""

    name = models.CharField("名前（事業者・用途）", max_length=100)
    municipality = models.ForeignKey(
        "tenants.Municipality", on_delete=models.CASCADE, related_name="ingest_tokens"
    )
    connectors = ArrayField(models.CharField(max_length=60), verbose_name="使えるコネクタ")
    # Addresses or networks (CIDR) the token may be used from; empty means from anywhere.
    allowed_ips = ArrayField(
        models.CharField(max_length=50), default=list, blank=True, verbose_name="送信元 IP"
    )
    token_hash = models.CharField("トークンの SHA-256", max_length=64, unique=True, editable=False)
    prefix = models.CharField("先頭の文字（識別用）", max_length=16, editable=False)
    created_by = models.CharField("発行者", max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField("有効期限")
    revoked_at = models.DateTimeField("失効日時", null=True, blank=True)
    last_used_at = models.DateTimeField("最終利用", null=True, blank=True)

    objects = IngestTokenQuerySet.as_manager()

    class Meta:
        verbose_name = "取り込み用トークン"
        verbose_name_plural = "取り込み用トークン"
        constraints = [
            models.CheckConstraint(
                name="ingest_token_names_connectors", condition=~Q(connectors=[])
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
