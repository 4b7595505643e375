"""The committed widget bundle matches its sources.

The digest test needs only Python: build.mjs writes the sources' digest on the bundle's first
line, so a source change without a rebuild (or a rebuild without committing the bundle) fails
here. The reproducibility test rebuilds from a clean copy with the pinned npm packages and
compares bytes; without node/npm it is skipped with a message - unless CI=true, where a
missing tool is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from renkei.graphql.widgets import bundle

REBUILD = (
    f"ウィジェットのバンドルがソースと一致しません。`{bundle.BUILD_COMMAND}` を実行し、"
    "static/renkei/widgets.js をコミットしてください "
    f"(run `{bundle.BUILD_COMMAND}` and commit static/renkei/widgets.js)."
)


def test_the_committed_bundle_was_built_from_the_current_sources():
    assert bundle.committed_digest() == bundle.source_digest(), REBUILD


def test_the_sources_are_the_build_inputs():
    assert bundle.SOURCES[:3] == ["build.mjs", "package-lock.json", "package.json"]
    assert "src/index.js" in bundle.SOURCES
    assert "src/graphql.js" in bundle.SOURCES
    assert all(not path.startswith(("node_modules/", "static/")) for path in bundle.SOURCES)


def test_the_bundle_keeps_chart_js_license_and_is_deterministic_text():
    text = bundle.BUNDLE.read_bytes()
    assert text.startswith(b"/*! renkei-widgets sources:sha256=")
    assert b"Chart.js" in text and b"MIT" in text
    assert b"\r\n" not in text
    assert str(bundle.ROOT).encode() not in text  # no absolute paths
    assert str(bundle.ROOT.parent).encode() not in text


@pytest.fixture(scope="session")
def npm_and_node():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        message = (
            "node と npm が見つからないため、ウィジェットのバンドルを再現できるかは確認しません"
            "（Node.js 20 以上を入れてください）"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return node, npm


@pytest.mark.slow
def test_a_clean_build_reproduces_the_committed_bundle(npm_and_node, tmp_path):
    # given: a copy of the sources without node_modules and without the bundle
    node, npm = npm_and_node
    work = tmp_path / "widgets"
    shutil.copytree(
        bundle.ROOT, work, ignore=shutil.ignore_patterns("node_modules", "static", "__pycache__")
    )

    # when
    install = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    build = subprocess.run(
        [node, "build.mjs"], cwd=work, capture_output=True, text=True, timeout=300
    )
    assert build.returncode == 0, build.stdout + build.stderr

    # then
    rebuilt = (work / "static" / "renkei" / "widgets.js").read_bytes()
    assert rebuilt == bundle.BUNDLE.read_bytes(), REBUILD
