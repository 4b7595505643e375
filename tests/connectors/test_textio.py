import codecs
import csv
import io

import pytest

from renkei.connectors import textio
from renkei.connectors.textio import DecodeError, detect_encoding, normalize_text, open_text

# Characters that cp932 has and shift_jis lacks (PITFALLS.md "Japanese CSV").
CP932_ONLY = "①Ⅰ㈱髙﨑～"
CSV_TEXT = f'氏名,備考\r\n{CP932_ONLY},"一行目\r\n二行目"\r\n山田,～\r\n'


def write(tmp_path, data: bytes, name="data.csv"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_utf8_with_bom(tmp_path):
    path = write(tmp_path, codecs.BOM_UTF8 + "名前,学年\n髙橋,3\n".encode())
    assert detect_encoding(path) == "utf-8-sig"
    with open_text(path) as f:
        assert list(csv.reader(f)) == [["名前", "学年"], ["髙橋", "3"]]


def test_plain_utf8(tmp_path):
    path = write(tmp_path, "名前,学年\n①,Ⅰ\n".encode())
    assert detect_encoding(path) == "utf-8"


def test_ascii_is_utf8(tmp_path):
    assert detect_encoding(write(tmp_path, b"a,b\n1,2\n")) == "utf-8"


def test_empty_file_is_utf8(tmp_path):
    path = write(tmp_path, b"")
    assert detect_encoding(path) == "utf-8"
    with open_text(path) as f:
        assert list(csv.reader(f)) == []


def test_cp932_only_characters(tmp_path):
    path = write(tmp_path, CSV_TEXT.encode("cp932"))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("shift_jis")  # the reason cp932 is used
    assert detect_encoding(path) == "cp932"


def test_open_text_csv_reader_cp932_with_quoted_newline(tmp_path):
    path = write(tmp_path, CSV_TEXT.encode("cp932"))
    with open_text(path) as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["氏名", "備考"],
        [CP932_ONLY, "一行目\r\n二行目"],
        ["山田", "～"],
    ]


def test_invalid_byte_on_line_3(tmp_path):
    path = write(tmp_path, b"id,name\n1,abc\n2,\x82\xff\n3,ok\n")
    with pytest.raises(DecodeError) as exc:
        detect_encoding(path)
    err = exc.value
    assert err.line == 3
    assert err.offset == 16
    assert err.encoding_tried == ["utf-8", "cp932"]
    assert str(err) == (
        "3 行目に UTF-8 としても CP932 としても読めないバイト列があります"
        "（先頭から 17 バイト目: 0x82 0xFF）。"
        "文字コードを UTF-8 か Shift_JIS(CP932) にして保存し直してください。"
    )
    with pytest.raises(DecodeError, match=r"^3 行目に"):
        with open_text(path):
            pass


def test_cp932_file_with_bad_byte_later_reports_that_line(tmp_path):
    # UTF-8 already fails on line 1; the CP932 error further down is the real one.
    data = "名前\n".encode("cp932") + b"ok\nok\nbad\x82\xff\n"
    with pytest.raises(DecodeError) as exc:
        detect_encoding(write(tmp_path, data))
    assert exc.value.line == 4


def test_utf8_file_with_bad_byte_later_reports_that_line(tmp_path):
    data = "名前\n".encode() + b"ok\n" * 5 + b"\xff\n"
    with pytest.raises(DecodeError) as exc:
        detect_encoding(write(tmp_path, data))
    assert exc.value.line == 7
    assert "0xFF）" in str(exc.value)


def test_truncated_sequence_at_eof(tmp_path):
    data = "あ\nい".encode()[:-1]  # last character cut in half; also invalid cp932
    with pytest.raises(DecodeError) as exc:
        detect_encoding(write(tmp_path, data))
    assert exc.value.line == 2


@pytest.mark.parametrize("bom", [codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE])
def test_utf16_rejected(tmp_path, bom):
    codec = "utf-16-le" if bom == codecs.BOM_UTF16_LE else "utf-16-be"
    path = write(tmp_path, bom + "名前,学年\n".encode(codec))
    with pytest.raises(DecodeError, match=r"^UTF-16 のファイルには対応していません") as exc:
        detect_encoding(path)
    assert exc.value.line is None
    with pytest.raises(DecodeError):
        with open_text(path):
            pass


def test_bom_file_with_bad_byte(tmp_path):
    path = write(tmp_path, codecs.BOM_UTF8 + b"a\nb\xff\n")
    with pytest.raises(DecodeError) as exc:
        detect_encoding(path)
    assert (exc.value.line, exc.value.offset) == (2, 6)
    assert exc.value.encoding_tried == ["utf-8-sig"]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 5, 7])
def test_multibyte_split_across_chunks(tmp_path, chunk_size):
    # With tiny chunks every 3-byte UTF-8 / 2-byte CP932 character gets split;
    # a naive per-chunk decode would fail UTF-8 and wrongly fall back to CP932.
    text = "髙橋,①\n﨑,～\n"
    assert detect_encoding(write(tmp_path, text.encode()), chunk_size=chunk_size) == "utf-8"
    path = write(tmp_path, text.encode("cp932"), "sjis.csv")
    assert detect_encoding(path, chunk_size=chunk_size) == "cp932"
    bom = write(tmp_path, codecs.BOM_UTF8 + text.encode(), "bom.csv")
    assert detect_encoding(bom, chunk_size=chunk_size) == "utf-8-sig"


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 5, 7, 1 << 20])
def test_error_position_independent_of_chunk_size(tmp_path, chunk_size):
    data = "あいう\nえお\n".encode() + b"x\xffy\n"
    with pytest.raises(DecodeError) as exc:
        detect_encoding(write(tmp_path, data), chunk_size=chunk_size)
    assert (exc.value.line, exc.value.offset) == (3, len("あいう\nえお\n".encode()) + 1)


def test_binary_file_object_is_rewound(tmp_path):
    f = io.BytesIO(b"skip" + "名前\n".encode("cp932"))
    f.seek(4)
    assert detect_encoding(f) == "cp932"
    assert f.tell() == 4


def test_open_text_explicit_encoding_reports_line(tmp_path):
    # Detection skipped: the error surfaces while reading, still with its line.
    path = write(tmp_path, "名前\n山田\n".encode("cp932") + b"\x82\xff\n")
    with pytest.raises(DecodeError) as exc:
        with open_text(path, encoding="cp932") as f:
            list(csv.reader(f))
    assert exc.value.line == 3
    assert exc.value.encoding_tried == ["cp932"]


def test_open_text_explicit_utf8_drops_bom(tmp_path):
    path = write(tmp_path, codecs.BOM_UTF8 + b"id\n1\n")
    with open_text(path, encoding="utf-8") as f:
        assert f.read() == "id\n1\n"


@pytest.mark.parametrize("encoding", ["shift_jis", "sjis", "latin-1", "utf-16"])
def test_open_text_refuses_other_encodings(tmp_path, encoding):
    with pytest.raises(ValueError):
        with open_text(write(tmp_path, b"a\n"), encoding=encoding):
            pass


def test_normalize_text_wave_dash_and_friends():
    # shift_jis forms and cp932 forms compare equal after normalization.
    sjis = "〜‖−¢£¬¦"
    cp932 = "～∥－￠￡￢￤"
    assert normalize_text(sjis) == cp932
    assert normalize_text(cp932) == cp932
    decoded_sjis = "\x81\x60".encode("latin-1").decode("shift_jis")
    decoded_cp932 = "\x81\x60".encode("latin-1").decode("cp932")
    assert normalize_text(decoded_sjis) == normalize_text(decoded_cp932)
    normalize_text(sjis).encode("cp932")  # canonical forms are cp932-encodable


def test_normalize_text_strips_whitespace_keeps_inner():
    assert normalize_text("\u3000 山田\u3000太郎 \t\r\n") == "山田\u3000太郎"
    assert normalize_text("") == ""


@pytest.mark.parametrize("byte", [b"\x80", b"\xa0", b"\xfd", b"\xfe", b"\xff"])
def test_cp932_unassigned_single_bytes_are_errors(tmp_path, byte):
    # Python's cp932 codec quietly maps these to U+0080 / private use; we refuse them.
    data = "名前\n".encode("cp932") + b"a" + byte + b"\n"
    path = write(tmp_path, data)
    with pytest.raises(DecodeError) as exc:
        detect_encoding(path, chunk_size=3)
    assert (exc.value.line, exc.value.offset) == (2, 6)
    with pytest.raises(DecodeError) as exc:
        with open_text(path, encoding="cp932") as f:
            f.read()
    assert exc.value.line == 2


def test_cp932_trail_bytes_0x80_0xa0_are_fine(tmp_path):
    text = "÷\n"  # 0x81 0x80 in cp932
    assert text.encode("cp932") == b"\x81\x80\n"
    assert detect_encoding(write(tmp_path, text.encode("cp932"))) == "cp932"


# -- deciding from the file's start (whole_file=False) --------------------------------------

DECISIVE_ROWS = "".join(f"{n},髙橋①,欠席\n" for n in range(1, 1001))  # 10+ non-ASCII bytes a row


def test_start_decides_cp932_and_the_reading_checks_the_rest(tmp_path):
    # A bad byte past the decisive start: detection from the start does not read that far,
    # the whole-file check and the strict reading both name its line.
    path = write(tmp_path, ("id,名前,理由\n" + DECISIVE_ROWS).encode("cp932") + b"x,\x82\xff\n")
    assert detect_encoding(path, whole_file=False, chunk_size=4096) == "cp932"
    with pytest.raises(DecodeError) as whole:
        detect_encoding(path)
    with pytest.raises(DecodeError) as reading:
        with open_text(path, "cp932") as f:
            list(csv.reader(f))
    assert whole.value.line == reading.value.line == 1002
    assert str(reading.value).startswith("1002 行目に CP932 として読めないバイト列があります")


def test_start_decides_utf8_with_a_character_cut_at_a_chunk_end(tmp_path):
    data = ("id,名前,理由\n" + DECISIVE_ROWS).encode()
    path = write(tmp_path, data + b"x,\xff\n")
    # 4099 = 4096 + 3: 4096 is not a multiple of a row's length, so chunks end mid-character
    assert detect_encoding(path, whole_file=False, chunk_size=4099) == "utf-8"
    with pytest.raises(DecodeError, match=r"^1002 行目に UTF-8 として"):
        with open_text(path, "utf-8") as f:
            list(csv.reader(f))


def test_ascii_start_reads_on_to_the_first_non_ascii_bytes(tmp_path):
    data = b"id,note\n" + b"1,ok\n" * 5000 + ("2,髙橋\n" * 2000).encode("cp932")
    path = write(tmp_path, data)
    assert detect_encoding(path, whole_file=False, chunk_size=1024) == "cp932"
    with open_text(path, "cp932") as f:
        assert list(csv.reader(f))[-1] == ["2", "髙橋"]


def test_short_of_a_decisive_start_the_whole_file_is_checked(tmp_path):
    path = write(tmp_path, b"id,name\n1,abc\n2,\x82\xff\n3,ok\n")
    with pytest.raises(DecodeError, match=r"^3 行目に UTF-8 としても CP932 としても"):
        detect_encoding(path, whole_file=False)
    assert detect_encoding(write(tmp_path, CSV_TEXT.encode("cp932")), whole_file=False) == "cp932"


def test_a_bom_decides_at_once(tmp_path):
    path = write(tmp_path, codecs.BOM_UTF8 + "名前\n髙橋\n".encode() + b"\xff\n")
    assert detect_encoding(path, whole_file=False) == "utf-8-sig"
    with pytest.raises(DecodeError, match=r"^3 行目"):
        with open_text(path, "utf-8-sig") as f:
            list(csv.reader(f))


def test_a_start_too_sparse_in_non_ascii_bytes_is_checked_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(textio, "SAMPLE_LIMIT", 64 * 1024)
    data = ("id,名前\n" + "1,ok\n" * 40_000 + DECISIVE_ROWS).encode("cp932") + b"x,\x82\xff\n"
    path = write(tmp_path, data)  # 4,096 non-ASCII bytes lie past the first 64 KB
    with pytest.raises(DecodeError, match=r"^41002 行目に UTF-8 としても CP932 としても"):
        detect_encoding(path, whole_file=False, chunk_size=4096)
    monkeypatch.setattr(textio, "SAMPLE_LIMIT", 16 << 20)
    assert detect_encoding(path, whole_file=False, chunk_size=4096) == "cp932"
