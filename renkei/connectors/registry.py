"""Finding connectors: built-ins and vendor packages register under the entry-point group
``renkei.connectors``. A broken or incompatible package is reported and skipped; it never
stops the platform."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import entry_points

from renkei.connectors.sdk import SDK_VERSION, Connector

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "renkei.connectors"


@dataclass(frozen=True)
class LoadProblem:
    entry_point: str
    package: str
    message: str


class UnknownConnector(LookupError):
    pass


def discover() -> tuple[dict[str, type[Connector]], list[LoadProblem]]:
    """Installed connectors by name, and the packages that could not be loaded (with why)."""
    found: dict[str, type[Connector]] = {}
    problems: list[LoadProblem] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        package = ep.dist.name if ep.dist else "?"
        try:
            cls = ep.load()
            _check(cls, ep.name)
        except Exception as e:  # a vendor package may fail in any way; report, never crash
            problems.append(LoadProblem(ep.name, package, f"{type(e).__name__}: {e}"))
            log.warning("connector %s from %s skipped: %s", ep.name, package, e)
            continue
        if cls.name in found and found[cls.name] is not cls:
            problems.append(
                LoadProblem(ep.name, package, f"名前「{cls.name}」のコネクタが既にあります")
            )
            continue
        found[cls.name] = cls
    return dict(sorted(found.items())), problems


def _check(cls: object, entry_name: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise TypeError("renkei.connectors.sdk.Connector のサブクラスではありません")
    if not getattr(cls, "name", None):
        raise TypeError("name がありません")
    major = SDK_VERSION.split(".")[0]
    if str(cls.sdk_version).split(".")[0] != major:
        raise TypeError(
            f"SDK バージョン {cls.sdk_version} 用です（このプラットフォームは {SDK_VERSION}）"
        )


def get(name: str) -> type[Connector]:
    connectors, problems = discover()
    if name in connectors:
        return connectors[name]
    broken = [p for p in problems if p.entry_point == name]
    if broken:
        raise UnknownConnector(f"コネクタ「{name}」は読み込めませんでした: {broken[0].message}")
    raise UnknownConnector(
        f"コネクタ「{name}」はインストールされていません（使えるもの: {', '.join(connectors) or 'なし'}）。"
    )
