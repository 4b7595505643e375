"""The 転校 transfer package: one pupil's records, sealed for one receiving municipality.

docs/transfer.md is the format's description for officers and vendors; this module writes and
opens it (no database here: the export and the ``transfer`` connector use it).

A package is a zip of two members:

* ``transfer.json`` — the header, in clear, with no personal data: format and version, the
  transfer id, the sending and the destination municipality, when it was made, and the
  parameters of the encryption. It is authenticated (the AEAD's associated data), so a changed
  destination or version is detected like any other change;
* ``payload.bin`` — AES-256-GCM over an inner zip (manifest.json, the OneRoster CSV, the
  records as JSON, the learning logs as xAPI statements). The key is derived with scrypt from
  a one-time transfer code that the sending officer is shown once and hands to the receiving
  school with the 転学 paperwork. The code is never stored; without it the package is noise.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import json
import os
import secrets
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

FORMAT = "renkei-transfer"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
HEADER, PAYLOAD, MANIFEST = "transfer.json", "payload.bin", "manifest.json"
# scrypt: 32 MiB and about 0.1 s per try; stored in the header so a later version may raise it.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
MAX_PACKAGE_BYTES = 200 * 1024 * 1024  # one pupil's records: far below this
# Crockford's base32 (no I, L, O, U): read aloud and typed from paper without confusion.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 20  # 100 bits
_CODE_FIXES = str.maketrans({"O": "0", "I": "1", "L": "1"})


class PackageError(Exception):
    """The package cannot be opened or is not for us (Japanese message, says what to do)."""


def new_transfer_code() -> str:
    """A one-time transfer code, shown as five groups of four: ``7K2M-…``."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normalize_code(code: str) -> str:
    """What a person typed (full width, lower case, spaces or hyphens) as the code's letters."""
    text = unicodedata.normalize("NFKC", code or "").upper().translate(_CODE_FIXES)
    return "".join(c for c in text if c not in "- \u3000")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    return base64.b64decode(text.encode("ascii"), validate=True)


def _keys(code: str, salt: bytes, n: int, r: int, p: int) -> tuple[bytes, bytes]:
    """(the AES key, a check value that tells a wrong code from a changed package)."""
    derived = Scrypt(salt=salt, length=64, n=n, r=r, p=p).derive(normalize_code(code).encode())
    check = hmac.new(derived[32:], b"renkei-transfer key check", hashlib.sha256).digest()[:16]
    return derived[:32], check


@dataclass
class Package:
    """An opened package: its clear header, its manifest and its inner files by path."""

    header: dict[str, Any]
    manifest: dict[str, Any]
    files: dict[str, bytes]


def header_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The clear part of a manifest: what a receiving office may read before the code."""
    return {
        "format": manifest["format"],
        "format_version": manifest["format_version"],
        "transfer_id": manifest["transfer_id"],
        "sending_municipality": manifest["sending_municipality"],
        "destination_municipality": manifest["destination_municipality"],
        "created_at": manifest["created_at"],
    }


def seal(manifest: dict[str, Any], files: dict[str, bytes], code: str) -> bytes:
    """The package file: ``manifest`` and ``files`` (inner path → bytes) encrypted under a key
    derived from ``code``."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2))
        for name, content in sorted(files.items()):
            zf.writestr(name, content)
    salt, nonce = os.urandom(16), os.urandom(12)
    key, check = _keys(code, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    header = {
        **header_of(manifest),
        "encryption": {
            "cipher": "AES-256-GCM",
            "kdf": "scrypt",
            "salt": _b64(salt),
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "nonce": _b64(nonce),
            "key_check": _b64(check),
        },
    }
    header_bytes = json.dumps(header, ensure_ascii=False, indent=2).encode("utf-8")
    payload = AESGCM(key).encrypt(nonce, inner.getvalue(), header_bytes)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(HEADER, header_bytes)
        zf.writestr(PAYLOAD, payload)
    return out.getvalue()


_BROKEN = (
    "転校パッケージが壊れているか、書き換えられています。送付元の自治体に"
    "パッケージを作り直して送ってもらってください。"
)


def _outer(data: bytes) -> tuple[bytes, dict[str, Any], bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if HEADER not in names or PAYLOAD not in names:
                raise PackageError(
                    f"転校パッケージではありません（{HEADER} と {PAYLOAD} を含む zip のはずです）。"
                )
            # Read before anything is authenticated: sizes as declared, never a zip bomb.
            if zf.getinfo(HEADER).file_size > 64 * 1024 or (
                zf.getinfo(PAYLOAD).file_size > MAX_PACKAGE_BYTES
            ):
                raise PackageError(_BROKEN)
            header_bytes, payload = zf.read(HEADER), zf.read(PAYLOAD)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as e:
        if isinstance(e, zipfile.BadZipFile) and "CRC" in str(e):
            raise PackageError(_BROKEN) from None
        raise PackageError(
            "転校パッケージとして読めません（zip ファイルではありません）。"
            "送付元から受け取ったファイルをそのまま指定してください。"
        ) from None
    try:
        header = json.loads(header_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise PackageError(_BROKEN) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise PackageError(
            f"Renkei の転校パッケージではありません（{HEADER} の format が違います）。"
        )
    return header_bytes, header, payload


def read_header(data: bytes) -> dict[str, Any]:
    """The clear header (no code needed): checks that it is a package at all."""
    return _outer(data)[1]


def open_package(data: bytes, code: str, *, destination_code: str) -> Package:
    """Check and decrypt a package meant for ``destination_code``. Raises PackageError, in
    this order: not a package, a format version we do not read, another destination, a wrong
    code, a changed or broken package, a manifest that does not match its header."""
    if len(data) > MAX_PACKAGE_BYTES:
        raise PackageError("転校パッケージが大きすぎます（200 MB まで）。")
    header_bytes, header, payload = _outer(data)
    version = header.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise PackageError(
            f"転校パッケージの形式のバージョン {version} には対応していません"
            f"（対応しているのは {', '.join(map(str, sorted(SUPPORTED_VERSIONS)))}）。"
            "送付元に、このバージョンで作り直せるか確かめてください。"
        )
    destination = (header.get("destination_municipality") or {}).get("code")
    if destination != destination_code:
        sender = header.get("sending_municipality") or {}
        raise PackageError(
            f"この転校パッケージは自治体コード {destination} 宛てです（この自治体は "
            f"{destination_code}）。送付元の{sender.get('name', '')}（{sender.get('code', '')}）"
            "に宛先を確かめてください。取り込みは行っていません。"
        )
    if not normalize_code(code):
        raise PackageError(
            "転校コードが入力されていません。管理 › 転校 の転入の画面で、転学の書類に"
            "記された転校コードとともに取り込んでください。"
        )
    try:
        enc = header["encryption"]
        salt, nonce, check = _unb64(enc["salt"]), _unb64(enc["nonce"]), _unb64(enc["key_check"])
        key, expected = _keys(code, salt, int(enc["n"]), int(enc["r"]), int(enc["p"]))
    except (KeyError, TypeError, ValueError):
        raise PackageError(_BROKEN) from None
    if not hmac.compare_digest(check, expected):
        raise PackageError(
            "転校コードが違います。転学の書類に記された転校コード（4 文字ずつ 5 組）を"
            "確かめて入力し直してください。"
        )
    try:
        inner = AESGCM(key).decrypt(nonce, payload, header_bytes)
    except InvalidTag:
        raise PackageError(_BROKEN) from None
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(inner)) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                files[info.filename] = zf.read(info)
    try:
        manifest = json.loads(files.pop(MANIFEST))
    except (KeyError, json.JSONDecodeError, UnicodeDecodeError):
        raise PackageError(_BROKEN) from None
    if not isinstance(manifest, dict) or header_of_or_none(manifest) != {
        k: v for k, v in header.items() if k != "encryption"
    }:
        raise PackageError(_BROKEN)
    return Package(header=header, manifest=manifest, files=files)


def header_of_or_none(manifest: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return header_of(manifest)
    except KeyError:
        return None


def check_consent(manifest: dict[str, Any]) -> dict[str, str]:
    """The guardian's consent the manifest records (who, on which day, recorded by whom), or
    PackageError: a package without it is never imported."""
    consent = manifest.get("consent")
    fields = ("given_by", "given_on", "recorded_by")
    if not isinstance(consent, dict) or not all(
        isinstance(consent.get(f), str) and consent[f].strip() for f in fields
    ):
        raise PackageError(
            "この転校パッケージには保護者の同意の記録（同意した人・同意日・記録した職員）が"
            "ありません。同意のない記録は取り込めません。送付元に確かめてください。"
        )
    try:
        dt.date.fromisoformat(consent["given_on"])
    except ValueError:
        raise PackageError(
            f"この転校パッケージの同意日「{consent['given_on']}」が日付ではありません。"
        ) from None
    return {f: consent[f] for f in fields}
