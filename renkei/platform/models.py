"""Public schema: who may do what. Users are Django's; a membership ties a user to one
municipality (or, for prefecture analysts, one prefecture) with a role."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    TENANT_ADMIN = "tenant_admin", "自治体管理者"
    TEACHER = "teacher", "教員"
    SCHOOL_MANAGER = "school_manager", "管理職"
    BOARD_ANALYST = "board_analyst", "教育委員会（分析）"
    PREFECTURE_ANALYST = "prefecture_analyst", "都道府県（分析）"


SCHOOL_ROLES = frozenset({Role.TEACHER, Role.SCHOOL_MANAGER})


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="memberships")
    role = models.CharField("役割", max_length=32, choices=Role.choices)
    # String references keep platform free of imports from tenants (one direction of dependency).
    municipality = models.ForeignKey("tenants.Municipality", on_delete=models.CASCADE,
                                     null=True, blank=True, related_name="memberships")
    prefecture = models.ForeignKey("tenants.Prefecture", on_delete=models.CASCADE,
                                   null=True, blank=True, related_name="memberships")
    # 学校コード of the schools a teacher or manager belongs to. Codes, not foreign keys:
    # schools live in the tenant schema and nothing may reference into a tenant schema.
    school_codes = ArrayField(models.CharField(max_length=13), default=list, blank=True,
                              verbose_name="所属校（学校コード）")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "所属と役割"
        verbose_name_plural = "所属と役割"
        constraints = [
            models.CheckConstraint(
                name="membership_scope_matches_role",
                condition=(Q(role="prefecture_analyst", prefecture__isnull=False,
                             municipality__isnull=True)
                           | (~Q(role="prefecture_analyst") & Q(municipality__isnull=False,
                                                                prefecture__isnull=True))),
            ),
            models.CheckConstraint(
                name="membership_schools_only_for_school_roles",
                condition=Q(role__in=["teacher", "school_manager"]) | Q(school_codes=[]),
            ),
            models.UniqueConstraint(fields=["user", "role", "municipality"],
                                    condition=Q(municipality__isnull=False),
                                    name="membership_unique_in_municipality"),
            models.UniqueConstraint(fields=["user", "role", "prefecture"],
                                    condition=Q(prefecture__isnull=False),
                                    name="membership_unique_in_prefecture"),
        ]

    def __str__(self) -> str:
        scope = self.municipality_id or self.prefecture_id
        return f"{self.user} {self.role} @ {scope}"
