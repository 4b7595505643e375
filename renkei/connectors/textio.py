"""Decode uploaded CSV files (UTF-8 or CP932) strictly and without loading them whole.

Detection: BOM first, then strict UTF-8 over the whole file, then strict CP932 (never
``shift_jis``, which fails on ①, Ⅰ, ㈱, 髙, 﨑). A reader that goes through the whole file
anyway can have the choice made from the file's start instead (``whole_file=False``).
Undecodable bytes are never replaced: they raise DecodeError naming the line.
"""

from __future__ import annotations

import codecs
import io
import itertools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, NamedTuple

__all__ = ["DecodeError", "detect_encoding", "normalize_text", "open_text"]

CHUNK_SIZE = 1 << 20
# Non-ASCII bytes of a file's start that settle UTF-8 against CP932 (whole_file=False): text
# in CP932 that happens to be valid UTF-8 (pairs of half-width kana can be) stays short.
DECISIVE_NON_ASCII = 4096
SAMPLE_LIMIT = 16 << 20  # bytes of the start read to find them; fewer there: check it whole
_ASCII = bytes(range(128))
SUPPORTED_ENCODINGS = ("utf-8-sig", "utf-8", "cp932")
_BOM_UTF8 = codecs.BOM_UTF8
_BOM_UTF16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # also covers UTF-32 LE
_LABELS = {"utf-8-sig": "UTF-8", "utf-8": "UTF-8", "cp932": "CP932"}
_RESAVE = "文字コードを UTF-8 か Shift_JIS(CP932) にして保存し直してください。"
# Python's cp932 decodes the unassigned single bytes 0x80, 0xA0 and 0xFD-0xFF to U+0080
# and private-use U+F8F0-U+F8F3 instead of failing. Real text never contains them, and
# accepting them would let e.g. a UTF-8 file with one stray 0xFF pass as CP932.
_CP932_UNASSIGNED = re.compile("[\x80\uf8f0-\uf8f3]")


class DecodeError(ValueError):
    """The file cannot be decoded; ``str()`` is a Japanese message for the uploader.

    ``line`` is 1-based (None when unknown), ``offset`` the 0-based byte offset of the
    first bad byte, ``encoding_tried`` the encodings attempted in order.
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        offset: int | None = None,
        encoding_tried: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.line = line
        self.offset = offset
        self.encoding_tried = encoding_tried or []


class _Failure(NamedTuple):
    line: int
    offset: int
    bad: bytes


def _chunks(f: IO[bytes], chunk_size: int) -> Iterator[bytes]:
    while chunk := f.read(chunk_size):
        yield chunk


def _scan(
    chunks: Iterable[bytes], encoding: str, base_offset: int = 0, final: bool = True
) -> _Failure | None:
    """Strictly decode ``chunks`` with an incremental decoder; return the first failure.

    The incremental decoder keeps an incomplete multibyte sequence at a chunk end
    pending, so characters split across chunks are not mistaken for errors (nor, with
    ``final`` False, one cut at the end of the chunks: the file goes on).
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    consumed = base_offset  # file offset just past the bytes fed so far
    newlines = 0
    for chunk in _with_final(chunks) if final else chunks:
        data = b"" if chunk is None else chunk
        pending = len(decoder.getstate()[0])
        try:
            text = decoder.decode(data, final=chunk is None)
        except UnicodeDecodeError as e:
            # e.object is the pending bytes followed by this chunk.
            buf = bytes(e.object)
            bad = buf[e.start : e.end]
            if len(bad) == 1 and buf[e.end : e.end + 1] >= b"\x80":
                bad = buf[e.start : e.end + 1]  # show the trail byte of a broken pair
            return _Failure(
                line=newlines + buf[: e.start].decode(encoding).count("\n") + 1,
                offset=consumed - pending + e.start,
                bad=bad,
            )
        if encoding == "cp932" and (m := _CP932_UNASSIGNED.search(text)):
            # Every cp932 character re-encodes to as many bytes as it was decoded from.
            return _Failure(
                line=newlines + text[: m.start()].count("\n") + 1,
                offset=consumed - pending + len(text[: m.start()].encode(encoding)),
                bad=m.group().encode(encoding),
            )
        newlines += text.count("\n")
        consumed += len(data)
    return None


def _with_final(chunks: Iterable[bytes]) -> Iterator[bytes | None]:
    yield from chunks
    yield None  # flush: an incomplete sequence at EOF is an error


def _scan_file(f: IO[bytes], encoding: str, chunk_size: int) -> _Failure | None:
    """Scan from the current position; ``utf-8-sig`` skips the BOM itself so that
    offsets stay exact."""
    if encoding == "utf-8-sig":
        head = f.read(len(_BOM_UTF8))
        if head == _BOM_UTF8:
            return _scan(_chunks(f, chunk_size), "utf-8", base_offset=len(head))
        return _scan(itertools.chain([head], _chunks(f, chunk_size)), "utf-8")
    return _scan(_chunks(f, chunk_size), encoding)


def _error(failure: _Failure | None, tried: list[str]) -> DecodeError:
    names = list(dict.fromkeys(_LABELS.get(e, e) for e in tried))
    labels = f"{names[0]} として" if len(names) == 1 else " ".join(f"{n} としても" for n in names)
    if failure is None:  # e.g. the file changed after detection
        return DecodeError(f"{labels}読めないバイト列があります。{_RESAVE}", encoding_tried=tried)
    shown = " ".join(f"0x{b:02X}" for b in failure.bad)
    return DecodeError(
        f"{failure.line} 行目に {labels}読めないバイト列があります"
        f"（先頭から {failure.offset + 1} バイト目: {shown}）。{_RESAVE}",
        line=failure.line,
        offset=failure.offset,
        encoding_tried=tried,
    )


@contextmanager
def _binary(source: str | os.PathLike[str] | IO[bytes]) -> Iterator[IO[bytes]]:
    """Open a path, or use a file object and rewind it to where it was afterwards."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            yield f
        return
    start = source.tell()
    try:
        yield source
    finally:
        source.seek(start)


def detect_encoding(
    path_or_binary_file: str | os.PathLike[str] | IO[bytes],
    *,
    chunk_size: int = CHUNK_SIZE,
    whole_file: bool = True,
) -> str:
    """Return "utf-8-sig", "utf-8" or "cp932" after checking the whole file decodes.

    A file object must be binary and seekable; it is read from its current position
    and rewound to it. An empty file is "utf-8". When neither UTF-8 nor CP932 works,
    the error reports whichever failure lies further into the file: the encoding
    that decoded more is most likely the intended one, so its error is the real typo.

    ``whole_file`` False, for a caller that reads the file through with ``open_text``
    next: the choice is made from the file's start, once it holds DECISIVE_NON_ASCII
    non-ASCII bytes that decode, and the strict reading checks the rest (a bad byte
    further on fails there, naming its line). That saves a pass over a big file; a file
    whose first SAMPLE_LIMIT bytes hold fewer non-ASCII bytes is checked whole, as before.
    """
    with _binary(path_or_binary_file) as f:
        start = f.tell()
        head = f.read(len(_BOM_UTF8))
        if head.startswith(_BOM_UTF16):
            raise DecodeError(
                f"UTF-16 のファイルには対応していません。{_RESAVE}", encoding_tried=[]
            )
        f.seek(start)
        if not whole_file and (chosen := _decided_by_start(f, head, chunk_size)):
            return chosen
        f.seek(start)
        if head == _BOM_UTF8:
            failure = _scan_file(f, "utf-8-sig", chunk_size)
            if failure:
                raise _error(failure, ["utf-8-sig"])
            return "utf-8-sig"

        utf8_failure = _scan_file(f, "utf-8", chunk_size)
        if utf8_failure is None:
            return "utf-8"
        f.seek(start)
        cp932_failure = _scan_file(f, "cp932", chunk_size)
        if cp932_failure is None:
            return "cp932"
        worst = max(utf8_failure, cp932_failure, key=lambda x: x.offset)
        raise _error(worst, ["utf-8", "cp932"])


def _decided_by_start(f: IO[bytes], head: bytes, chunk_size: int) -> str | None:
    """The encoding the file's start settles (see detect_encoding), or None: the start
    does not decide (too few non-ASCII bytes in its first SAMPLE_LIMIT bytes, or neither
    encoding decodes them). Reads a chunk at a time: a file's start may be long."""
    if head == _BOM_UTF8:
        return "utf-8-sig"
    start, non_ascii = f.tell(), 0
    while non_ascii < DECISIVE_NON_ASCII:
        chunk = f.read(chunk_size)
        if not chunk or f.tell() - start > SAMPLE_LIMIT:
            return None
        non_ascii += len(chunk.translate(None, _ASCII))
    size = f.tell() - start
    for encoding in ("utf-8", "cp932"):
        f.seek(start)
        if _scan(_chunks_of(f, size, chunk_size), encoding, final=False) is None:
            return encoding
    return None


def _chunks_of(f: IO[bytes], size: int, chunk_size: int) -> Iterator[bytes]:
    """The next ``size`` bytes of ``f``, a chunk at a time."""
    while size > 0 and (chunk := f.read(min(chunk_size, size))):
        size -= len(chunk)
        yield chunk


class _CheckedText:
    """Text stream proxy that turns a mid-stream UnicodeDecodeError into DecodeError.

    TextIOWrapper decodes in blocks and does not know the line, so on error the file
    is scanned again from the start to locate it (errors are the rare path). Also
    applies the cp932 unassigned-byte check that the codec itself lacks.
    """

    def __init__(self, stream: io.TextIOWrapper, path: str | os.PathLike[str], encoding: str):
        self._stream = stream
        self._path = path
        self._encoding = encoding

    def _locate(self) -> DecodeError:
        with open(self._path, "rb") as f:
            return _error(_scan_file(f, self._encoding, CHUNK_SIZE), [self._encoding])

    def _checked(self, read: Callable[[], str]) -> str:
        try:
            text = read()
        except UnicodeDecodeError:
            raise self._locate() from None
        if self._encoding == "cp932" and _CP932_UNASSIGNED.search(text):
            raise self._locate()
        return text

    def read(self, size: int = -1) -> str:
        return self._checked(lambda: self._stream.read(size))

    def readline(self, size: int = -1) -> str:
        return self._checked(lambda: self._stream.readline(size))

    def __iter__(self) -> _CheckedText:
        return self

    def __next__(self) -> str:
        return self._checked(lambda: next(self._stream))

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


@contextmanager
def open_text(path: str | os.PathLike[str], encoding: str | None = None) -> Iterator[_CheckedText]:
    """Open ``path`` as strict text for csv.reader (newline="" keeps quoted newlines).

    ``encoding`` None runs detect_encoding (a full extra pass over the file). An
    explicit "utf-8" is read as "utf-8-sig" so a BOM never ends up in the first
    header. Other codecs are refused; "shift_jis" in particular, see module doc.
    """
    if encoding is None:
        encoding = detect_encoding(path)
    name = codecs.lookup(encoding).name
    if name not in SUPPORTED_ENCODINGS:
        raise ValueError(f"unsupported encoding {encoding!r}; use one of {SUPPORTED_ENCODINGS}")
    if name == "utf-8":
        name = "utf-8-sig"
    with (
        open(path, "rb") as raw,
        io.TextIOWrapper(raw, encoding=name, errors="strict", newline="") as stream,
    ):
        yield _CheckedText(stream, path, name)


# cp932 and shift_jis decode some of the same bytes to different code points. The
# canonical form is the cp932 one: it is what Excel/Windows files decode to and it
# always encodes back to cp932 for exports.
_CP932_FORMS = str.maketrans(
    {
        "\u301c": "\uff5e",  # 〜 WAVE DASH -> ～ FULLWIDTH TILDE (0x8160)
        "\u2016": "\u2225",  # ‖ DOUBLE VERTICAL LINE -> ∥ PARALLEL TO (0x8161)
        "\u2212": "\uff0d",  # − MINUS SIGN -> － FULLWIDTH HYPHEN-MINUS (0x817C)
        "\u00a2": "\uffe0",  # ¢ -> ￠ (0x8191)
        "\u00a3": "\uffe1",  # £ -> ￡ (0x8192)
        "\u00ac": "\uffe2",  # ¬ -> ￢ (0x81CA)
        "\u00a6": "\uffe4",  # ¦ -> ￤ (0xFA55)
    }
)


def normalize_text(value: str) -> str:
    """Canonicalize a cell for comparison: cp932 forms, no surrounding whitespace.

    〜→～, ‖→∥, −→－, ¢→￠, £→￡, ¬→￢, ¦→￤ (the cp932 side of each known
    cp932/shift_jis mapping difference), then strip whitespace incl. U+3000.
    Width is left alone; see eras.normalize_width for that.
    """
    return value.translate(_CP932_FORMS).strip()
