"""The one place that answers "may this user see this".

Every view and resolver asks here, and takes its querysets from here, already scoped:

* teachers and school managers see individual data of the schools they belong to, nothing else;
* 養護教諭, スクールカウンセラー and スクールソーシャルワーカー read the kinds of a pupil's records
  the rule table (``READS``) gives their role, of the pupils it reaches;
* tenant admins and board analysts see their municipality's aggregates, never a single pupil;
* prefecture analysts see released aggregates of their prefecture's municipalities, no rows;
* sensitive items (``Sensitive`` on a model) need step-up authentication (a second factor);
* every read of an individual pupil's records writes an ``AccessLog`` row.

It answers with roles, codes and booleans. The record-level reads built from these answers
(the pupils and schools a principal may read, the access log) are in
:mod:`renkei.edudata.access`, beside the models they read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _

from renkei.accounts.models import Membership, Role
from renkei.platform.audit import Actor

FORBIDDEN_TENANT = _("この自治体のデータを見る権限がありません。")
FORBIDDEN_PUPIL = _("この児童生徒の記録を見る権限がありません（所属校の教職員のみ閲覧できます）。")
FORBIDDEN_AGGREGATES = _("この集計を見る権限がありません。")
FORBIDDEN_RIGHTS = _(
    "開示・訂正・削除の請求に対応できるのは、自治体管理者と、その児童生徒の学校の管理職だけです。"
)
FORBIDDEN_HOMEROOM_TEACHERS = _("担任を設定できるのは、その学校の管理職だけです。")
FORBIDDEN_SECOND_FACTOR_RESET = _(
    "この利用者の二要素認証は解除できません。解除できるのは、本人確認を済ませた自治体管理者が、"
    "この自治体だけに役割を持つ利用者について行う場合です（ほかは運用管理者に依頼してください）。"
)
FORBIDDEN_ASSIGNMENTS = _(
    "スクールカウンセラー・スクールソーシャルワーカーの担当を決められるのは、"
    "その児童生徒の学校の管理職だけです。"
)
STEP_UP_NEEDED = _(
    "要配慮情報です。二要素認証（ワンタイムパスワード）で本人確認をしてから表示してください。"
)

ADMIN_ROLES = frozenset({Role.TENANT_ADMIN})
AGGREGATE_ROLES = frozenset({Role.TENANT_ADMIN, Role.BOARD_ANALYST})


# -- who reads which records of a pupil: the rule table -------------------------------------------


class Records(StrEnum):
    """The kinds of a pupil's records, as the rule table grants them."""

    IDENTITY = "identity"  # name, kana, grade, homeroom: what it takes to find the pupil
    SCHOOL = "school"  # the boards: attendance, tests, evaluations, learning, Microsoft 365
    HEALTH = "health"  # 健康観察 and 保健室利用 (symptoms, notes, 心の相談: after step-up)
    CARE = "care"  # staff notes, 支援記録, 心の天気 check-ins, 長期欠席の理由 (after step-up)


class Reach(StrEnum):
    """Which pupils of the schools a membership names."""

    SCHOOLS = "schools"  # every pupil of those schools
    ASSIGNED = "assigned"  # only those the school's manager assigned to the person


@dataclass(frozen=True)
class Reads:
    records: frozenset[Records]
    reach: Reach


# The one rule table (docs/school-records.md shows it). A role not here reads no pupil's records.
# 心の天気's free comment has a rule of its own on top (may_read_free_comments).
READS: dict[str, Reads] = {
    Role.TEACHER: Reads(frozenset(Records), Reach.SCHOOLS),
    Role.SCHOOL_MANAGER: Reads(frozenset(Records), Reach.SCHOOLS),
    Role.SCHOOL_NURSE: Reads(frozenset({Records.IDENTITY, Records.HEALTH}), Reach.SCHOOLS),
    Role.SCHOOL_COUNSELOR: Reads(frozenset({Records.IDENTITY, Records.CARE}), Reach.ASSIGNED),
    Role.SCHOOL_SOCIAL_WORKER: Reads(frozenset({Records.IDENTITY, Records.CARE}), Reach.ASSIGNED),
}
ASSIGNED_ROLES = frozenset(role for role, reads in READS.items() if reads.reach == Reach.ASSIGNED)

# The table in words, for the municipality's public 取扱い方針 page.
RECORDS_LABELS = {
    Records.IDENTITY: _("氏名・学年・学級"),
    Records.SCHOOL: _("出欠・テスト・評価・学習の記録・Microsoft 365 の利用"),
    Records.HEALTH: _("健康観察・保健室利用"),
    Records.CARE: _("共有配慮事項・支援記録・心の天気・長期欠席の理由"),
}
REACH_LABELS = {
    Reach.SCHOOLS: _("所属校のすべての児童生徒"),
    Reach.ASSIGNED: _("所属校の児童生徒のうち、管理職が担当として割り当てた児童生徒だけ"),
}


class AccessDenied(PermissionDenied):
    """Refused by the policy; the message is shown to the user."""


class StepUpRequired(AccessDenied):
    """Sensitive data asked for without a verified second factor."""


@dataclass(frozen=True)
class Grant:
    role: str
    municipality_code: str | None
    prefecture_code: str | None
    school_codes: frozenset[str]


@dataclass(frozen=True)
class Principal:
    """What the policy knows about whoever asks: their grants, and whether they passed a
    second factor in this session."""

    user_id: int | None
    username: str
    grants: tuple[Grant, ...]
    step_up: bool = False
    via: str = "web"  # how they reached us, as the audit trail names it (web, api)

    def grants_in(self, municipality) -> list[Grant]:
        return [g for g in self.grants if g.municipality_code == municipality.code]

    def role_labels_in(self, municipality) -> list[str]:
        return [Role(g.role).label for g in self.grants_in(municipality)]

    def roles_in(self, municipality) -> set[str]:
        return {g.role for g in self.grants_in(municipality)}

    def school_codes_in(self, municipality) -> frozenset[str]:
        """The schools where they are staff (教員・管理職): the class and pupil boards, the
        school's own figures. Those are the schools where the rule table lets them read the
        school records of every pupil."""
        return self.reading_schools(municipality, Records.SCHOOL)[0]

    def reading_schools(
        self, municipality, records: Records
    ) -> tuple[frozenset[str], frozenset[str]]:
        """(every pupil, assigned pupils only): the schools where the rule table (READS) lets
        them read ``records`` of every pupil, and those where only of the pupils assigned to
        them."""
        reach: dict[Reach, set[str]] = {Reach.SCHOOLS: set(), Reach.ASSIGNED: set()}
        for grant in self.grants_in(municipality):
            reads = READS.get(grant.role)
            if reads is not None and records in reads.records:
                reach[reads.reach] |= grant.school_codes
        return frozenset(reach[Reach.SCHOOLS]), frozenset(reach[Reach.ASSIGNED])

    def actor(self, municipality=None) -> Actor:
        """The principal as the audit trail records it, with its roles in ``municipality``
        (all its roles when none is given)."""
        grants = self.grants_in(municipality) if municipality is not None else self.grants
        return Actor(
            username=self.username,
            via=self.via,
            user_id=self.user_id,
            role=",".join(sorted({g.role for g in grants})),
        )


ANONYMOUS = Principal(user_id=None, username="", grants=())

# What each role reaches, in words, for the municipality's public 取扱い方針 page
# (renkei.dashboards.privacy_policy): the rules below, said once for guardians.
ROLE_REACH = {
    Role.TEACHER: _(
        "所属校の児童生徒の記録（出欠・健康観察・成績・学習の記録など）。要配慮情報は"
        "二要素認証で本人確認をした後だけ。心の天気のひとことは担任だけが読めます。"
    ),
    Role.SCHOOL_MANAGER: _(
        "所属校の児童生徒の記録（教員と同じ）。担任の設定、開示請求への回答など学校の管理。"
    ),
    Role.TENANT_ADMIN: _(
        "自治体全体の集計と設定・取り込みの管理。個々の児童生徒の記録は見ません"
        "（開示・訂正・削除の請求への対応を除く）。"
    ),
    Role.BOARD_ANALYST: _("自治体全体の集計だけ。個々の児童生徒の記録は見ません。"),
    Role.SCHOOL_NURSE: _(
        "養護教諭。所属校の児童生徒の健康観察と保健室利用。症状・記録・心の相談は"
        "二要素認証で本人確認をした後だけ。成績や支援記録は見ません。"
    ),
    Role.SCHOOL_COUNSELOR: _(
        "スクールカウンセラー。担当として割り当てられた児童生徒の支援記録・心の天気など"
        "（本人確認の後）。割り当ての解除で見られなくなります。記録は書きません。"
    ),
    Role.SCHOOL_SOCIAL_WORKER: _(
        "スクールソーシャルワーカー。担当として割り当てられた児童生徒の支援記録・心の天気など"
        "（本人確認の後）。割り当ての解除で見られなくなります。記録は書きません。"
    ),
    Role.PREFECTURE_ANALYST: _(
        "都道府県の職員。秘匿処理をした集計表だけ（少人数のセルは公開しません）。"
        "児童生徒一人ひとりの記録や自治体内のページには入れません。"
    ),
}


def principal_for(request_or_user, *, step_up: bool | None = None) -> Principal:
    """The principal of a request (second factor read from django-otp) or of a user. A
    request's is worked out once (the view, the menu and the API all ask)."""
    is_request = hasattr(request_or_user, "user") and step_up is None
    if is_request and hasattr(request_or_user, "_renkei_principal"):
        return request_or_user._renkei_principal
    principal = _principal(request_or_user, step_up)
    if is_request:
        request_or_user._renkei_principal = principal
    return principal


def _principal(request_or_user, step_up: bool | None) -> Principal:
    user = getattr(request_or_user, "user", request_or_user)
    if user is None or not user.is_authenticated:
        return ANONYMOUS
    if step_up is None:
        is_verified = getattr(user, "is_verified", None)
        step_up = bool(is_verified()) if callable(is_verified) else False
    memberships = Membership.objects.filter(user=user).select_related("municipality")
    grants = tuple(
        Grant(
            role=m.role,
            municipality_code=m.municipality.code if m.municipality_id else None,
            prefecture_code=m.prefecture_id,
            school_codes=frozenset(m.school_codes),
        )
        for m in memberships
    )
    return Principal(user_id=user.pk, username=user.get_username(), grants=grants, step_up=step_up)


# -- tenants and aggregates -------------------------------------------------------------------


def may_enter_tenant(principal: Principal, municipality) -> bool:
    """Any role inside the municipality. Prefecture analysts never enter a tenant."""
    return bool(principal.grants_in(municipality))


def may_see_tenant_aggregates(principal: Principal, municipality) -> bool:
    """Municipality-wide statistics: its admins and board analysts, and (released tables
    only, through the federation) the analysts of its prefecture."""
    if principal.roles_in(municipality) & AGGREGATE_ROLES:
        return True
    return any(
        g.role == Role.PREFECTURE_ANALYST and g.prefecture_code == municipality.code[:2]
        for g in principal.grants
    )


def is_own_board(principal: Principal, municipality) -> bool:
    """The municipality's own admins and board analysts, never the prefecture's analysts:
    they alone see its exact counts (its statutory survey returns) and the figures released
    to the municipality alone (不登校: absence reasons are sensitive, DESIGN rule 6). A
    school's own released figures: :func:`may_see_school_aggregates`."""
    return bool(principal.roles_in(municipality) & AGGREGATE_ROLES)


def may_see_school_aggregates(principal: Principal, municipality, school_code: str) -> bool:
    if principal.roles_in(municipality) & AGGREGATE_ROLES:
        return True
    return school_code in principal.school_codes_in(municipality)


def may_list_school(principal: Principal, municipality, school_code: str) -> bool:
    """Whether the school (and its homerooms) may be listed: every school for those who see
    the municipality's aggregates, their own for teachers and managers. A school that does
    not exist gets the same answer as another school's."""
    if not may_enter_tenant(principal, municipality):
        return False
    return may_see_tenant_aggregates(
        principal, municipality
    ) or school_code in principal.school_codes_in(municipality)


def analyst_prefectures(principal: Principal) -> list[str]:
    """The prefectures whose released aggregates this principal analyses (in code order)."""
    return sorted(
        {
            g.prefecture_code
            for g in principal.grants
            if g.role == Role.PREFECTURE_ANALYST and g.prefecture_code
        }
    )


def may_read_free_comments(
    principal: Principal,
    municipality,
    school_code: str,
    homeroom_teachers: Iterable[str],
    *,
    assigned: bool = False,
) -> bool:
    """A pupil's free comments (a check-in's ひとこと), after step-up: the managers (管理職) of
    the pupil's school, the homeroom teacher (担任) of the pupil's current homeroom, listed
    in ``homeroom_teachers`` by user name, and the スクールカウンセラー / スクールソーシャル
    ワーカー working at the school to whom the pupil is ``assigned``. Other staff of the school
    see the mood, not the comment; no one else sees either."""
    if not principal.step_up:
        return False
    for grant in principal.grants_in(municipality):
        if school_code not in grant.school_codes:
            continue
        if grant.role == Role.SCHOOL_MANAGER:
            return True
        if grant.role == Role.TEACHER and principal.username in homeroom_teachers:
            return True
        if grant.role in ASSIGNED_ROLES and assigned:
            return True
    return False


def is_school_manager(principal: Principal, municipality, school_code: str) -> bool:
    """A manager (管理職) of that school: the rules below that belong to the school's
    management (担任, SC/SSW assignments, guardians' requests) all start here."""
    return any(
        g.role == Role.SCHOOL_MANAGER and school_code in g.school_codes
        for g in principal.grants_in(municipality)
    )


def may_assign_pupils(principal: Principal, municipality, school_code: str) -> bool:
    """Who a スクールカウンセラー / スクールソーシャルワーカー works with decides what they read:
    the managers of the pupil's school decide it."""
    return is_school_manager(principal, municipality, school_code)


def may_set_homeroom_teachers(principal: Principal, municipality, school_code: str) -> bool:
    """Who is 担任 decides who reads free comments: the school's managers set it."""
    return is_school_manager(principal, municipality, school_code)


def may_answer_rights_requests(principal: Principal, municipality, school_code: str) -> bool:
    """A guardian's 開示・訂正・削除請求 about a pupil (docs/rights.md): the municipality's
    admins, who answer for the municipality, and the managers (管理職) of the pupil's school.
    Teachers record opt-outs (staff of the school) but do not answer these."""
    return may_administer_tenant(principal, municipality) or is_school_manager(
        principal, municipality, school_code
    )


def may_transfer_pupil(principal: Principal, municipality, school_code: str) -> bool:
    """A 転校 transfer of a pupil of ``school_code`` (the package out, or a pupil in): those
    who answer guardians' requests, after step-up (the package holds every record of the
    pupil)."""
    return principal.step_up and may_answer_rights_requests(principal, municipality, school_code)


def may_administer_tenant(principal: Principal, municipality) -> bool:
    return bool(principal.roles_in(municipality) & ADMIN_ROLES)


def may_reset_second_factor(principal: Principal, municipality, member) -> bool:
    """A tenant admin past step-up may reset the second factor of a member whose every role
    is in this municipality: not a platform operator's, nor one of someone who also works for
    another municipality or a prefecture (their other admins did not agree)."""
    if not (principal.step_up and may_administer_tenant(principal, municipality)):
        return False
    if member.is_staff or member.is_superuser:
        return False
    grants = principal_for(member, step_up=False).grants
    return bool(grants) and all(g.municipality_code == municipality.code for g in grants)


def require(allowed: bool, message: str) -> None:
    if not allowed:
        raise AccessDenied(message)


# -- sensitive fields -------------------------------------------------------------------------


def sensitive_fields(model) -> frozenset[str]:
    """The field names of ``model`` classed sensitive (all concrete fields if the whole model
    is)."""
    marker = getattr(model, "sensitive", None)
    if not hasattr(marker, "whole_model"):  # unmarked (AccessLog has a field of that name)
        return frozenset()
    if marker.whole_model:
        return frozenset(f.name for f in model._meta.concrete_fields)
    return marker.fields


def check_fields(principal: Principal, model, field_names: Iterable[str]) -> None:
    """Refuse sensitive fields unless the principal passed step-up."""
    asked = frozenset(field_names) & sensitive_fields(model)
    if asked and not principal.step_up:
        raise StepUpRequired(STEP_UP_NEEDED)


def readable_fields(principal: Principal, model) -> list[str]:
    """Concrete field names this principal may read on ``model`` right now."""
    hidden = frozenset() if principal.step_up else sensitive_fields(model)
    return [f.name for f in model._meta.concrete_fields if f.name not in hidden]
