"""The container image: Dockerfile, .dockerignore and the gunicorn configuration it runs.

Static checks only (no Docker daemon needed): the file is parsed with dockerfile-parse.
"""

from __future__ import annotations

import ast
import fnmatch
import io
import json
import re
import runpy
import shlex
import sys
import types
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
GUNICORN_CONF = ROOT / "infra" / "gunicorn.conf.py"

SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|KEY|CREDENTIAL", re.IGNORECASE)


def _parse() -> DockerfileParser:
    # From a file object: the parser then never writes to the repository's Dockerfile.
    return DockerfileParser(fileobj=io.BytesIO(DOCKERFILE.read_bytes()))


@pytest.fixture(scope="module")
def parser() -> DockerfileParser:
    return _parse()


@pytest.fixture(scope="module")
def stages(parser) -> list[list[dict]]:
    """Instructions grouped by build stage (each list starts with its FROM)."""
    result: list[list[dict]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


@pytest.fixture(scope="module")
def final_stage(stages) -> list[dict]:
    return stages[-1]


def _values(stage: list[dict], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def _assignments(instruction: dict) -> dict[str, str | None]:
    """Names and values of an ENV or ARG instruction (KEY=value forms and `ENV KEY value`)."""
    words = shlex.split(instruction["value"], posix=True)
    if instruction["instruction"] == "ENV" and words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    pairs: dict[str, str | None] = {}
    for word in words:
        name, sep, value = word.partition("=")
        pairs[name] = value if sep else None
    return pairs


def _exec_form(value: str) -> list[str]:
    value = value.strip()
    assert value.startswith("["), f"use the exec (JSON) form, not a shell string: {value}"
    return json.loads(value)


# --- Structure -----------------------------------------------------------------


def test_multi_stage_build(parser, stages):
    assert parser.is_multistage
    assert len(stages) >= 2
    assert any("AS builder" in i["value"] or " as builder" in i["value"] for i in stages[0])


def test_final_base_image_is_an_exact_slim_release(parser):
    base = parser.baseimage
    image, _, digest = base.partition("@")
    name, sep, tag = image.rpartition(":")
    assert sep and "/" not in tag, f"{base}: the base image needs an explicit tag"
    assert tag != "latest"
    assert "slim" in tag, f"{base}: the runtime should be a slim image"
    assert re.match(r"^\d+\.\d+\.\d+-", tag), f"{base}: pin an exact patch release"
    assert name in ("python", "docker.io/library/python")
    if digest:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)


def test_every_stage_uses_a_pinned_image(parser):
    for image in parser.parent_images:
        tag = image.partition("@")[0].rpartition(":")[2]
        assert tag and tag != "latest" and re.search(r"\d+\.\d+\.\d+", tag), image


def test_runtime_copies_the_virtualenv_from_the_builder(final_stage):
    copies = _values(final_stage, "COPY")
    assert any(c.startswith("--from=builder") and "/opt/venv" in c for c in copies), copies


# --- Dependencies --------------------------------------------------------------


def test_dependencies_are_installed_from_the_lock_with_hashes(stages):
    runs = [v for stage in stages for v in _values(stage, "RUN")]
    installs = [r for r in runs if "pip install" in r and "requirements.lock" in r]
    assert installs, "requirements.lock is never installed"
    assert all("--require-hashes" in r for r in installs), installs
    # The project itself is added without re-resolving anything.
    assert any(re.search(r"pip install (\S+ )*--no-deps (\S+ )*\.(\s|$)", r) for r in runs)


def test_copied_sources_exist():
    """Every COPY source from the build context is in the repository."""
    for instruction in _parse().structure:
        if instruction["instruction"] != "COPY" or instruction["value"].startswith("--from"):
            continue
        *sources, _dest = shlex.split(instruction["value"])
        for source in sources:
            if source.startswith("--"):
                continue
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_collectstatic_runs_at_build_time_in_the_runtime_image(final_stage):
    runs = _values(final_stage, "RUN")
    assert any("collectstatic" in r and "--noinput" in r for r in runs), runs


# --- Runtime -------------------------------------------------------------------


def test_runs_as_a_fixed_non_root_user(final_stage):
    users = _values(final_stage, "USER")
    assert users, "the final stage has no USER"
    user = users[-1].split(":")[0].strip()
    assert user not in ("root", "0")
    assert user.isdigit() and int(user) >= 1000, f"use a fixed numeric uid, not {user!r}"
    # Nothing after the last USER switches back or needs root.
    last = max(i for i, ins in enumerate(final_stage) if ins["instruction"] == "USER")
    assert not [i for i in final_stage[last + 1 :] if i["instruction"] == "RUN"]
    # The uid is created in the image.
    assert any(f"--uid {user}" in r for r in _values(final_stage, "RUN"))


def test_exposes_the_gunicorn_port(final_stage):
    assert "8000" in " ".join(_values(final_stage, "EXPOSE")).split()


def test_healthcheck_calls_healthz_without_curl(final_stage):
    checks = _values(final_stage, "HEALTHCHECK")
    assert len(checks) == 1
    check = checks[0]
    assert "/healthz" in check
    assert "python" in check
    assert "curl" not in check and "wget" not in check  # not in the slim image


def test_cmd_runs_gunicorn_with_the_config_file(final_stage):
    cmd = _exec_form(_values(final_stage, "CMD")[-1])
    assert cmd[0] == "gunicorn"
    assert cmd[cmd.index("-c") + 1] == "infra/gunicorn.conf.py"
    assert cmd[-1] == "renkei.site.wsgi:application"
    copies = _values(final_stage, "COPY")
    assert any("infra/gunicorn.conf.py" in c for c in copies), "the config is not in the image"


def test_no_secret_in_env_or_arg(stages):
    for stage in stages:
        for instruction in stage:
            if instruction["instruction"] not in ("ENV", "ARG"):
                continue
            for name, value in _assignments(instruction).items():
                assert not SECRET_NAME.search(name), (
                    f"{instruction['instruction']} {name}={value!r} (line "
                    f"{instruction['startline'] + 1}): secrets come from the environment at "
                    "run time, never from the image or its build arguments"
                )


# --- .dockerignore -------------------------------------------------------------


def _ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        candidates = [pattern, pattern.removeprefix("**/")]
        hit = any(
            fnmatch.fnmatch(path, p)
            or path.startswith(p + "/")
            or fnmatch.fnmatch(path.split("/")[0], p)
            for p in candidates
        )
        if hit:
            ignored = not negate
    return ignored


@pytest.mark.parametrize("path", [".venv", ".renkei", ".git", "node_modules", ".pytest_cache"])
def test_dockerignore_excludes_local_state(path):
    assert _ignored(path, _ignore_patterns()), f"{path} would be sent to the Docker daemon"


@pytest.mark.parametrize(
    "path",
    ["requirements.lock", "pyproject.toml", "README.md", "renkei/__init__.py",
     "infra/gunicorn.conf.py"],
)  # fmt: skip
def test_dockerignore_keeps_what_the_build_needs(path):
    assert not _ignored(path, _ignore_patterns()), f"{path} is needed by the Dockerfile"


# --- gunicorn configuration ----------------------------------------------------


def test_gunicorn_config_does_not_import_the_app_at_load_time():
    tree = ast.parse(GUNICORN_CONF.read_text(encoding="utf-8"))
    for node in tree.body:  # module level only; the hooks import lazily
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        assert not [n for n in names if n.split(".")[0] in ("renkei", "django")], names


def test_gunicorn_config_values():
    config = runpy.run_path(str(GUNICORN_CONF))
    assert config["bind"].endswith(":8000")
    assert config["keepalive"] > 60, "must outlive the ALB idle timeout (60 s)"
    assert "%(q)s" not in config["access_log_format"], "no query strings in access logs"
    assert callable(config["post_fork"]) and callable(config["worker_exit"])


class _Log:
    def __init__(self):
        self.messages = []

    def warning(self, *args):
        self.messages.append(("warning", args))

    def exception(self, *args):
        self.messages.append(("exception", args))


def _hooks():
    config = runpy.run_path(str(GUNICORN_CONF))
    server = types.SimpleNamespace(log=_Log())
    worker = types.SimpleNamespace(pid=4242)
    return config, server, worker


def test_post_fork_starts_telemetry_and_worker_exit_flushes_it(monkeypatch):
    calls = []
    fake = types.ModuleType("renkei.platform.telemetry")
    fake.setup_telemetry = lambda **kwargs: calls.append(("setup", kwargs))
    fake.shutdown_telemetry = lambda: calls.append(("shutdown", {}))
    monkeypatch.setitem(sys.modules, "renkei.platform.telemetry", fake)
    config, server, worker = _hooks()

    config["post_fork"](server, worker)
    config["worker_exit"](server, worker)

    assert calls == [("setup", {"service_name": "renkei-web"}), ("shutdown", {})]


def test_hooks_survive_missing_or_failing_telemetry(monkeypatch):
    config, server, worker = _hooks()
    monkeypatch.setitem(sys.modules, "renkei.platform.telemetry", None)  # import fails
    config["post_fork"](server, worker)
    config["worker_exit"](server, worker)

    def broken(**kwargs):
        raise RuntimeError("collector unreachable")

    fake = types.ModuleType("renkei.platform.telemetry")
    fake.setup_telemetry = broken
    fake.shutdown_telemetry = broken
    monkeypatch.setitem(sys.modules, "renkei.platform.telemetry", fake)
    config["post_fork"](server, worker)
    config["worker_exit"](server, worker)
    assert [level for level, _ in server.log.messages].count("exception") == 2
