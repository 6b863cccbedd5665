"""Generated Helm values and custom resources against upstream reference data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DATA
from tests.support.conformance import (
    CHART_DIRS,
    crd_errors,
    crd_validator,
    schema_errors,
    unknown_value_paths,
)
from tests.support.synth_output import SynthOutput, helm_releases, resources


def _releases(synths: list[SynthOutput]):
    for synth in synths:
        for stack, doc in synth.stacks():
            for name, release in helm_releases(doc).items():
                yield f"{stack}/{name}", release


def test_every_helm_value_exists_in_the_pinned_chart(all_synths, refdata: Path):
    checked = set()
    for where, release in _releases(all_synths):
        chart_dir = refdata / "charts" / CHART_DIRS[release["chart"]]
        defaults = yaml.safe_load((chart_dir / "values.yaml").read_text())
        values = yaml.safe_load(release["values"][0])
        schema = chart_dir / "values.schema.json"
        if schema.exists():
            assert schema_errors(values, schema) == [], where
        # A schema that rejects unknown keys is the key set; otherwise values.yaml is.
        if not (schema.exists() and '"additionalProperties": false' in schema.read_text()):
            assert unknown_value_paths(values, defaults, chart_dir.name) == [], where
        checked.add(release["chart"])
    assert checked == set(CHART_DIRS), "a chart went untested"


def test_chart_versions_match_the_reference_data(all_synths, refdata: Path):
    for where, release in _releases(all_synths):
        chart_yaml = refdata / "charts" / CHART_DIRS[release["chart"]] / "Chart.yaml"
        if chart_yaml.exists():
            assert yaml.safe_load(chart_yaml.read_text())["version"] == release["version"], where


def test_value_check_catches_a_typo(refdata: Path):
    defaults = yaml.safe_load((refdata / "charts/cloudnative-pg/values.yaml").read_text())
    typo = {"monitoring": {"enablePodMonitor": True}, "crds": {"enabled": True}}
    assert unknown_value_paths(typo, defaults, "cloudnative-pg") == [
        "monitoring.enablePodMonitor",
        "crds.enabled",
    ]


def test_cert_manager_schema_rejects_unknown_keys(refdata: Path):
    errors = schema_errors({"installCRD": True}, refdata / "charts/cert-manager/values.schema.json")
    assert errors


# CRDs the shared reference data lacks, copied verbatim (see SOURCES.md there).
LOCAL_CRDS = DATA / "crds"
# Built-in APIs applied through kubernetes_manifest (no typed provider resource exists).
BUILT_IN_GROUPS = frozenset({"admissionregistration.k8s.io"})


def test_every_custom_resource_matches_its_crd(all_synths, refdata: Path):
    validators = {}
    for synth in all_synths:
        for stack, doc in synth.stacks():
            for name, item in resources(doc, "kubernetes_manifest").items():
                manifest = item["manifest"]
                group, version = manifest["apiVersion"].split("/")
                if group in BUILT_IN_GROUPS:
                    continue  # no CRD; test_token_rotation checks these objects
                key = (group, version, manifest["kind"])
                if key not in validators:
                    crd = next(
                        p
                        for folder in (refdata / "crds", LOCAL_CRDS)
                        for p in folder.glob(f"{group}_*.yaml")
                        if manifest["kind"].lower() in p.name
                    )
                    validators[key] = crd_validator(crd, version)
                assert crd_errors(validators[key], manifest) == [], f"{stack}/{name}"


CLUSTER: dict[str, Any] = {
    "apiVersion": "postgresql.cnpg.io/v1",
    "kind": "Cluster",
    "metadata": {"name": "pg", "namespace": "attic"},
    "spec": {"instances": 3, "storage": {"size": "10Gi", "storageClass": "fast"}},
}


def test_crd_check_accepts_a_valid_cluster(refdata: Path):
    validator = crd_validator(refdata / "crds/postgresql.cnpg.io_clusters.yaml", "v1")
    assert crd_errors(validator, CLUSTER) == []


@pytest.mark.parametrize(
    ("spec_patch", "expected"),
    [
        ({"storage": {"size": "10Gi", "storageClassName": "fast"}}, "storageClassName"),
        ({"instances": 0}, "instances"),
        ({"postgresql": {"parameters": {"max_connections": 200}}}, "max_connections"),
    ],
)
def test_crd_check_rejects_typos_and_bad_types(refdata: Path, spec_patch, expected):
    validator = crd_validator(refdata / "crds/postgresql.cnpg.io_clusters.yaml", "v1")
    manifest = {**CLUSTER, "spec": {**CLUSTER["spec"], **spec_patch}}
    errors = crd_errors(validator, manifest)
    assert any(expected in e for e in errors), errors
