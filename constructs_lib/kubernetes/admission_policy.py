"""A ValidatingAdmissionPolicy enforced with Deny: where RBAC cannot narrow a permission
(``create`` by name, ``delete`` by name pattern, what a ``patch`` may change)."""

from __future__ import annotations

from collections.abc import Mapping
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
