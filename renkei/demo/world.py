"""The demo's world: its municipalities, their schools' codes and the demo accounts.

Plain data, imported by the synthetic data (:mod:`renkei.demo.synth`) and the demo's setup
(:mod:`renkei.demo.seed`).
"""

from __future__ import annotations

import hashlib

DEMO_PREFECTURE = "13"
DEMO_MUNICIPALITIES = [("131130", "渋谷区"), ("131041", "新宿区"), ("132012", "八王子市")]
# Small towns and villages beside them (code, name, pupils): most of a prefecture's
# municipalities are this size, and the 都道府県 page shows what they do to its tables.
DEMO_SMALL_MUNICIPALITIES = [
    ("133035", "瑞穂町", 320),
    ("133051", "日の出町", 180),
    ("133078", "檜原村", 45),
    ("133086", "奥多摩町", 70),
    ("133621", "利島村", 20),
]
# School years before the current one in the boards' municipalities (個人カルテ, 長期欠席 over years).
DEMO_PAST_YEARS = 2
DEMO_PASSWORD = "renkei-demo"  # noqa: S105 - demo accounts on 127.0.0.1 only


def demo_school_codes(municipality_code: str) -> list[str]:
    """Deterministic 学校コード for a demo municipality's schools: two primary, one lower
    secondary. Synthetic data uses the same codes."""
    pref, local = municipality_code[:2], municipality_code[2:5]
    codes = []
    for school_type, number in (("B1", 1), ("B1", 2), ("C1", 1)):
        body = f"{school_type}{pref}2{local}{number:04d}"
        codes.append(body + str(sum(int(c) for c in body[2:]) % 10))
    return codes


def demo_users(municipality_code: str) -> list[tuple[str, str, list[str]]]:
    """(username, role, schools) of the demo accounts of one municipality."""
    first_school = demo_school_codes(municipality_code)[0]
    return [
        (f"admin-{municipality_code}", "tenant_admin", []),
        (f"teacher-{municipality_code}", "teacher", [first_school]),
        (f"manager-{municipality_code}", "school_manager", [first_school]),
        (f"board-{municipality_code}", "board_analyst", []),
        (f"nurse-{municipality_code}", "school_nurse", [first_school]),
        (f"sc-{municipality_code}", "school_counselor", [first_school]),
        (f"ssw-{municipality_code}", "school_social_worker", [first_school]),
    ]


def totp_secret_hex(username: str) -> str:
    """Demo-only, deterministic TOTP key so the printed secret stays valid across runs."""
    return hashlib.sha1(f"renkei-demo-totp:{username}".encode()).hexdigest()  # noqa: S324
