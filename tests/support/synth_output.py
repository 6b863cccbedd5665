"""Read synthesized stacks the way OpenTofu would: as JSON documents per stack folder."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class SynthOutput:
    root: Path

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.root / "manifest.json").read_text())

    def stack_names(self) -> list[str]:
        return list(self.manifest["stacks"])

    def stack(self, name: str) -> dict[str, Any]:
        path = self.root / self.manifest["stacks"][name]["synthesizedStackPath"]
        return json.loads(path.read_text())

    def stacks(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for name in self.stack_names():
            yield name, self.stack(name)


def resources(doc: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    """Resources of one type, by Terraform name."""
    return doc.get("resource", {}).get(rtype, {})


def stacks_of_kind(synths: list[SynthOutput], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``<kind>-<env>`` stack of the synths, by name."""
    for synth in synths:
        for name, doc in synth.stacks():
            if name.startswith(f"{kind}-"):
                yield name, doc


def manifests(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The ``kubernetes_manifest`` objects of one kind."""
    return [
        item["manifest"]
        for item in resources(doc, "kubernetes_manifest").values()
        if item["manifest"]["kind"] == kind
    ]


def addresses(doc: dict[str, Any]) -> list[str]:
    """Every resource, data source and output address of a stack, sorted."""
    found = [f"{t}.{n}" for t, items in doc.get("resource", {}).items() for n in items]
    found += [f"data.{t}.{n}" for t, items in doc.get("data", {}).items() for n in items]
    found += [f"output.{n}" for n in doc.get("output", {})]
    return sorted(found)


def construct_path(item: dict[str, Any]) -> str:
    """The construct path that produced a resource (kept in cdktf's metadata)."""
    return str(item.get("//", {}).get("metadata", {}).get("path", ""))


def helm_releases(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources(doc, "helm_release")


def namespace_name(doc: dict[str, Any], value: str) -> str:
    """Resolve a ``${kubernetes_namespace_v1.<name>.metadata[0].name}`` reference."""
    prefix, suffix = "${kubernetes_namespace_v1.", ".metadata[0].name}"
    if value.startswith(prefix) and value.endswith(suffix):
        ns = resources(doc, "kubernetes_namespace_v1")[value[len(prefix) : -len(suffix)]]
        return str(ns["metadata"]["name"])
    return value


def strings_in(value: Any) -> Iterator[str]:
    """Every key and string value in nested data."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)
    elif isinstance(value, str):
        yield value


def runner_stacks(synth: SynthOutput) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, document) of every runners-<env> stack."""
    for name, doc in synth.stacks():
        if name.startswith("runners-"):
            yield name, doc


def runner_configs(doc: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Runner type (``nix_protected``, ...) -> (Helm values, parsed ``[[runners]]`` entry)."""
    out = {}
    for release in helm_releases(doc).values():
        assert release["chart"] == "gitlab-runner"
        values = yaml.safe_load(release["values"][0])
        config = tomllib.loads(values["runners"]["config"])
        (entry,) = config["runners"]
        kind = release["name"].removeprefix("gitlab-runner-").replace("-", "_")
        out[kind] = (values, entry)
    return out


_REFERENCE = re.compile(r"\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)[.}\[]")


def dependencies(doc: dict[str, Any]) -> dict[str, set[str]]:
    """Resource address -> the resources OpenTofu creates before it: those it references
    (``${type.name...}``) and those in its ``depends_on``."""
    graph: dict[str, set[str]] = {}
    for rtype, items in doc.get("resource", {}).items():
        for name, item in items.items():
            refs = {f"{t}.{n}" for t, n in _REFERENCE.findall(json.dumps(item))}
            refs |= set(item.get("depends_on", []))
            graph[f"{rtype}.{name}"] = {r for r in refs if not r.startswith(("var.", "data."))}
    return graph
