"""The parts the GitLab CI/CD components are made of: the :class:`Component` record, input specs
and their interpolation, and the pieces several components share.

Each component is built in a module of its own (:mod:`iac_tools.ci_nix_build`,
:mod:`iac_tools.ci_docker_build`, :mod:`iac_tools.ci_k8s_deploy`);
:mod:`iac_tools.ci_components` renders them into ``templates/<name>/template.yml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

JOB_NAME_REGEX = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$"
VARIABLE_NAME_REGEX = r"^[A-Za-z_][A-Za-z0-9_]*$"
DNS_LABEL_REGEX = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
FLAKES = "extra-experimental-features = nix-command flakes"


@dataclass(frozen=True, kw_only=True, slots=True)
class Component:
    """One CI/CD component.

    Attributes:
        name: the folder under ``templates/``, and the name consumers include.
        inputs: ``spec.inputs``, by input name.
        jobs: the jobs document, by job name (names may use inputs).
        module: the module that builds it (its ``__name__``), named in the template's header.
    """

    name: str
    inputs: Mapping[str, Mapping[str, Any]]
    jobs: Mapping[str, Any]
    module: str

    @property
    def path(self) -> Path:
        """The template's path relative to the repository."""
        return Path("templates") / self.name / "template.yml"

    @property
    def generator(self) -> Path:
        """The module that builds it, relative to the repository."""
        return Path(*self.module.split(".")).with_suffix(".py")


def inp(name: str) -> str:
    """The interpolation block of input ``name``."""
    return f"$[[ inputs.{name} ]]"


def input_spec(
    kind: str,
    description: str,
    default: Any = None,
    *,
    options: Sequence[str] | None = None,
    regex: str | None = None,
) -> dict[str, Any]:
    """An input; without ``default`` it is required."""
    spec: dict[str, Any] = {"type": kind}
    if default is not None:
        spec["default"] = default
    if options is not None:
        spec["options"] = list(options)
    if regex is not None:
        spec["regex"] = regex
    spec["description"] = description
    return spec


def common_inputs(job_name: str, stage: str) -> dict[str, dict[str, Any]]:
    return {
        "job_name": input_spec(
            "string",
            "Name of the job; include the component twice with different names for two jobs.",
            job_name,
            regex=JOB_NAME_REGEX,
        ),
        "stage": input_spec("string", "Stage of the job.", stage),
    }


def tags_input(default: str, what: str) -> dict[str, Any]:
    return input_spec(
        "array",
        f"Runner tags of the job. Default: the fleet's {default} runner type ({what}).",
        [default],
    )


def timeout_input(default: str) -> dict[str, Any]:
    return input_spec("string", "Job timeout (GitLab duration, e.g. 90m).", default)


def ops_script(name: str) -> str:
    return resources.files("constructs_lib.runners.ops").joinpath(name).read_text()


def append_nix_config(comment: str, lines: Sequence[str]) -> str:
    """Shell text appending ``lines`` to ``NIX_CONFIG``, after whatever the runner put there."""
    return (
        f"# {comment}\n"
        'NIX_CONFIG="${NIX_CONFIG:+$NIX_CONFIG\n}' + "\n".join(lines) + '"\nexport NIX_CONFIG\n'
    )
