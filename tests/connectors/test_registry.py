"""Connectors are found through the entry-point group; a broken or incompatible package is
reported and skipped, never crashes the platform."""

import subprocess
import sys

import pytest

from renkei.connectors import registry

BUILT_IN = {"oneroster", "c4th", "suzuki", "msgraph", "xapi", "checkin", "drill"}


def test_built_ins_and_the_example_vendor_are_installed():
    connectors, problems = registry.discover()
    assert BUILT_IN <= set(connectors)
    assert "kenko" in connectors  # examples/renkei-connector-kenko, installed by dev.py
    assert connectors["kenko"].__module__ == "renkei_connector_kenko"
    assert problems == []


@pytest.fixture
def vendor_packages(tmp_path, monkeypatch):
    """Three installed (on sys.path) vendor distributions: one whose module fails to import,
    one written for another SDK major version, one that is not a connector at all."""
    modules = {
        "broken_vendor.py": "raise ImportError('vendor bug: missing dependency xyz')\n",
        "future_vendor.py": (
            "from renkei.connectors.sdk import Connector\n"
            "class Future(Connector):\n    name = 'future'\n"
            "    sdk_version = '2'\n"
        ),
        "odd_vendor.py": "class NotAConnector:\n    pass\n",
    }
    for name, body in modules.items():
        (tmp_path / name).write_text(body)
    dist = tmp_path / "vendor_bundle-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vendor-bundle\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[renkei.connectors]\nbroken = broken_vendor:Broken\nfuture = future_vendor:Future\n"
        "odd = odd_vendor:NotAConnector\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_broken_packages_are_reported_and_skipped(vendor_packages):
    connectors, problems = registry.discover()
    assert BUILT_IN <= set(connectors)
    assert not {"broken", "future", "odd"} & set(connectors)
    by_name = {p.entry_point: p for p in problems}
    assert "vendor bug" in by_name["broken"].message
    assert "SDK バージョン 2" in by_name["future"].message
    assert "サブクラスではありません" in by_name["odd"].message
    assert {p.package for p in problems} == {"vendor-bundle"}
    with pytest.raises(registry.UnknownConnector, match="読み込めませんでした"):
        registry.get("broken")
    with pytest.raises(registry.UnknownConnector, match="インストールされていません"):
        registry.get("nothing-like-this")


def test_renkei_connectors_lists_streams_and_survives_a_broken_package(vendor_packages):
    import os

    env = {
        **os.environ,
        "PYTHONPATH": f"{vendor_packages}{os.pathsep}" + os.environ.get("PYTHONPATH", ""),
    }
    result = subprocess.run(
        [sys.executable, "-m", "renkei.site.cli", "connectors"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "c4th" in result.stdout and "attendance" in result.stdout
    assert "kenko" in result.stdout and "health" in result.stdout
    assert "読み込めないコネクタ: broken" in result.stderr
