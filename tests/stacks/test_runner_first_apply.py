"""runners-<env> applied to an empty cluster: every manager waits for what its pods need, and
nix jobs start even though attic-<env>, applied afterwards, has not written their token yet."""

from __future__ import annotations

import tomllib
from typing import Any

import yaml

from constructs_lib.runners.attic_flywheel import TOKEN_KEY
from tests.support.graph import reachable
from tests.support.netpol import from_terraform, selects
from tests.support.runner_pod import patched_pod_spec, pod_volumes
from tests.support.synth_output import (
    SynthOutput,
    dependencies,
    helm_releases,
    namespace_name,
    resources,
    stacks_of_kind,
)

_NAMESPACED = (
    "kubernetes_limit_range_v1",
    "kubernetes_resource_quota_v1",
    "kubernetes_network_policy_v1",
)


def _ancestors(doc: dict[str, Any], address: str) -> set[str]:
    """Everything OpenTofu creates before ``address``, transitively."""
    return reachable(dependencies(doc), address)


def _in_place(doc: dict[str, Any], namespace: str, labels: dict[str, str]) -> set[str]:
    """What pods with ``labels`` in ``namespace`` need there first: the LimitRange and
    ResourceQuota, and every NetworkPolicy that selects them."""
    found = set()
    for rtype in _NAMESPACED:
        for name, item in resources(doc, rtype).items():
            if namespace_name(doc, item["metadata"]["namespace"]) != namespace:
                continue
            policy = from_terraform(item) if rtype == "kubernetes_network_policy_v1" else None
            if policy is None or selects(policy["spec"].get("podSelector"), labels):
                found.add(f"{rtype}.{name}")
    return found


def _manager(release: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    values = yaml.safe_load(release["values"][0])
    [entry] = tomllib.loads(values["runners"]["config"])["runners"]
    return values, entry


def test_every_manager_waits_for_what_it_and_its_jobs_need(all_synths: list[SynthOutput]):
    """Created first: the PriorityClasses manager and job pods name, the NetworkPolicies that
    select them (a manager behind deny-all egress cannot register), the LimitRange and
    ResourceQuota of both namespaces (LimitRange defaults apply only to pods created after it),
    and every ConfigMap a job mounts that this stack creates."""
    checked = 0
    for synth in all_synths:
        for stack, doc in stacks_of_kind([synth], "runners"):
            classes = {
                item["metadata"]["name"]: f"kubernetes_priority_class_v1.{name}"
                for name, item in resources(doc, "kubernetes_priority_class_v1").items()
            }
            config_maps = {
                (namespace_name(doc, item["metadata"]["namespace"]), item["metadata"]["name"]): (
                    f"kubernetes_config_map_v1.{name}"
                )
                for name, item in resources(doc, "kubernetes_config_map_v1").items()
            }
            for name, release in helm_releases(doc).items():
                values, entry = _manager(release)
                kube = entry["kubernetes"]
                job_ns = namespace_name(doc, kube["namespace"])
                needed = {
                    classes[values["priorityClassName"]],
                    classes[kube["priority_class_name"]],
                }
                needed |= _in_place(
                    doc, namespace_name(doc, release["namespace"]), values["podLabels"]
                )
                needed |= _in_place(doc, job_ns, kube["pod_labels"])
                needed |= {
                    config_maps[(job_ns, volume["name"])]
                    for volume in kube.get("volumes", {}).get("config_map", [])
                }
                missing = needed - _ancestors(doc, f"helm_release.{name}")
                assert not missing, f"{stack}: {release['name']} may start before {sorted(missing)}"
                checked += 1
    assert checked >= 30


def test_nix_jobs_start_before_attic_writes_their_token(all_synths: list[SynthOutput]):
    """attic-<env> (applied after runners-<env>) writes the token Secret. A pod whose Secret
    volume is not optional waits in ContainerCreating until poll_timeout; with the runner's
    pod_spec patch the volume is optional, and everything else about it stays as rendered."""
    checked = 0
    for synth in all_synths:
        for stack, doc in stacks_of_kind([synth], "runners"):
            for release in helm_releases(doc).values():
                _, entry = _manager(release)
                kube = entry["kubernetes"]
                if not kube.get("volumes", {}).get("secret"):
                    continue
                built = {"volumes": pod_volumes(kube)}
                spec = patched_pod_spec(entry, built)
                assert len(spec["volumes"]) == len(built["volumes"]), stack
                for before, after in zip(built["volumes"], spec["volumes"], strict=True):
                    if "secret" not in before:
                        assert after == before, stack
                        continue
                    assert after["secret"] == {**before["secret"], "optional": True}, stack
                    assert after["secret"]["items"] == [{"key": TOKEN_KEY, "path": TOKEN_KEY}]
                checked += 1
    assert checked >= 6
