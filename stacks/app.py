"""Which stacks exist, in which order they apply, and how the cdktf app is assembled."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from config_model.loader import LoadedConfig, ResolvedEnvironment
from stacks.stack_kinds import STACK_KINDS, stack_id

if TYPE_CHECKING:
    from cdktf import App, TerraformStack

__all__ = ["STACK_KINDS", "apply_order", "build_app", "stack_id"]


def apply_order(config: LoadedConfig, environment: str | None = None) -> list[str]:
    """Stack ids in the order they must be applied, environment by environment."""
    return [
        stack_id(kind.name, env)
        for env in config.environments
        if environment in (None, env)
        for kind in STACK_KINDS
    ]


def build_app(
    app: App, config: LoadedConfig, only: Collection[str] | None = None
) -> dict[str, TerraformStack]:
    """Add every stack of every environment to ``app`` (or only the stack ids in ``only``) and
    declare their dependencies among the stacks built.

    A stack is built the same way whatever else is built beside it: no stack reads another's
    constructs, so its ``cdk.tf.json`` does not depend on ``only``.
    """
    from stacks.attic import AtticStack
    from stacks.dashboard import DashboardStack
    from stacks.platform import PlatformStack
    from stacks.runners import RunnersStack

    # The dashboard loads organization.yaml itself: it gets the very file synthesized here.
    config_text = config.path.read_text(encoding="utf-8")

    def dashboard(scope: App, sid: str, env: ResolvedEnvironment) -> TerraformStack:
        return DashboardStack(scope, sid, env, config_text=config_text)

    builders: dict[str, Callable[[App, str, ResolvedEnvironment], TerraformStack]] = {
        "platform": PlatformStack,
        "attic": AtticStack,
        "runners": RunnersStack,
        "dashboard": dashboard,
    }
    stacks: dict[str, TerraformStack] = {}
    for env_name, env in config.environments.items():
        for kind in STACK_KINDS:
            sid = stack_id(kind.name, env_name)
            if only is not None and sid not in only:
                continue
            stacks[sid] = builders[kind.name](app, sid, env)
            for dependency in kind.depends_on:
                if stack_id(dependency, env_name) in stacks:
                    stacks[sid].add_dependency(stacks[stack_id(dependency, env_name)])
    return stacks
