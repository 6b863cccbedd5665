"""The kinds of stack and their apply order, with no third-party import: ``attic-iac tofu`` runs
in CI's OpenTofu image, where only Python's standard library is present."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StackKind:
    """A kind of stack, instantiated once per environment as ``<name>-<env>``.

    Attributes:
        name: the kind; part of every stack id and GitLab state name, so never renamed.
        depends_on: kinds that must be applied first in the same environment.
    """

    name: str
    depends_on: tuple[str, ...] = ()


# Declared in apply order: a kind only depends on kinds above it (a test holds us to that).
STACK_KINDS: tuple[StackKind, ...] = (
    StackKind("platform"),
    # Attic delivers the CI token into the runners' job namespace, so runners come first.
    StackKind("runners"),
    StackKind("attic", depends_on=("platform", "runners")),
    # Its read-only Roles live in the runner and attic namespaces.
    StackKind("dashboard", depends_on=("runners", "attic")),
)


def stack_id(kind: str, environment: str) -> str:
    """Stack id, output folder and GitLab state name of one stack."""
    return f"{kind}-{environment}"


def split_stack_id(name: str) -> tuple[str, str] | None:
    """``(kind, environment)`` of a stack id, or None when it names no known kind."""
    for kind in STACK_KINDS:
        prefix = f"{kind.name}-"
        if name.startswith(prefix) and len(name) > len(prefix):
            return kind.name, name[len(prefix) :]
    return None
