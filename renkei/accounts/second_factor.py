"""A user's second factor: their authenticator app (TOTP) and one-time recovery codes.

Each user enrols their own authenticator (no one else ever sees its secret): a new device
stays unconfirmed until the user enters a code from it; confirming it replaces any earlier
one and makes a new set of recovery codes, shown once. A user who already has a confirmed
device changes it only after step-up (a current code or a recovery code), so a stolen
password alone cannot replace it. A tenant admin may reset a member's second factor
(:func:`do_reset_second_factor`); the member then enrols again.

The devices are django-otp's (``otp_totp``, ``otp_static``); a recovery code is consumed by
the step-up that uses it. Secrets and codes never reach a log line or the audit trail.
"""

from __future__ import annotations

import django_otp
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext as _
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from renkei.accounts import policy
from renkei.platform import audit
from renkei.platform.audit import Actor

RECOVERY_CODE_COUNT = 10
AUTHENTICATOR_NAME = "認証アプリ"
RECOVERY_CODES_NAME = "回復コード"


class SecondFactorError(ValueError):
    """Refused; the message says why and what to do (Japanese)."""


def authenticator(user) -> TOTPDevice | None:
    """The user's confirmed authenticator (there is at most one)."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()


def pending_authenticator(user) -> TOTPDevice | None:
    """An authenticator being enrolled: its secret is shown until a code from it confirms it."""
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def normalized(token: str) -> str:
    """What the user typed, without spaces and hyphens (codes are shown as ``abcd-efgh``)."""
    return "".join((token or "").split()).replace("-", "").lower()


def verify(user, token: str) -> Device | None:
    """The confirmed device that accepts ``token`` (six digits: the authenticator; anything
    else: a recovery code, which is then used up), or None. Failures count towards
    django-otp's throttling of that device."""
    token = normalized(token)
    if token.isdigit() and len(token) == 6:
        device = authenticator(user)
    else:
        device = StaticDevice.objects.filter(user=user, confirmed=True).first()
    if device is None or not token:
        return None
    return django_otp.verify_token(user, device.persistent_id, token)


def shown(code: str) -> str:
    """A recovery code as the page shows it: two groups of four."""
    return f"{code[:4]}-{code[4:]}"


def _locked(user):
    # One change of a user's devices at a time (two tabs confirming at once).
    return get_user_model().objects.select_for_update().get(pk=user.pk)


def _target(user) -> str:
    return f"user {user.get_username()}"


@transaction.atomic
def do_start_enrolment(
    user, *, actor: Actor, step_up: bool, municipality_code: str = ""
) -> TOTPDevice:
    """A new, unconfirmed authenticator with a fresh secret (an earlier unconfirmed one is
    dropped). Replacing a confirmed authenticator needs step-up."""
    user = _locked(user)
    if not may_replace(user, step_up=step_up):
        raise SecondFactorError(REENROL_NEEDS_STEP_UP)
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
    audit.record(
        actor, "second_factor.start", municipality_code=municipality_code, target=_target(user)
    )
    return device


REENROL_NEEDS_STEP_UP = _(
    "認証アプリは登録済みです。登録し直すには、先に今の認証アプリ"
    "（または回復コード）で本人確認をしてください。"
)


def may_replace(user, *, step_up: bool) -> bool:
    """Whether this session may enrol (or confirm) a new authenticator: always when the user
    has none, only after step-up when they have one."""
    return step_up or authenticator(user) is None


def do_confirm_enrolment(
    user, token: str, *, actor: Actor, step_up: bool, municipality_code: str = ""
) -> tuple[TOTPDevice, list[str]]:
    """Confirm the pending authenticator with a code from it: it replaces the user's earlier
    authenticator (which needs step-up, as starting did: an enrolment left pending is no way
    around it), and a new set of recovery codes replaces the old (returned, to be shown
    once). A wrong code changes nothing (but counts towards the device's throttling, which
    django-otp commits on its own)."""
    if not may_replace(user, step_up=step_up):
        raise SecondFactorError(REENROL_NEEDS_STEP_UP)
    pending = pending_authenticator(user)
    if pending is None:
        raise SecondFactorError(
            _("登録中の認証アプリがありません。「認証アプリを登録する」からやり直してください。")
        )
    token = normalized(token)
    if not (token.isdigit() and len(token) == 6) or not django_otp.verify_token(
        user, pending.persistent_id, token
    ):
        raise SecondFactorError(
            _(
                "コードが違います。認証アプリに表示されている最新の 6 桁を入力してください"
                "（続けて間違えると、しばらく受け付けません）。"
            )
        )
    with transaction.atomic():
        user = _locked(user)
        if not TOTPDevice.objects.filter(pk=pending.pk, confirmed=False).exists():
            raise SecondFactorError(  # replaced meanwhile (another tab started again)
                _("登録中の認証アプリが変わりました。表示中の QR コードで登録し直してください。")
            )
        replaced = TOTPDevice.objects.filter(user=user).exclude(pk=pending.pk).delete()[0]
        TOTPDevice.objects.filter(pk=pending.pk).update(confirmed=True)
        audit.record(
            actor,
            "second_factor.enrol",
            municipality_code=municipality_code,
            target=_target(user),
            changes={"replaced_earlier": bool(replaced)},
        )
        codes = do_renew_recovery_codes(
            user, actor=actor, step_up=True, municipality_code=municipality_code
        )
    pending.refresh_from_db()
    return pending, codes


@transaction.atomic
def do_renew_recovery_codes(
    user, *, actor: Actor, step_up: bool, municipality_code: str = ""
) -> list[str]:
    """A new set of one-time recovery codes (the old ones stop working), returned to be
    shown once. Needs step-up and a confirmed authenticator."""
    user = _locked(user)
    if not step_up:
        raise SecondFactorError(
            _(
                "回復コードを作り直すには、先に認証アプリ（または回復コード）で本人確認をしてください。"
            )
        )
    if authenticator(user) is None:
        raise SecondFactorError(_("先に認証アプリを登録してください。"))
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_CODES_NAME, confirmed=True)
    codes: set[str] = set()
    while len(codes) < RECOVERY_CODE_COUNT:
        codes.add(StaticToken.random_token())
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in sorted(codes))
    audit.record(
        actor,
        "second_factor.recovery_codes",
        municipality_code=municipality_code,
        target=_target(user),
        changes={"codes": RECOVERY_CODE_COUNT},
    )
    return sorted(codes)


@transaction.atomic
def do_reset_second_factor(principal: policy.Principal, municipality, member) -> int:
    """A tenant admin removes a member's authenticator and recovery codes (a lost phone): the
    member's step-up ends at once and they enrol again. Returns the devices removed."""
    if member.pk == principal.user_id:
        raise SecondFactorError(
            _(
                "自分の二要素認証はここでは解除できません。アカウントのページで登録し直すか、"
                "ほかの自治体管理者に依頼してください。"
            )
        )
    policy.require(
        policy.may_reset_second_factor(principal, municipality, member),
        str(policy.FORBIDDEN_SECOND_FACTOR_RESET),
    )
    member = _locked(member)
    totp, static = TOTPDevice.objects.filter(user=member), StaticDevice.objects.filter(user=member)
    removed = totp.count() + static.count()
    totp.delete()
    static.delete()
    audit.record(
        principal.actor(municipality),
        "second_factor.reset",
        municipality_code=municipality.code,
        target=_target(member),
        changes={"devices_removed": removed},
    )
    return removed
