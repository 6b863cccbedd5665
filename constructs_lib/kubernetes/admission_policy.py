"""A ValidatingAdmissionPolicy enforced with Deny: where RBAC cannot narrow a permission
(``create`` by name, ``delete`` by name pattern, what a ``patch`` may change).

Internal: not listed in the package's ``__all__``, so not part of the public API; it may change in
any release.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct

from constructs_lib.kubernetes.custom_resource import CustomResource, CustomResourceProps


def deny_admission_policy(
    scope: Construct, policy: Mapping[str, Any]
) -> tuple[ITerraformDependable, ITerraformDependable]:
    """Create ``policy`` (``AdmissionPolicy``) and its Deny binding (``AdmissionPolicyBinding``,
    same name and labels) in ``scope``; returns (policy, binding) for ``depends_on``."""
    metadata = policy["metadata"]
    created = CustomResource(scope, "AdmissionPolicy", CustomResourceProps(manifest=policy))
    binding = CustomResource(
        scope,
        "AdmissionPolicyBinding",
        CustomResourceProps(
            manifest={
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": metadata["name"], "labels": metadata["labels"]},
                "spec": {"policyName": metadata["name"], "validationActions": ["Deny"]},
            },
            depends_on=[created.resource],
        ),
    )
    return created.resource, binding.resource


def policy_manifest(
    *,
    name: str,
    labels: Mapping[str, str],
    api_group: str,
    resource: str,
    operations: Sequence[str],
    conditions: Sequence[Mapping[str, str]],
    validations: Sequence[Mapping[str, str]],
) -> dict[str, Any]:
    """A ValidatingAdmissionPolicy on one ``v1`` resource that fails closed: requests matching
    every one of ``conditions`` must pass every one of ``validations``."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [api_group],
                        "apiVersions": ["v1"],
                        "operations": list(operations),
                        "resources": [resource],
                    }
                ]
            },
            "matchConditions": [dict(condition) for condition in conditions],
            "validations": [dict(validation) for validation in validations],
        },
    }


def secret_writer_policy(
    *,
    name: str,
    labels: Mapping[str, str],
    user: str,
    condition: str,
    allowed: Sequence[str],
    who: str,
    what: str,
) -> dict[str, Any]:
    """A policy letting ``user`` (matched by the condition named ``condition``) create or update
    no Secret but ``allowed`` (``namespace/name``, DNS names), and only Opaque ones: RBAC cannot
    name the object of a ``create``."""
    return policy_manifest(
        name=name,
        labels=labels,
        api_group="",
        resource="secrets",
        operations=["CREATE", "UPDATE"],
        conditions=[
            {"name": condition, "expression": f"request.userInfo.username == {_cel(user)}"}
        ],
        validations=[
            {
                "expression": "(object.metadata.namespace + '/' + object.metadata.name) in "
                f"[{', '.join(_cel(a) for a in sorted(allowed))}]",
                "message": f"{who} may only write {what}",
            },
            {
                "expression": "object.type == 'Opaque'",
                "message": f"{who} may only write Opaque Secrets",
            },
        ],
    )


def _cel(text: str) -> str:
    """A CEL string literal (our values are DNS names: no quotes or backslashes)."""
    return "'" + text + "'"
