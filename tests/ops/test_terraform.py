"""The AWS deployment in terraform/: parsed with python-hcl2 and checked for the settings the
design depends on (data stays in Japan, encryption everywhere, no public database, ...), then
scanned with checkov, and, when the terraform binary and its AWS provider are available,
validated and applied against a mocked provider (`terraform test`).

checkov has many pinned dependencies that would clash with the application's lock, so it
lives in its own virtualenv under .renkei/tools/checkov, created on first use.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import hcl2
import pytest

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
CHECKOV_VERSION = "3.3.30"
CHECKOV_VENV = ROOT / ".renkei" / "tools" / "checkov"
TOKYO = "ap-northeast-1"

_META_KEYS = {"__is_block__", "__comments__", "__inline_comments__", "__start_line__",
              "__end_line__"}  # fmt: skip


# --- Parsing helpers -------------------------------------------------------------


def _plain(value):
    """python-hcl2 >= 5 keeps the quotes of string literals ('"abc"'); older versions do
    not. Strip them (and the serializer's metadata keys) so tests read plain values."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items() if k not in _META_KEYS}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def tf_files() -> list[Path]:
    return sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)


@functools.cache
def parse(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        return _plain(hcl2.load(f))


def blocks(kind: str, directory: Path | None = None):
    """(file, labels, body) of every `kind` block (resource, data, variable, module, ...)."""
    depth = 2 if kind in ("resource", "data") else 1
    for path in tf_files():
        if directory is not None and path.parent != directory:
            continue
        for entry in parse(path).get(kind, []):
            yield from _walk(path, entry, depth, ())


def _walk(path, node, depth, labels):
    for label, body in node.items():
        if depth == 1:
            yield path, (*labels, label), body
        else:
            yield from _walk(path, body, depth - 1, (*labels, label))


def resources(type_: str) -> dict[str, tuple[Path, dict]]:
    found = {}
    for path, (rtype, name), body in blocks("resource"):
        if rtype == type_:
            found[f"{path.parent.name}/{name}"] = (path, body)
    return found


def first(value):
    """A nested block is a list of bodies; most appear once."""
    return value[0] if isinstance(value, list) else value


def _var_ref(value) -> str | None:
    match = re.fullmatch(r"\$\{var\.(\w+)\}", value) if isinstance(value, str) else None
    return match[1] if match else None


def _callers(directory: Path):
    """Module blocks (with their directory) whose source is `directory`."""
    for path, (_name,), body in blocks("module"):
        source = body.get("source", "")
        if source.startswith(".") and (path.parent / source).resolve() == directory.resolve():
            yield path.parent, body


def resolve(directory: Path, value):
    """Follow `var.x` to the value a caller passes, or else to the variable's default."""
    name = _var_ref(value)
    if name is None:
        return value
    for caller_dir, call in _callers(directory):
        if name in call:
            return resolve(caller_dir, call[name])
    for _path, (var_name,), body in blocks("variable", directory):
        if var_name == name:
            assert "default" in body, f"var.{name} in {directory} has no default and no caller"
            return resolve(directory, body["default"])
    raise AssertionError(f"var.{name} is not declared in {directory}")


def ref(type_: str, name: str) -> re.Pattern:
    return re.compile(rf"\$\{{{re.escape(type_)}\.{re.escape(name)}\.(id|bucket|arn)\}}")


def attached(type_: str, bucket_name: str) -> list[dict]:
    """Bodies of `type_` resources whose `bucket` is aws_s3_bucket.<bucket_name>."""
    pattern = ref("aws_s3_bucket", bucket_name)
    return [body for _p, body in resources(type_).values()
            if pattern.fullmatch(str(body.get("bucket", "")))]  # fmt: skip


# --- Files -------------------------------------------------------------------------


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(path):
    assert isinstance(parse(path), dict)


def test_layout():
    for module in ("network", "database", "storage", "cache", "app", "secrets"):
        assert (TERRAFORM / "modules" / module / "main.tf").is_file(), module
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert (TERRAFORM / name).is_file(), name
    example = TERRAFORM / "environments" / "example"
    assert (example / "main.tf").is_file() and (example / "terraform.tfvars.example").is_file()
    calls = [body for path, _l, body in blocks("module") if path.parent == example]
    assert [c for c in calls if c["source"] == "../.."], "the example must use the root module"


def test_every_variable_and_output_is_documented():
    for kind in ("variable", "output"):
        for path, (name,), body in blocks(kind):
            description = body.get("description", "")
            assert len(description.strip()) >= 10, f"{path}: {kind} {name} needs a description"


def test_aws_provider_is_pinned_to_v5():
    versions = parse(TERRAFORM / "versions.tf")["terraform"][0]["required_providers"][0]
    aws = versions["aws"]
    assert aws["source"] == "hashicorp/aws"
    assert re.fullmatch(r"~> ?5\.\d+(\.\d+)?", aws["version"]), aws["version"]


def test_region_defaults_to_tokyo_and_stays_in_japan():
    providers = [(path, body) for path, (name,), body in blocks("provider") if name == "aws"]
    assert providers, 'no provider "aws" block'
    for path, body in providers:
        assert resolve(path.parent, body["region"]) == TOKYO, path
    region = [body for _p, (name,), body in blocks("variable", TERRAFORM) if name == "region"]
    assert region and region[0]["default"] == TOKYO
    condition = str(first(region[0]["validation"])["condition"])
    assert "ap-northeast-1" in condition and "us-" not in condition


# --- Database -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rds() -> tuple[Path, dict]:
    instances = list(resources("aws_db_instance").values())
    assert len(instances) == 1
    return instances[0]


def test_rds_is_encrypted_multi_az_and_private(rds):
    path, db = rds
    assert db["engine"] == "postgres"
    assert str(resolve(path.parent, db["engine_version"])).split(".")[0] == "16"
    assert db["storage_encrypted"] is True and db.get("kms_key_id")
    assert db["multi_az"] is True
    assert db["publicly_accessible"] is False
    assert db["deletion_protection"] is True
    assert db["iam_database_authentication_enabled"] is True
    assert db["auto_minor_version_upgrade"] is True
    assert db["copy_tags_to_snapshot"] is True
    assert db["skip_final_snapshot"] is False


def test_rds_backups_are_kept_at_least_a_week(rds):
    path, db = rds
    assert int(resolve(path.parent, db["backup_retention_period"])) >= 7
    for _p, (name,), body in blocks("variable"):
        if name in ("backup_retention_period", "db_backup_retention_days"):
            assert ">= 7" in str(first(body["validation"])["condition"]), name


def test_rds_monitoring_and_logs(rds):
    path, db = rds
    assert db["performance_insights_enabled"] is True
    assert db.get("performance_insights_kms_key_id")
    assert int(resolve(path.parent, db["monitoring_interval"])) > 0 and db["monitoring_role_arn"]
    assert "postgresql" in db["enabled_cloudwatch_logs_exports"]
    assert db.get("manage_master_user_password") is True
    assert "password" not in db, "no password in Terraform: RDS manages and rotates it"


def test_rds_parameter_group_forces_tls_and_keeps_values_out_of_logs(rds):
    groups = list(resources("aws_db_parameter_group").values())
    assert len(groups) == 1
    params = {p["name"]: str(p["value"]) for p in groups[0][1]["parameter"]}
    assert params["rds.force_ssl"] == "1"
    assert params.get("log_parameter_max_length") == "0"
    assert rds[1]["parameter_group_name"].startswith("${aws_db_parameter_group.")


# --- S3 -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def buckets() -> list[str]:
    names = [key.split("/")[1] for key in resources("aws_s3_bucket")]
    assert "data" in names
    return names


def test_every_bucket_is_versioned_private_and_logged_or_a_log_bucket(buckets):
    for name in buckets:
        versioning = attached("aws_s3_bucket_versioning", name)
        assert versioning and first(versioning[0]["versioning_configuration"])["status"] == (
            "Enabled"
        ), name
        blocks_ = attached("aws_s3_bucket_public_access_block", name)
        assert blocks_, f"{name}: no public access block"
        for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                     "restrict_public_buckets"):  # fmt: skip
            assert blocks_[0][flag] is True, f"{name}: {flag}"
        assert attached("aws_s3_bucket_lifecycle_configuration", name), f"{name}: no lifecycle"
        assert attached("aws_s3_bucket_server_side_encryption_configuration", name), name


def test_data_bucket_uses_kms_with_bucket_keys():
    (sse,) = attached("aws_s3_bucket_server_side_encryption_configuration", "data")
    rule = first(sse["rule"])
    default = first(rule["apply_server_side_encryption_by_default"])
    assert default["sse_algorithm"] == "aws:kms"
    assert default["kms_master_key_id"].startswith("${aws_kms_key.")
    assert rule["bucket_key_enabled"] is True
    assert attached("aws_s3_bucket_logging", "data"), "the data bucket's access is logged"


def _policy_document(policy_ref: str) -> dict:
    match = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", policy_ref)
    assert match, f"bucket policy should come from an aws_iam_policy_document: {policy_ref}"
    for _p, (dtype, name), body in blocks("data"):
        if dtype == "aws_iam_policy_document" and name == match[1]:
            return body
    raise AssertionError(policy_ref)


def test_every_bucket_denies_requests_without_tls(buckets):
    for name in buckets:
        policies = attached("aws_s3_bucket_policy", name)
        assert policies, f"{name}: no bucket policy"
        document = _policy_document(policies[0]["policy"])
        denies = [
            s for s in document["statement"]
            if s.get("effect") == "Deny"
            and any(c["test"] == "Bool" and c["variable"] == "aws:SecureTransport"
                    and c["values"] == ["false"] for c in s.get("condition", []))
        ]  # fmt: skip
        assert denies, f"{name}: no Deny on aws:SecureTransport = false"
        resources_ = " ".join(denies[0]["resources"])
        assert f"aws_s3_bucket.{name}.arn" in resources_ and "/*" in resources_


def test_raw_imports_expire(buckets):
    (lifecycle,) = attached("aws_s3_bucket_lifecycle_configuration", "data")
    rules = [r for r in lifecycle["rule"]
             if first(r.get("filter", [{}])).get("prefix") == "raw-imports/"]  # fmt: skip
    assert len(rules) == 1
    rule = rules[0]
    assert rule["status"] == "Enabled"
    assert rule.get("transition") and rule.get("expiration")


# --- Encryption and logging everywhere -------------------------------------------------


def test_kms_keys_rotate_and_have_a_policy():
    keys = resources("aws_kms_key")
    assert len(keys) >= 5
    for key, (_path, body) in keys.items():
        assert body["enable_key_rotation"] is True, key
        assert body.get("policy"), f"{key}: explicit key policy"


def test_log_groups_are_encrypted_and_kept_a_year():
    groups = resources("aws_cloudwatch_log_group")
    assert groups
    for key, (path, body) in groups.items():
        assert body.get("kms_key_id"), f"{key}: not KMS-encrypted"
        assert int(resolve(path.parent, body["retention_in_days"])) >= 365, key


def test_secrets_use_a_customer_managed_key():
    secrets = resources("aws_secretsmanager_secret")
    assert len(secrets) >= 4
    for key, (_path, body) in secrets.items():
        assert str(body.get("kms_key_id", "")).startswith("${aws_kms_key."), key


# --- Network, cache, load balancer ------------------------------------------------------


def test_no_public_ips_and_only_the_alb_open_to_the_internet():
    for key, (_path, body) in resources("aws_subnet").items():
        assert body.get("map_public_ip_on_launch", False) is False, key
    for key, (_path, body) in resources("aws_vpc_security_group_ingress_rule").items():
        if body.get("cidr_ipv4") == "0.0.0.0/0" or body.get("cidr_ipv6") == "::/0":
            assert body["security_group_id"] == "${aws_security_group.alb.id}", key
            assert body["from_port"] == body["to_port"] and body["from_port"] in (80, 443), key
    assert resources("aws_flow_log")
    assert resources("aws_default_security_group"), "the default security group is emptied"


def test_redis_is_encrypted_authenticated_and_multi_az():
    ((_path, group),) = resources("aws_elasticache_replication_group").values()
    assert group["at_rest_encryption_enabled"] is True and group.get("kms_key_id")
    assert group["transit_encryption_enabled"] is True and group.get("auth_token")
    assert group["automatic_failover_enabled"] is True and group["multi_az_enabled"] is True


def test_alb_is_tls_only():
    listeners = {
        key.split("/")[1]: body for key, (_p, body) in resources("aws_lb_listener").items()
    }
    https = [b for b in listeners.values() if b["protocol"] == "HTTPS"]
    assert len(https) == 1 and https[0]["ssl_policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    for body in listeners.values():
        if body["protocol"] == "HTTP":
            action = first(body["default_action"])
            assert action["type"] == "redirect"
            assert first(action["redirect"])["protocol"] == "HTTPS"
    ((_path, lb),) = resources("aws_lb").values()
    assert lb["drop_invalid_header_fields"] is True
    assert first(lb["access_logs"])["enabled"] is True
    assert resources("aws_wafv2_web_acl_association")


def test_ecs_cluster_has_container_insights():
    ((_path, cluster),) = resources("aws_ecs_cluster").values()
    settings = {s["name"]: s["value"] for s in cluster["setting"]}
    assert settings.get("containerInsights") in ("enabled", "enhanced")


# --- checkov -----------------------------------------------------------------------------


SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def test_every_checkov_skip_is_justified():
    for path in tf_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = SKIP.search(line)
            if match:
                assert re.fullmatch(r"CKV2?_AWS_\d+", match[1]), f"{path}:{number}"
                reason = (match[2] or "").strip()
                assert len(reason) >= 40, f"{path}:{number}: justify skipping {match[1]}"


def _venv_bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / name


@pytest.fixture(scope="session")
def checkov() -> Path:
    """checkov in its own virtualenv (.renkei/tools/checkov), created once and reused."""
    python = _venv_bin(CHECKOV_VENV, "python")
    marker = CHECKOV_VENV / f".renkei-checkov-{CHECKOV_VERSION}"
    if not marker.exists():
        if not python.exists():
            CHECKOV_VENV.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             f"checkov=={CHECKOV_VERSION}"],
            capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        if install.returncode != 0:
            pytest.fail(f"could not install checkov=={CHECKOV_VERSION}:\n{install.stderr[-3000:]}")
        marker.write_text(f"checkov=={CHECKOV_VERSION}\n", encoding="utf-8")
    executable = _venv_bin(CHECKOV_VENV, "checkov")
    assert executable.exists(), executable
    return executable


@pytest.mark.slow
def test_checkov_passes(checkov):
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}  # no download of the guideline mapping
    result = subprocess.run(
        [str(checkov), "-d", "terraform", "--quiet", "--compact"],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, (
        f"checkov failed:\n{result.stdout[-8000:]}\n{result.stderr[-2000:]}"
    )


# --- terraform itself (when installed) ------------------------------------------------------


def _terraform() -> str:
    executable = shutil.which("terraform")
    if executable is None:
        pytest.skip("terraform is not installed")
    return executable


def _run(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=900)


def test_terraform_fmt():
    result = _run(
        [_terraform(), "fmt", "-check", "-recursive", "-diff"], TERRAFORM, dict(os.environ)
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{result.stdout}"


@pytest.fixture(scope="module")
def initialized(tmp_path_factory) -> tuple[str, Path, dict]:
    """A scratch copy of terraform/ with the AWS provider installed (never in the repo).

    The provider comes from a local mirror when one is given (TF_PLUGIN_MIRROR, or
    /opt/tf-plugins), otherwise from the registry; without either the tests skip.
    """
    terraform = _terraform()
    workdir = tmp_path_factory.mktemp("terraform") / "terraform"
    shutil.copytree(TERRAFORM, workdir, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    mirror = os.environ.get("TF_PLUGIN_MIRROR") or "/opt/tf-plugins"
    if Path(mirror).is_dir():
        config = workdir.parent / "terraformrc"
        config.write_text(
            "provider_installation {\n  filesystem_mirror {\n"
            f'    path    = "{mirror}"\n    include = ["registry.terraform.io/hashicorp/*"]\n'
            "  }\n}\n",
            encoding="utf-8",
        )
        env["TF_CLI_CONFIG_FILE"] = str(config)
    for directory in (workdir, workdir / "environments" / "example"):
        init = _run([terraform, "init", "-backend=false", "-input=false", "-no-color"],
                    directory, env)  # fmt: skip
        if init.returncode != 0:
            pytest.skip(f"terraform providers unavailable (offline?):\n{init.stderr[-1500:]}")
    return terraform, workdir, env


@pytest.mark.slow
def test_terraform_validate(initialized):
    terraform, workdir, env = initialized
    for directory in (workdir, workdir / "environments" / "example"):
        result = _run([terraform, "validate", "-no-color"], directory, env)
        assert result.returncode == 0, f"{directory.name}:\n{result.stdout}{result.stderr}"


@pytest.mark.slow
def test_terraform_test_with_mocked_provider(initialized):
    """terraform/tests/*.tftest.hcl: apply against a mocked AWS provider, and the input
    validations (region outside Japan, short log retention, short backups, `latest`)."""
    terraform, workdir, env = initialized
    result = _run([terraform, "test", "-no-color"], workdir, env)
    assert result.returncode == 0, f"{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
