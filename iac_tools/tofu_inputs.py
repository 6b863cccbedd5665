"""What ``attic-iac tofu`` reads before OpenTofu runs: the synthesized stacks (the manifest,
their dependency order, each one's backend block and required inputs) and the environment (a
deployment freeze, the GitLab state password, the ``TF_VAR_*`` inputs, OpenTofu's own
environment). Nothing here runs OpenTofu.

Standard library only, like :mod:`iac_tools.tofu`: CI runs the driver on a bare ``python3``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks.stack_kinds import STACK_KINDS, split_stack_id

JOB_TOKEN_USER = "gitlab-ci-token"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


class DriverError(Exception):
    """Bad input: one line per problem, exit 2, and OpenTofu never ran for it."""

    def __init__(self, *lines: str) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


@dataclass(frozen=True, slots=True)
class Stack:
    """One synthesized stack: its id, folder and the stacks it depends on."""

    name: str
    directory: Path
    dependencies: tuple[str, ...]

    @property
    def document(self) -> Path:
        return self.directory / "cdk.tf.json"


@dataclass(frozen=True, slots=True)
class Credentials:
    """The child environment's state password and the backend user it needs.

    Attributes:
        env: variables to add to OpenTofu's environment (the password, when mapped).
        username: backend user to set at init, or None to keep the synthesized one.
        source: where the password came from, for messages (never the value).
    """

    env: Mapping[str, str]
    username: str | None
    source: str


def default_outdir() -> Path:
    """``$CDKTF_OUTDIR`` as the cdktf CLI sets it, else ``cdktf.out``."""
    return Path(os.environ.get("CDKTF_OUTDIR") or "cdktf.out")


def load_stacks(outdir: Path) -> dict[str, Stack]:
    """Every stack the manifest lists, by id."""
    manifest_path = outdir / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise DriverError(
            f"{manifest_path} not found: synthesize first (`make synth` or `attic-iac synth`)"
        ) from None
    except (OSError, ValueError) as exc:
        raise DriverError(f"{manifest_path}: unreadable ({exc}); synthesize again") from None
    stacks: dict[str, Stack] = {}
    for name, entry in manifest.get("stacks", {}).items():
        stacks[name] = Stack(
            name=name,
            directory=outdir / entry["workingDirectory"],
            dependencies=tuple(entry.get("dependencies", ())),
        )
    if not stacks:
        raise DriverError(f"{manifest_path} lists no stacks; synthesize again")
    return stacks


def environment_stacks(stacks: Mapping[str, Stack], environment: str) -> list[Stack]:
    """The environment's stacks in apply order, checked against the manifest's dependencies."""
    order = {kind.name: index for index, kind in enumerate(STACK_KINDS)}
    found: list[tuple[int, Stack]] = []
    environments: set[str] = set()
    for stack in stacks.values():
        parts = split_stack_id(stack.name)
        if parts is None:
            continue
        environments.add(parts[1])
        if parts[1] == environment:
            found.append((order[parts[0]], stack))
    if not found:
        raise DriverError(
            f"--env: no synthesized stacks for environment {environment!r} "
            f"(allowed: {', '.join(sorted(environments)) or 'none'})"
        )
    chosen = [stack for _, stack in sorted(found, key=lambda item: item[0])]
    seen: set[str] = set()
    for stack in chosen:
        missing = [d for d in stack.dependencies if d in stacks and d not in seen]
        if missing:
            raise DriverError(f"{stack.name} depends on {', '.join(missing)}, ordered after it")
        seen.add(stack.name)
    return chosen


def freeze_notice(environ: Mapping[str, str]) -> list[str]:
    """Lines explaining a deployment freeze, or none when deployments may run."""
    own = environ.get("DEPLOYMENT_FREEZE", "").strip().lower() in TRUE_WORDS
    gitlab = bool(environ.get("CI_DEPLOY_FREEZE", "").strip())
    if not (own or gitlab):
        return []
    why = "DEPLOYMENT_FREEZE is set" if own else "a GitLab deploy freeze period is active"
    lines = [f"refused: deployments are frozen ({why}); nothing was applied or destroyed."]
    if environ.get("FREEZE_REASON"):
        lines.append(f"reason: {environ['FREEZE_REASON']}")
    if environ.get("FREEZE_CONTACT"):
        lines.append(f"contact: {environ['FREEZE_CONTACT']}")
    lines.append("init, plan and unlock still work; apply when the freeze is lifted.")
    return lines


def state_credentials(environ: Mapping[str, str]) -> Credentials:
    """Where the GitLab state password comes from, and the user name it needs."""
    job_token = environ.get("CI_JOB_TOKEN", "")
    if environ.get("TF_HTTP_PASSWORD"):
        is_job_token = bool(job_token) and environ["TF_HTTP_PASSWORD"] == job_token
        return Credentials(
            env={},
            username=JOB_TOKEN_USER if is_job_token else None,
            source="TF_HTTP_PASSWORD",
        )
    if job_token:
        # GitLab only takes a job token with this login; access tokens work with any.
        return Credentials(
            env={"TF_HTTP_PASSWORD": job_token}, username=JOB_TOKEN_USER, source="CI_JOB_TOKEN"
        )
    if environ.get("GITLAB_TOKEN"):
        return Credentials(
            env={"TF_HTTP_PASSWORD": environ["GITLAB_TOKEN"]}, username=None, source="GITLAB_TOKEN"
        )
    raise DriverError(
        "TF_HTTP_PASSWORD is not set, and neither is CI_JOB_TOKEN or GITLAB_TOKEN: OpenTofu "
        "cannot read the GitLab-managed state. Locally export TF_HTTP_PASSWORD (or GITLAB_TOKEN) "
        "with a personal or project access token with the api scope (Maintainer on the state "
        "project to write); in GitLab CI the job token is used."
    )


def child_environment(environ: Mapping[str, str], credentials: Credentials) -> dict[str, str]:
    """OpenTofu's environment: ours, the mapped password, and the agent's kubeconfig."""
    env = dict(environ)
    env.update(credentials.env)
    env["TF_IN_AUTOMATION"] = "1"
    # The GitLab agent sets KUBECONFIG; the kubernetes and helm providers read these instead.
    kubeconfig = environ.get("KUBECONFIG")
    if kubeconfig and not (environ.get("KUBE_CONFIG_PATH") or environ.get("KUBE_CONFIG_PATHS")):
        env["KUBE_CONFIG_PATHS"] = kubeconfig
    return env


def _document(stack: Stack) -> dict[str, Any]:
    try:
        document = json.loads(stack.document.read_text())
    except (OSError, ValueError) as exc:
        raise DriverError(f"{stack.document}: unreadable ({exc}); synthesize again") from None
    if not isinstance(document, dict):
        raise DriverError(f"{stack.document}: not a stack document; synthesize again")
    return document


def backend_of(stack: Stack) -> dict[str, Any]:
    """The stack's synthesized ``terraform.backend`` block."""
    backend = _document(stack).get("terraform", {}).get("backend")
    if not isinstance(backend, dict):
        raise DriverError(f"{stack.document} has no backend; synthesize again")
    return backend


def missing_inputs(stack: Stack, environ: Mapping[str, str]) -> list[str]:
    """One line per variable of ``stack`` that has no default and no (non-empty)
    ``TF_VAR_<name>``: OpenTofu, run with ``-input=false``, would stop at it."""
    lines = []
    for name, spec in (_document(stack).get("variable") or {}).items():
        if "default" in spec or environ.get(f"TF_VAR_{name}"):
            continue
        what = spec.get("description") or "no description"
        lines.append(f"{stack.name}: no value for variable {name} (set TF_VAR_{name}): {what}")
    return lines
