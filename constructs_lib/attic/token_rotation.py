"""Scoped Attic tokens kept fresh in Secrets: minted in the cluster, never seen by Terraform.

A Job runs once per change of the declared tokens (so a new token exists right after apply);
a CronJob runs hourly and re-mints a token when its Secret is missing, its declaration changed
or less than ``rotate_before`` of its validity remains. The rotator may touch only the named
Secrets: RBAC scopes get/update/patch by name, and because RBAC cannot scope ``create`` by
name, a ValidatingAdmissionPolicy rejects any other Secret the rotator tries to write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_kubernetes.cron_job_v1 import CronJobV1, CronJobV1Spec
from cdktf_cdktf_provider_kubernetes.job_v1 import JobV1, JobV1Spec, JobV1Timeouts
from cdktf_cdktf_provider_kubernetes.role_v1 import RoleV1Rule
from constructs import Construct

from constructs_lib.attic.ops_pod import (
    MINT_FLAGS,
    OPS_DIR,
    SCRIPT,
    TOKEN_DIR,
    AtticadmInputs,
    Mint,
    ops_objects,
    ops_pod,
    ops_revision,
    ops_script,
)
from constructs_lib.kubernetes.admission_policy import (
    deny_admission_policy,
    secret_writer_policy,
)
from constructs_lib.kubernetes.role_grant import grant_role
from constructs_lib.kubernetes.structs import to_struct
from constructs_lib.validation import DNS_LABEL, raise_if_problems
from upstream_formats.attic_names import PATTERN_RULE, is_cache_pattern

__all__ = [
    "DEFAULT_NAME",
    "SCHEDULE",
    "AtticTokenRotation",
    "AtticTokenRotationProps",
    "TokenSpec",
]

SCHEDULE = "17 * * * *"
"""The default schedule: hourly, the period ``rotate_before_seconds`` windows are measured in."""
_PERMISSIONS = tuple(name for name, _ in MINT_FLAGS)


DEFAULT_NAME = "attic-token-rotator"
"""The default base name of the Jobs and their objects."""


@dataclass(frozen=True, kw_only=True, slots=True)
class TokenSpec:
    """One token and where it lives.

    Attributes:
        name: token id (a DNS label); the JWT subject is ``attic-iac/<name>``.
        namespace: namespace of its Secret (must exist when the stack is applied).
        secret_name: the Secret; the token is under key ``token``.
        validity_seconds: lifetime of each minted token.
        rotate_before_seconds: re-mint when less than this remains.
        grants: permission (``pull``, ``push``, ``delete``, ``create_cache``,
            ``configure_cache``, ``configure_cache_retention``, ``destroy_cache``) to cache
            patterns, as atticadm's flags.
    """

    name: str
    namespace: str
    secret_name: str
    validity_seconds: int
    rotate_before_seconds: int
    grants: Mapping[str, Sequence[str]]

    def mint(self) -> Mint:
        """The ``atticadm make-token`` run that mints this token (used by the construct)."""
        return Mint(
            file=self.name,
            sub=f"attic-iac/{self.name}",
            validity=f"{self.validity_seconds}s",
            grants=self.grants,
        )

    def wire(self) -> dict[str, Any]:
        """The token as the in-cluster script reads it, with a hash of what it grants."""
        declared = {
            "validity_seconds": self.validity_seconds,
            "grants": {k: list(v) for k, v in self.grants.items() if v},
        }
        return {
            "name": self.name,
            "namespace": self.namespace,
            "secret_name": self.secret_name,
            "validity_seconds": self.validity_seconds,
            "rotate_before_seconds": self.rotate_before_seconds,
            # Changes of what a token grants re-mint it at once.
            "spec_hash": hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()[
                :16
            ],
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class AtticTokenRotationProps:
    """Props of :class:`AtticTokenRotation`.

    Attributes:
        namespace: atticd's namespace, where the Jobs run.
        tokens: the tokens (at least one).
        attic: image, ``server.toml`` and signing key for ``atticadm``.
        python_image: image that runs the script (Python 3.11+, standard library only).
        name: base name of the objects. Default ``"attic-token-rotator"``.
        schedule: CronJob schedule. Default hourly at minute 17.
        admission_policy: add the ValidatingAdmissionPolicy that limits ``create`` to the
            named Secrets (Kubernetes >= 1.30). Default ``True``.
        depends_on: resources that must exist first. Default - none.
    """

    namespace: str
    tokens: Sequence[TokenSpec]
    attic: AtticadmInputs
    python_image: str
    name: str = DEFAULT_NAME
    schedule: str = SCHEDULE
    admission_policy: bool = True
    depends_on: Sequence[ITerraformDependable] = field(default_factory=tuple)


class AtticTokenRotation(Construct):
    """Mint declared tokens into Secrets now and rotate them hourly.

    Creates a ServiceAccount (``ServiceAccount``), a ConfigMap with the script and the tokens
    (``Spec``), a Role and RoleBinding per token namespace (``Role-<namespace>``,
    ``RoleBinding-<namespace>``) that may write only the named Secrets, with
    ``admission_policy`` a ValidatingAdmissionPolicy and its binding (``AdmissionPolicy``,
    ``AdmissionPolicyBinding``), a Job run at each change of the declarations (``Job``) and the
    CronJob (``Schedule``). No token passes through Terraform.

    Attributes:
        admission_policy_manifest: the ValidatingAdmissionPolicy as data, when it is added.
        labels: labels of the rotation pods (for NetworkPolicies).
        secrets: ``(namespace, name)`` of every token Secret.

    Example:
        ```python
        from constructs_lib.attic.ops_pod import AtticadmInputs
        from constructs_lib.attic.token_rotation import (
            AtticTokenRotation,
            AtticTokenRotationProps,
            TokenSpec,
        )
        from constructs_lib.versions import ATTIC_IMAGE, OPS_PYTHON_IMAGE

        AtticTokenRotation(
            stack,
            "Tokens",
            AtticTokenRotationProps(
                namespace="attic",
                tokens=[
                    TokenSpec(
                        name="ci-push",
                        namespace="ci-jobs",
                        secret_name="attic-ci-token",
                        validity_seconds=7 * 86400,
                        rotate_before_seconds=2 * 86400,
                        grants={"pull": ["main"], "push": ["main"]},
                    )
                ],
                attic=AtticadmInputs(
                    image=ATTIC_IMAGE.ref,
                    config_map="attic-config",
                    signing_secret="attic-token-signing",
                    signing_key="ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64",
                ),
                python_image=OPS_PYTHON_IMAGE.ref,
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: AtticTokenRotationProps) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems("AtticTokenRotation", _problems(props))
        ns, name = props.namespace, props.name
        self.labels = {
            "app.kubernetes.io/name": "attic",
            "app.kubernetes.io/component": "token-rotation",
            "app.kubernetes.io/managed-by": "attic-iac",
        }
        self.secrets = [(t.namespace, t.secret_name) for t in props.tokens]
        spec = json.dumps({"tokens": [t.wire() for t in props.tokens]}, indent=2, sort_keys=True)
        script = ops_script()
        account, config = ops_objects(
            self,
            "Spec",
            name=name,
            namespace=ns,
            labels=self.labels,
            data={SCRIPT: script, "rotation.json": spec},
        )
        access: list[ITerraformDependable] = []
        by_namespace: dict[str, list[str]] = {}
        for token in props.tokens:
            by_namespace.setdefault(token.namespace, []).append(token.secret_name)
        for target, secret_names in by_namespace.items():
            access += self._grant(props, target, sorted(secret_names), account.metadata.name)
        if props.admission_policy:
            access += self._admission_policy(props, account.metadata.name)

        def pod() -> dict[str, Any]:
            return ops_pod(
                attic=props.attic,
                mints=[token.mint() for token in props.tokens],
                python_image=props.python_image,
                script_config_map=config.metadata.name,
                args=["tokens", "--spec", f"{OPS_DIR}/rotation.json", "--minted-dir", TOKEN_DIR],
                labels=self.labels,
                service_account=account.metadata.name,
                api_access=True,
            )

        revision = ops_revision(props.attic, props.python_image, script, spec)
        JobV1(
            self,
            "Job",
            metadata={"name": f"{name}-{revision}", "namespace": ns, "labels": self.labels},
            spec=to_struct(
                JobV1Spec,
                {"backoff_limit": 2, "active_deadline_seconds": 600, "template": pod()},
            ),
            wait_for_completion=True,
            timeouts=JobV1Timeouts(create="10m", update="10m"),
            depends_on=[*props.depends_on, *access],
        )
        CronJobV1(
            self,
            "Schedule",
            metadata={"name": name, "namespace": ns, "labels": self.labels},
            spec=to_struct(
                CronJobV1Spec,
                {
                    "schedule": props.schedule,
                    "concurrency_policy": "Forbid",
                    "starting_deadline_seconds": 1800,
                    "successful_jobs_history_limit": 3,
                    "failed_jobs_history_limit": 3,
                    "job_template": {
                        "metadata": {"labels": self.labels},
                        "spec": {
                            "backoff_limit": 2,
                            "active_deadline_seconds": 600,
                            "template": pod(),
                        },
                    },
                },
            ),
            depends_on=[*props.depends_on, *access],
        )

    def _grant(
        self,
        props: AtticTokenRotationProps,
        target: str,
        secret_names: list[str],
        account: str,
    ) -> list[ITerraformDependable]:
        return grant_role(
            self,
            target,
            name=props.name,
            labels=self.labels,
            account=account,
            account_namespace=props.namespace,
            # A target may be this stack's own namespace, named here by value.
            depends_on=props.depends_on,
            rules=[
                RoleV1Rule(
                    api_groups=[""],
                    resources=["secrets"],
                    resource_names=secret_names,
                    verbs=["get", "update", "patch"],
                ),
                # RBAC cannot name objects on create; the admission policy does.
                RoleV1Rule(api_groups=[""], resources=["secrets"], verbs=["create"]),
            ],
        )

    def _admission_policy(
        self, props: AtticTokenRotationProps, account: str
    ) -> list[ITerraformDependable]:
        policy_name = f"{props.name}.{props.namespace}.attic-iac.io"
        allowed = sorted(f"{ns}/{secret}" for ns, secret in self.secrets)
        user = f"system:serviceaccount:{props.namespace}:{account}"
        self.admission_policy_manifest: dict[str, Any] = secret_writer_policy(
            name=policy_name,
            labels=self.labels,
            user=user,
            condition="token-rotator",
            allowed=allowed,
            who="the Attic token rotator",
            what="its declared Secrets",
        )
        return list(deny_admission_policy(self, self.admission_policy_manifest))


def _problems(props: AtticTokenRotationProps) -> list[str]:
    problems = ["" if props.tokens else "tokens: at least one token is needed"]
    seen: set[str] = set()
    places: set[tuple[str, str]] = set()
    for token in props.tokens:
        where = f"tokens[{token.name}]"
        for prop, value in (
            ("name", token.name),
            ("namespace", token.namespace),
            ("secret_name", token.secret_name),
        ):
            if not DNS_LABEL.match(value):
                problems.append(f"{where}.{prop}: {value!r} is not a Kubernetes name")
        if token.name in seen:
            problems.append(f"{where}: duplicate token name")
        seen.add(token.name)
        if (token.namespace, token.secret_name) in places:
            problems.append(f"{where}: {token.namespace}/{token.secret_name} is used twice")
        places.add((token.namespace, token.secret_name))
        unknown = sorted(set(token.grants) - set(_PERMISSIONS))
        if unknown:
            problems.append(
                f"{where}.grants: unknown permission(s) {', '.join(unknown)} "
                f"(allowed: {', '.join(_PERMISSIONS)})"
            )
        patterns = [p for v in token.grants.values() for p in v]
        if not patterns:
            problems.append(f"{where}.grants: grants nothing")
        problems += [
            f"{where}.grants: {p!r} is not a cache pattern ({PATTERN_RULE})"
            for p in patterns
            if not is_cache_pattern(p)
        ]
        if not 0 < token.rotate_before_seconds < token.validity_seconds:
            problems.append(
                f"{where}: rotate_before_seconds must be > 0 and below validity_seconds "
                f"(got {token.rotate_before_seconds} of {token.validity_seconds})"
            )
    if len(props.schedule.split()) != 5:
        problems.append(f"schedule: {props.schedule!r} must have 5 cron fields")
    return problems
