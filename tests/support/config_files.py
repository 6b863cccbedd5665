"""A small valid organization.yaml, variations of it, and the problems loading them reports;
shared by the tests of bad configs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from config_model.loader import ConfigError, load_config

VALID: dict[str, Any] = {
    "organization": {"name": "acme", "full_name": "Acme Corp"},
    "gitlab": {"url": "https://gitlab.com", "state_project_id": "123"},
    "environments": {
        "dev": {"cluster_context": "a:dev", "domain": "dev.example.com"},
        "prod": {"cluster_context": "a:prod", "domain": "example.com"},
    },
}

# ``valid_with(path, DELETE)`` removes the key.
DELETE = object()


def write_config(tmp_path: Path, data: Any) -> Path:
    """``data`` (YAML text, or data dumped as YAML) as ``tmp_path/organization.yaml``."""
    path = tmp_path / "organization.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def config_errors(tmp_path: Path, data: Any) -> list[str]:
    """The problem lines loading ``data`` reports (it must fail)."""
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, data))
    return info.value.lines


def valid_with(path: str, value: Any) -> dict[str, Any]:
    """A copy of :data:`VALID` with the dotted ``path`` set to ``value``."""
    data = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


def config_with(**sections: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of :data:`VALID` with these top-level sections added in order; ``None`` leaves a
    section out."""
    data = copy.deepcopy(VALID)
    data.update({name: section for name, section in sections.items() if section is not None})
    return data
