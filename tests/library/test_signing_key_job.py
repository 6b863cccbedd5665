"""The in-cluster signing key: the key the Job's init container generates is the one form atticd
reads, and the script creates its Secret once and never replaces or prints it."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cdktf import App, TerraformStack

from constructs_lib.attic.ops import signing_key
from constructs_lib.attic.signing_key import ENV_NAME
from constructs_lib.attic.signing_key_job import (
    GENERATE,
    KEY_DIR,
    KEY_FILE,
    AtticSigningKeyJob,
    AtticSigningKeyJobProps,
)
from constructs_lib.kubernetes.ops.bundle import shipped_script
from constructs_lib.kubernetes.ops.incluster import KubeApi, OpsError, SpecError
from constructs_lib.validation import PropsError
from tests.support.fake_http import no_proxies  # noqa: F401 (autouse fixture)
from tests.support.fake_kube import SA_TOKEN, FakeKube
from tests.support.ops_scripts import non_stdlib_imports, run_shipped
from upstream_formats.attic_token_inspect import inspect
from upstream_formats.attic_token_keys import ENV_RS256_SECRET, key_from_env
from upstream_formats.attic_tokens import build_claims, encode

NS, SECRET = "attic", "attic-token-signing"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The init container's command, run here with the host's openssl and base64."""
    if not (shutil.which("openssl") and shutil.which("base64")):
        pytest.skip("openssl and base64 are needed to run the key generation")
    directory = tmp_path_factory.mktemp("key")
    command = GENERATE.replace(KEY_DIR, str(directory))
    subprocess.run(["/bin/sh", "-c", command], check=True, timeout=120)
    assert sorted(p.name for p in directory.iterdir()) == ["key.b64"]  # the PEM is removed
    return directory / Path(KEY_FILE).name


def test_the_generated_key_is_what_atticd_reads_and_signs_with(generated: Path):
    value = generated.read_text()
    assert "\n" not in value  # a trailing newline would not decode in atticd
    assert generated.stat().st_mode & 0o077 == 0  # umask 077
    assert signing_key.read_key(generated) == value
    key = key_from_env({ENV_RS256_SECRET: value})  # atticd's order and decoding
    assert base64.b64decode(value).startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert key.private_key is not None
    assert key.private_key.key_size == 4096
    assert key.private_key.public_key().public_numbers().e == 65537
    token = encode(
        build_claims(sub="t", validity=60, now=1_800_000_000, grants={"pull": ["a"]}), key
    )
    assert inspect(token, key, now=1_800_000_010).valid is True


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not base64!", "not standard base64"),
        (base64.b64encode(b"-----BEGIN PRIVATE KEY-----\n").decode(), "not an RSA PKCS#1 PEM"),
    ],
)
def test_a_bad_key_file_is_refused_without_showing_it(tmp_path: Path, content: str, problem: str):
    path = tmp_path / "key.b64"
    path.write_text(content)
    with pytest.raises(SpecError) as info:
        signing_key.read_key(path)
    assert problem in str(info.value)
    assert content not in str(info.value)


def _api(kube: FakeKube) -> KubeApi:
    return KubeApi(kube.url, SA_TOKEN, sleep=lambda _s: None)


def test_an_absent_secret_is_created_immutable_with_the_key(kube: FakeKube):
    outcome = signing_key.ensure_signing_key(
        _api(kube), namespace=NS, secret=SECRET, key=ENV_NAME, value="S0VZ", log=lambda _l: None
    )
    assert outcome == "created"
    stored = kube.secrets[(NS, SECRET)]
    assert stored["type"] == "Opaque"
    assert stored["immutable"] is True
    assert base64.b64decode(stored["data"][ENV_NAME]) == b"S0VZ"
    assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "attic-iac"


def test_an_existing_key_is_kept_and_never_written(kube: FakeKube):
    """The Secret Terraform made before (no labels) is adopted as it is."""
    old = {"type": "Opaque", "data": {ENV_NAME: base64.b64encode(b"OLD").decode()}}
    kube.put_secret(NS, SECRET, old)
    lines: list[str] = []
    outcome = signing_key.ensure_signing_key(
        _api(kube), namespace=NS, secret=SECRET, key=ENV_NAME, value="TkVX", log=lines.append
    )
    assert outcome == "kept"
    assert kube.writes() == []
    assert kube.secrets[(NS, SECRET)]["data"] == old["data"]
    assert "kept the existing key" in lines[0]


def test_a_secret_without_the_key_is_an_error_not_a_rewrite(kube: FakeKube):
    kube.put_secret(NS, SECRET, {"type": "Opaque", "data": {"other": "eA=="}})
    with pytest.raises(OpsError, match="exists without data key"):
        signing_key.ensure_signing_key(
            _api(kube), namespace=NS, secret=SECRET, key=ENV_NAME, value="TkVX"
        )
    assert kube.writes() == []


def test_a_concurrent_create_is_adopted(kube: FakeKube, monkeypatch: pytest.MonkeyPatch):
    """Another run creates the Secret between our GET and POST: its key wins."""
    original = kube._post

    def racing(namespace: str, body: Any) -> tuple[int, Any]:
        kube.put_secret(namespace, SECRET, {"data": {ENV_NAME: "T1RIRVI="}})
        return original(namespace, body)

    monkeypatch.setattr(kube, "_post", racing)
    outcome = signing_key.ensure_signing_key(
        _api(kube), namespace=NS, secret=SECRET, key=ENV_NAME, value="TkVX", log=lambda _l: None
    )
    assert outcome == "kept"
    assert kube.secrets[(NS, SECRET)]["data"][ENV_NAME] == "T1RIRVI="


def test_rbac_denial_says_what_the_role_allows(kube: FakeKube):
    kube.forbidden_namespaces.add(NS)
    with pytest.raises(OpsError, match="forbidden: the job's Role allows get"):
        signing_key.ensure_signing_key(
            _api(kube), namespace=NS, secret=SECRET, key=ENV_NAME, value="TkVX"
        )


def test_the_shipped_script_runs_alone_and_never_prints_the_key(
    kube: FakeKube, generated: Path, tmp_path: Path
):
    script = shipped_script("constructs_lib.attic.ops", "signing_key.py")
    assert non_stdlib_imports(script) == set()
    (tmp_path / "sa-token").write_text(SA_TOKEN + "\n")
    args = ["--namespace", NS, "--secret", SECRET, "--key", ENV_NAME, "--key-file"]
    args += [
        str(generated),
        "--api-server",
        kube.url,
        "--sa-token-file",
        str(tmp_path / "sa-token"),
    ]
    result = run_shipped(script, "signing_key.py", args, tmp_path)
    assert result.returncode == 0, result.stderr
    value = generated.read_text()
    assert value not in result.stdout + result.stderr
    assert value[:40] not in result.stdout + result.stderr
    stored = kube.secrets[(NS, SECRET)]["data"][ENV_NAME]
    assert base64.b64decode(stored).decode() == value
    (tmp_path / "again").mkdir()
    again = run_shipped(script, "signing_key.py", args, tmp_path / "again")
    assert again.returncode == 0
    assert "kept the existing key" in again.stdout


def _job(**overrides: Any) -> AtticSigningKeyJob:
    stack = TerraformStack(App(), "t")
    props = {"namespace": NS, "keygen_image": "openssl:1", "python_image": "py:1", **overrides}
    return AtticSigningKeyJob(stack, "Key", AtticSigningKeyJobProps(**props))


def test_the_job_may_write_only_its_own_secret():
    job = _job()
    policy = job.admission_policy_manifest
    checks = [v["expression"] for v in policy["spec"]["validations"]]
    assert checks[0].endswith(f"in ['{NS}/{SECRET}']")
    assert checks[1] == "object.type == 'Opaque'"
    condition = policy["spec"]["matchConditions"][0]["expression"]
    assert (
        condition == f"request.userInfo.username == 'system:serviceaccount:{NS}:attic-signing-key'"
    )
    assert job.secret_name == SECRET
    assert job.secret_key == ENV_NAME


def test_props_are_checked_together():
    with pytest.raises(PropsError) as info:
        _job(namespace="Attic", secret_name="bad_name")
    assert len(info.value.problems) == 2
