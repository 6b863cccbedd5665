"""The CI/CD component templates (templates/<name>/template.yml) as GitLab reads them: the spec
header, the jobs, and GitLab's interpolation of the inputs; shared by the component tests."""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml

from tests.conftest import REPO

NAMES = ("nix-build", "docker-build", "k8s-deploy")
INPUT = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")
# Required inputs, as a consumer would give them.
EXAMPLES: dict[str, Any] = {
    "server": "https://attic.example.com/",
    "cache": "ci",
    "agent": "platform/agents:production",
    "namespace": "web",
    "environment": "production",
}


def documents(name: str) -> list[Any]:
    return list(yaml.safe_load_all((REPO / "templates" / name / "template.yml").read_text()))


def spec_of(name: str) -> dict[str, dict[str, Any]]:
    inputs: dict[str, dict[str, Any]] = documents(name)[0]["spec"]["inputs"]
    return inputs


def input_values(name: str, **overrides: Any) -> dict[str, Any]:
    """Every input's value: the override, else the default, else the example."""
    values = {}
    for key, spec in spec_of(name).items():
        if key in overrides:
            values[key] = overrides[key]
        elif "default" in spec:
            values[key] = spec["default"]
        else:
            values[key] = EXAMPLES[key]
    unknown = set(overrides) - set(values)
    assert not unknown, f"not inputs of {name}: {unknown}"
    return values


def as_text(value: Any) -> str:
    """An input inside a longer string: GitLab writes Ruby's to_s (true, not True)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def interpolate(node: Any, values: dict[str, Any]) -> Any:
    """GitLab's interpolation: a node that is one block becomes the typed value; blocks inside
    a longer string become text. Keys are interpolated too."""
    if isinstance(node, dict):
        return {interpolate(k, values): interpolate(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(item, values) for item in node]
    if isinstance(node, str):
        whole = INPUT.fullmatch(node)
        if whole:
            return copy.deepcopy(values[whole.group(1)])
        return INPUT.sub(lambda m: as_text(values[m.group(1)]), node)
    return node


def jobs_of(name: str, **inputs: Any) -> dict[str, Any]:
    jobs: dict[str, Any] = interpolate(documents(name)[1], input_values(name, **inputs))
    return jobs


def visible(jobs: dict[str, Any]) -> list[str]:
    return [name for name in jobs if not name.startswith(".")]
