"""The reasons a rejected value gets (quarantined rows, connector settings) are Japanese and
say what to do, whatever pydantic's own wording."""

from __future__ import annotations

import pytest
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from renkei.connectors.sdk import japanese_reason


class Settings(BaseModel, extra="forbid"):
    days: int = Field(default=7, ge=1, le=28)
    code: str = Field(default="131130", pattern=r"^\d{6}$")
    enabled: bool = True
    at: AwareDatetime | None = None


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"days": 40}, "範囲外の値です（28 以下にしてください）"),
        ({"days": 0}, "範囲外の値です（1 以上にしてください）"),
        ({"days": 2.5}, "整数で指定してください"),
        ({"days": "七"}, "数値として読めません"),
        ({"code": "13113X"}, r"使えない文字が含まれています（形式: ^\d{6}$）"),
        ({"enabled": "たぶん"}, "はい／いいえで指定してください"),
        ({"colour": "red"}, "この設定項目はありません"),
        ({"at": "2025-06-02T09:00:00"}, "時差（+09:00 や Z）のない日時です"),
    ],
)
def test_reasons_are_japanese(values, reason):
    with pytest.raises(ValidationError) as caught:
        Settings(**values)
    assert japanese_reason(caught.value.errors()[0]) == reason
