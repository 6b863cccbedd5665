"""The examples run from the installed library wheel, outside the repository.

The wheel goes into a fresh venv that sees only what the wheel requires (see
``tests/support/library_venv.py``); each ``examples/<name>/main.py`` is copied out and run
there with ``python -I``, in parallel; then the synthesized JSON is checked (resource counts
and the fields that matter) and checkov reports no failed check.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import constructs_lib
from constructs_lib import versions
from stacks.jsii_env import PROJECT_NODE
from tests.stacks.test_policy import run_checkov
from tests.support.dists import REPO, Dist
from tests.support.library_venv import make_library_venv

# Both distributions are built once per worker that needs them: keep these tests on one.
pytestmark = pytest.mark.xdist_group("packaging")

EXAMPLES = REPO / "examples"


def _env() -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "NODE_OPTIONS": "--no-deprecation",
        "CHECKPOINT_DISABLE": "1",
    }
    node = os.environ.get("JSII_NODE") or (str(PROJECT_NODE) if PROJECT_NODE.exists() else "")
    if node:
        env["JSII_NODE"] = node
    for name in ("JSII_RUNTIME_PACKAGE_CACHE_ROOT", "TMPDIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


@pytest.fixture(scope="module")
def library_python(library_dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_library_venv(tmp_path_factory.mktemp("library-venv"), library_dist)


@pytest.fixture(scope="module")
def example_outputs(library_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every example synthesized from the wheel: ``<root>/<example>/cdktf.out``."""
    root = tmp_path_factory.mktemp("examples")
    running = {}
    for example in sorted(p for p in EXAMPLES.iterdir() if (p / "main.py").exists()):
        work = root / example.name
        shutil.copytree(example, work)
        running[example.name] = subprocess.Popen(
            [str(library_python), "-I", "main.py"],
            cwd=work,
            env={**_env(), "CDKTF_OUTDIR": str(work / "cdktf.out")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for name, process in running.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, f"examples/{name}: {out[-2000:]}{err[-4000:]}"
    return root


def _stack(root: Path, example: str, stack: str) -> dict[str, Any]:
    path = root / example / "cdktf.out" / "stacks" / stack / "cdk.tf.json"
    return dict(json.loads(path.read_text()))


def _counts(doc: dict[str, Any]) -> dict[str, int]:
    return dict(Counter({rtype: len(items) for rtype, items in doc["resource"].items()}))


def _manifests(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        item["manifest"]["kind"]: item["manifest"]
        for item in doc["resource"].get("kubernetes_manifest", {}).values()
    }


def test_the_fresh_venv_has_the_wheel_and_not_the_repository(library_python: Path):
    code = (
        "import importlib.util, sys, constructs_lib, upstream_formats\n"
        "print(constructs_lib.__file__)\n"
        "print(constructs_lib.__version__)\n"
        "print(sorted(m for m in ('stacks', 'config_model', 'iac_tools', 'dashboard',"
        " 'cdktf_cdktf_provider_aws', 'pydantic') if importlib.util.find_spec(m)))\n"
        f"print({str(REPO)!r} in sys.path)\n"
    )
    run = subprocess.run(
        [str(library_python), "-I", "-c", code],
        cwd=library_python.parent,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    location, version, present, repo_on_path = run.stdout.splitlines()
    assert location.startswith(str(library_python.parent.parent)), location
    assert version == constructs_lib.__version__
    assert present == "[]"
    assert repo_on_path == "False"


def test_a_construct_whose_extra_is_missing_names_the_extra(library_python: Path):
    run = subprocess.run(
        [str(library_python), "-I", "-c", "import constructs_lib.storage.aws_s3_bucket"],
        cwd=library_python.parent,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert "pip install 'attic-iac-constructs[aws]'" in run.stderr, run.stderr[-2000:]


def test_the_attic_example(example_outputs: Path):
    doc = _stack(example_outputs, "attic-external-s3", "attic")
    assert _counts(doc) == {
        "kubernetes_config_map_v1": 3,
        "kubernetes_deployment_v1": 2,
        "kubernetes_horizontal_pod_autoscaler_v2": 1,
        "kubernetes_ingress_v1": 1,
        "kubernetes_job_v1": 3,
        "kubernetes_manifest": 3,
        "kubernetes_namespace_v1": 1,
        "kubernetes_network_policy_v1": 7,
        "kubernetes_pod_disruption_budget_v1": 1,
        "kubernetes_role_binding_v1": 1,
        "kubernetes_role_v1": 1,
        "kubernetes_secret_v1": 1,
        "kubernetes_service_account_v1": 3,
        "kubernetes_service_v1": 1,
    }
    (namespace,) = doc["resource"]["kubernetes_namespace_v1"].values()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for deployment in doc["resource"]["kubernetes_deployment_v1"].values():
        (container,) = deployment["spec"]["template"]["spec"]["container"]
        assert container["image"] == versions.ATTIC_IMAGE.ref
        assert container["security_context"]["read_only_root_filesystem"] is True
    (keys,) = doc["resource"]["kubernetes_secret_v1"].values()
    assert keys["data"] == {
        "access_key_id": "${var.attic_s3_access_key_id}",
        "secret_access_key": "${var.attic_s3_secret_access_key}",
    }
    assert all(v["sensitive"] for v in doc["variable"].values())
    cluster = _manifests(doc)["Cluster"]
    assert cluster["spec"]["enableSuperuserAccess"] is False
    (ingress,) = doc["resource"]["kubernetes_ingress_v1"].values()
    assert ingress["spec"]["tls"][0]["hosts"] == ["cache.example.com"]


def test_the_gitlab_runner_example(example_outputs: Path):
    doc = _stack(example_outputs, "gitlab-runner", "gitlab-runner")
    assert _counts(doc) == {
        "helm_release": 1,
        "kubernetes_config_map_v1": 1,
        "kubernetes_cron_job_v1": 1,
        "kubernetes_limit_range_v1": 1,
        "kubernetes_namespace_v1": 2,
        "kubernetes_network_policy_v1": 7,
        "kubernetes_priority_class_v1": 2,
        "kubernetes_resource_quota_v1": 1,
        "kubernetes_role_binding_v1": 1,
        "kubernetes_role_v1": 1,
        "kubernetes_service_account_v1": 1,
    }
    (release,) = doc["resource"]["helm_release"].values()
    chart = versions.GITLAB_RUNNER_CHART
    assert (release["chart"], release["version"]) == (chart.chart, chart.version)
    assert versions.GITLAB_RUNNER_IMAGE.digest in release["values"][0]
    levels = {
        ns["metadata"]["name"]: ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        for ns in doc["resource"]["kubernetes_namespace_v1"].values()
    }
    assert levels == {"gitlab-runners": "restricted", "ci-docker": "baseline"}


def test_the_cnpg_example(example_outputs: Path):
    operators = _stack(example_outputs, "cnpg-barman", "cnpg-operators")
    assert _counts(operators) == {
        "helm_release": 2,
        "kubernetes_namespace_v1": 1,
        "kubernetes_network_policy_v1": 3,
    }
    charts = {(r["chart"], r["version"]) for r in operators["resource"]["helm_release"].values()}
    assert charts == {
        (versions.CLOUDNATIVE_PG_CHART.chart, versions.CLOUDNATIVE_PG_CHART.version),
        (versions.BARMAN_CLOUD_PLUGIN_CHART.chart, versions.BARMAN_CLOUD_PLUGIN_CHART.version),
    }
    database = _stack(example_outputs, "cnpg-barman", "cnpg-database")
    assert _counts(database) == {
        "kubernetes_manifest": 4,
        "kubernetes_namespace_v1": 1,
        "kubernetes_network_policy_v1": 3,
        "kubernetes_secret_v1": 2,
        "random_password": 1,
    }
    manifests = _manifests(database)
    assert sorted(manifests) == ["Cluster", "Database", "ObjectStore", "ScheduledBackup"]
    (plugin,) = manifests["Cluster"]["spec"]["plugins"]
    assert plugin["isWALArchiver"] is True
    assert plugin["parameters"] == {"barmanObjectName": "pg-backups"}
    store = manifests["ObjectStore"]["spec"]
    assert store["configuration"]["destinationPath"] == "s3://acme-pg-backups/"
    assert manifests["ScheduledBackup"]["spec"]["schedule"] == "0 0 3 * * *"


def test_checkov_finds_nothing_in_the_examples(example_outputs: Path):
    reports = run_checkov(example_outputs)
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert failed == []
    checked = {
        c["file_path"] for r in reports for c in r.get("results", {}).get("passed_checks", [])
    }
    assert len(checked) >= 3, checked
