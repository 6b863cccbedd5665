"""A namespaced Role and its binding to one ServiceAccount, the shape every ops workload needs
in each namespace it acts on.

Internal: not listed in the package's ``__all__``, so not part of the public API; it may change in
any release.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_kubernetes.role_binding_v1 import (
    RoleBindingV1,
    RoleBindingV1RoleRef,
    RoleBindingV1Subject,
)
from cdktf_cdktf_provider_kubernetes.role_v1 import RoleV1, RoleV1Rule
from constructs import Construct


def grant_role(
    scope: Construct,
    target: str,
    *,
    name: str,
    labels: Mapping[str, str],
    account: str,
    account_namespace: str,
    rules: Sequence[RoleV1Rule],
    depends_on: Sequence[ITerraformDependable] = (),
) -> list[ITerraformDependable]:
    """Role ``name`` in ``target`` with ``rules``, bound to ServiceAccount ``account`` of
    ``account_namespace``; construct ids ``Role-<target>`` and ``RoleBinding-<target>``.

    ``depends_on`` is what the Role waits for (e.g. ``target`` when this stack creates it and
    names it by value); the binding waits for the Role.
    """
    metadata = {"name": name, "namespace": target, "labels": dict(labels)}
    role = RoleV1(
        scope, f"Role-{target}", metadata=metadata, depends_on=list(depends_on) or None, rule=rules
    )
    binding = RoleBindingV1(
        scope,
        f"RoleBinding-{target}",
        metadata=metadata,
        depends_on=[role],
        role_ref=RoleBindingV1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="Role", name=name
        ),
        subject=[
            RoleBindingV1Subject(kind="ServiceAccount", name=account, namespace=account_namespace)
        ],
    )
    return [role, binding]
