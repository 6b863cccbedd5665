"""Check generated payloads against upstream reference data (chart values, CRD schemas)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator

# Values that hold Kubernetes objects or free-form maps: charts pass them through as-is.
OPEN_VALUES = frozenset(
    {
        "resources",
        "securityContext",
        "containerSecurityContext",
        "podSecurityContext",
        "affinity",
        "nodeSelector",
        "tolerations",
        "topologySpreadConstraints",
        "podAnnotations",
        "podLabels",
        "commonAnnotations",
        # Each key becomes an environment variable (e.g. SeaweedFS's WEED_* store settings).
        "extraEnvironmentVars",
    }
)

# Keys that chart templates read but values.yaml does not list (charts.md §4.2).
TEMPLATE_ONLY: dict[str, set[tuple[str, ...]]] = {
    "minio-operator": {("operator", "image", "digest")},
    # Listed only in a comment of values.yaml; read by the bucket hook template.
    "seaweedfs": {("filer", "s3", "createBuckets")},
    # Commented out in values.yaml; read by the templates (charts.md §1.4, §4.2).
    "gitlab-runner": {
        ("image", "tag"),
        ("gitlabUrl",),
        ("replicas",),
        ("logLevel",),
        ("logFormat",),
        ("podDisruptionBudget",),
        ("serviceAccount", "create"),
        ("runners", "executor"),
        ("runners", "jobNamespace"),
        ("runners", "secret"),
        ("runners", "cache", "secretName"),
    },
}

# refdata folder of each chart name as Helm knows it.
CHART_DIRS = {
    "cloudnative-pg": "cloudnative-pg",
    "plugin-barman-cloud": "plugin-barman-cloud",
    "cert-manager": "cert-manager",
    "operator": "minio-operator",
    "seaweedfs": "seaweedfs",
    "gitlab-runner": "gitlab-runner",
}


def unknown_value_paths(values: Any, defaults: Any, chart_dir: str) -> list[str]:
    """Dotted paths in ``values`` that the chart's values.yaml does not define."""
    extras = TEMPLATE_ONLY.get(chart_dir, set())
    problems: list[str] = []

    def walk(ours: Any, theirs: Any, path: tuple[str, ...]) -> None:
        if not isinstance(ours, dict):
            return
        for key, value in ours.items():
            here = (*path, key)
            if here in extras or key in OPEN_VALUES:
                continue
            if not isinstance(theirs, dict) or key not in theirs:
                problems.append(".".join(here))
                continue
            if theirs[key] == {}:
                continue  # an empty map by default: free-form
            walk(value, theirs[key], here)

    walk(values, defaults, ())
    return problems


def schema_errors(values: Any, schema_path: Path) -> list[str]:
    schema = yaml.safe_load(schema_path.read_text())
    return [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in Draft7Validator(schema).iter_errors(values)
    ]


def crd_validator(crd_path: Path, version: str) -> Draft7Validator:
    """A validator for one served version of a CRD, with Kubernetes' pruning made strict:
    an object schema with properties but no additionalProperties is closed."""
    for doc in yaml.safe_load_all(crd_path.read_text()):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        for served in doc["spec"]["versions"]:
            if served["name"] == version:
                schema = copy.deepcopy(served["schema"]["openAPIV3Schema"])
                _close(schema, top=True)
                return Draft7Validator(schema)
    raise LookupError(f"{crd_path.name} has no version {version}")


def crd_errors(validator: Draft7Validator, manifest: dict[str, Any]) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(manifest)
    ]


def _close(schema: dict[str, Any], top: bool = False) -> None:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    props = schema.get("properties")
    if isinstance(props, dict):
        if top:
            # apiVersion/kind/metadata are validated by the API server, not the CRD schema.
            props.setdefault("metadata", {"type": "object"})
        if "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for child in props.values():
            _close(child)
    if isinstance(schema.get("items"), dict):
        _close(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        _close(schema["additionalProperties"])
