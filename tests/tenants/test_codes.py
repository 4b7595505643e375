import pytest

from renkei.tenants.codes import (
    CodeError,
    check_school_code_digit,
    municipality_check_digit,
    schema_name_for,
    school_code_check_digit,
    validate_municipality_code,
    validate_school_code,
)

REAL_CODES = ["131130", "131041", "132012", "271004", "011002", "141003", "401307", "472018"]


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_municipality_codes_pass(code):
    assert validate_municipality_code(code) == code


def test_every_single_digit_corruption_of_shibuya_is_rejected():
    code = "131130"
    corruptions = [
        code[:i] + d + code[i + 1 :] for i in range(6) for d in "0123456789" if d != code[i]
    ]
    assert len(corruptions) == 54
    accepted = []
    for bad in corruptions:
        try:
            validate_municipality_code(bad)
            accepted.append(bad)
        except CodeError:
            pass
    assert accepted == []


def test_wrong_check_digit_message_names_expected_digit():
    with pytest.raises(CodeError) as e:
        validate_municipality_code("131131")
    assert "131131" in str(e.value) and "131130" in str(e.value)


@pytest.mark.parametrize("bad", ["13113", "1311300", "13113a", "", "１３１１３０", " 131130"])
def test_malformed_codes_are_not_six_digits(bad):
    with pytest.raises(CodeError, match="6 桁"):
        validate_municipality_code(bad)


def test_unknown_prefecture_is_named():
    code = "48200" + str(municipality_check_digit("48200"))
    with pytest.raises(CodeError, match="都道府県コード「48」"):
        validate_municipality_code(code)


@pytest.mark.parametrize(
    "attack",
    [
        "131130'; DROP SCHEMA public CASCADE; --",
        'm131130"; DROP',
        "public",
        "131130\x00",
        "131130 OR 1=1",
        "../131130",
    ],
)
def test_schema_names_only_from_valid_codes(attack):
    with pytest.raises(CodeError):
        schema_name_for(attack)


def test_schema_name_is_m_plus_code():
    assert schema_name_for("131130") == "m131130"


@pytest.mark.parametrize("code", ["B113211300012", "C127210000015", "F112310102342"])
def test_school_codes_structurally_valid(code):
    assert validate_school_code(code) == code


@pytest.mark.parametrize(
    "bad", ["B11321130001", "Z113211300012", "B199211300012", "B113911300012", "b113211300012"]
)
def test_school_codes_rejected(bad):
    with pytest.raises(CodeError):
        validate_school_code(bad)


# Published 学校コード (Wikipedia's and Wikidata's examples, 国土数値情報's school districts):
# the check digit method was found from them, so each must pass.
PUBLISHED_SCHOOL_CODES = [
    "F113110102700",  # 東京大学
    "F112310102342",
    "D114310000222",  # 慶應義塾高等学校
    "H228310000663",  # 宝塚音楽学校
    "B108254200026",  # 五霞町立五霞西小学校
    "B113211700337",  # 北区立田端小学校
    "C113211700102",  # 北区立田端中学校
    "A113311700033",
    "A113311700284",
]


@pytest.mark.parametrize("code", PUBLISHED_SCHOOL_CODES)
def test_published_school_codes_have_a_right_check_digit(code):
    assert school_code_check_digit(code) == int(code[12])
    assert check_school_code_digit(code) == code


@pytest.mark.parametrize("code", PUBLISHED_SCHOOL_CODES)
def test_every_other_last_digit_is_refused_and_the_right_one_named(code):
    for digit in "0123456789":
        wrong = code[:12] + digit
        if digit == code[12]:
            continue
        with pytest.raises(CodeError, match=f"検査数字が違います.*正しくは {code}"):
            check_school_code_digit(wrong)


def test_a_swapped_pair_of_digits_is_caught():
    # 東京大学 with the school number's 0 and 2 swapped: the typo the digit exists for
    with pytest.raises(CodeError, match="検査数字"):
        check_school_code_digit("F113110120700")


def test_check_digit_needs_a_well_formed_code_first():
    with pytest.raises(CodeError, match="形式が違います"):
        check_school_code_digit("F11311010270")
