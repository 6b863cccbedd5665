"""The Secret and ConfigMap volumes gitlab-runner 19.3 puts in a job pod, and its ``pod_spec``
patches applied to them, computed from a rendered ``[runners.kubernetes]`` table.

gitlab-runner tag v19.3.0, ``executors/kubernetes/kubernetes.go``: ``getVolumesForSecrets``
(1913-1934) and ``getVolumesForConfigMaps`` (1965-1988) name each volume and its object after
the table's ``name`` and turn ``items`` into key/path pairs, nothing else; ``setupBuildPod``
(2238-2246) applies ``[[runners.kubernetes.pod_spec]]`` only when
FF_USE_ADVANCED_POD_SPEC_CONFIGURATION is on, through ``applyPodSpecMerge`` (2802-2818) and,
for ``patch_type = "strategic"``, ``strategicpatch.StrategicMergePatch`` against
``api.PodSpec``, whose ``volumes`` merge by ``name`` (k8s.io/api core/v1 ``PodSpec.Volumes``:
``patchStrategy:"merge,retainKeys" patchMergeKey:"name"``; without a ``$retainKeys`` directive
no key is cleared). Maps merge key by key; other values replace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# PodSpec list fields that merge by a key; every other list is replaced.
_MERGE_KEYS = {"volumes": "name", "containers": "name", "initContainers": "name"}


def pod_volumes(kubernetes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pod's Secret and ConfigMap volumes, as the runner builds them."""
    volumes = kubernetes.get("volumes") or {}
    out = []
    for kind, source in (("secret", "secretName"), ("config_map", "name")):
        for volume in volumes.get(kind, []):
            items = [{"key": k, "path": p} for k, p in (volume.get("items") or {}).items()]
            body: dict[str, Any] = {source: volume["name"]}
            if items:
                body["items"] = items
            out.append(
                {"name": volume["name"], "secret" if kind == "secret" else "configMap": body}
            )
    return out


def _merge(original: Any, patch: Any, list_key: str | None = None) -> Any:
    if isinstance(original, dict) and isinstance(patch, dict):
        if any(key.startswith("$") for key in patch):
            raise ValueError(f"patch directives are not modelled: {sorted(patch)}")
        merged = dict(original)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = _merge(merged[key], value, _MERGE_KEYS.get(key))
            else:
                merged[key] = value
        return merged
    if isinstance(original, list) and isinstance(patch, list) and list_key is not None:
        merged_list = [dict(item) for item in original]
        for item in patch:
            found = [i for i, old in enumerate(merged_list) if old[list_key] == item[list_key]]
            if found:
                merged_list[found[0]] = _merge(merged_list[found[0]], item)
            else:
                merged_list.append(item)
        return merged_list
    return patch


def patched_pod_spec(entry: Mapping[str, Any], pod_spec: dict[str, Any]) -> dict[str, Any]:
    """``pod_spec`` after the runner entry's patches (unchanged without the feature flag)."""
    if not entry.get("feature_flags", {}).get("FF_USE_ADVANCED_POD_SPEC_CONFIGURATION"):
        return pod_spec
    for patch in entry["kubernetes"].get("pod_spec", []):
        if patch.get("patch_type", "strategic") != "strategic":
            raise ValueError(f"patch type {patch['patch_type']!r} is not modelled")
        pod_spec = _merge(pod_spec, json.loads(patch["patch"]))
    return pod_spec
