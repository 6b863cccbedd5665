"""The ConfigMap that nix job pods mount at ``/opt/attic-flywheel``: ``setup.sh`` (sourced by
the runner's ``pre_build_script``) and ``flywheel.sh`` (run by jobs around their build).

It holds no secret: the token comes from its own Secret, mounted next to it. Job pods read the
ConfigMap when they start, so a changed script reaches the next job without restarting runners.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_kubernetes.config_map_v1 import ConfigMapV1
from constructs import Construct

from constructs_lib.kubernetes.structs import literal_text
from constructs_lib.runners.attic_flywheel import FLYWHEEL_SCRIPT, SETUP_SCRIPT
from constructs_lib.runners.labels import PART_OF
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = ["DEFAULT_NAME", "AtticFlywheelScripts", "AtticFlywheelScriptsProps", "flywheel_scripts"]

DEFAULT_NAME = "attic-flywheel"
"""The ConfigMap's default name."""


def flywheel_scripts() -> dict[str, str]:
    """Both scripts by file name, shipped inside this package."""
    package = resources.files("constructs_lib.runners.ops")
    return {name: package.joinpath(name).read_text() for name in (SETUP_SCRIPT, FLYWHEEL_SCRIPT)}


@dataclass(frozen=True, kw_only=True, slots=True)
class AtticFlywheelScriptsProps:
    """Props of :class:`AtticFlywheelScripts`.

    Attributes:
        namespace: the nix jobs' namespace (ConfigMap volumes cannot cross namespaces).
        name: the ConfigMap's name, also the job pods' volume name. Default ``"attic-flywheel"``.
        depends_on: resources that must exist first, e.g. the namespace when it is named here
            by value. Default - none.
    """

    namespace: str
    name: str = DEFAULT_NAME
    depends_on: Sequence[ITerraformDependable] = field(default_factory=tuple)


class AtticFlywheelScripts(Construct):
    """The flywheel scripts as a ConfigMap for nix job pods.

    Creates one ConfigMap (child id ``Scripts``) holding ``setup.sh`` and ``flywheel.sh``; give
    its name to :func:`~constructs_lib.runners.attic_flywheel.flywheel_job_settings`.

    Attributes:
        name: the ConfigMap's name, as a plain string for the runner's TOML
            (``flywheel_job_settings(config_map=...)``).
        config_map: the ConfigMap, for ``depends_on`` of whatever starts job pods.
        labels: the ConfigMap's labels.

    Example:
        ```python
        from constructs_lib.runners.flywheel_scripts import (
            AtticFlywheelScripts,
            AtticFlywheelScriptsProps,
        )

        scripts = AtticFlywheelScripts(
            stack, "Flywheel", AtticFlywheelScriptsProps(namespace="ci-nix")
        )
        scripts.name  # "attic-flywheel", for flywheel_job_settings(config_map=...)
        ```
    """

    def __init__(
        self, scope: Construct, construct_id: str, props: AtticFlywheelScriptsProps
    ) -> None:
        super().__init__(scope, construct_id)
        raise_if_problems(
            "AtticFlywheelScripts",
            [check_dns_label("namespace", props.namespace), check_dns_label("name", props.name)],
        )
        self.name = props.name
        self.labels = {
            "app.kubernetes.io/name": "attic-flywheel",
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/component": "nix-job-scripts",
            "app.kubernetes.io/managed-by": "attic-iac",
        }
        self.config_map = ConfigMapV1(
            self,
            "Scripts",
            metadata={"name": props.name, "namespace": props.namespace, "labels": self.labels},
            data={name: literal_text(text) for name, text in flywheel_scripts().items()},
            depends_on=list(props.depends_on) or None,
        )
