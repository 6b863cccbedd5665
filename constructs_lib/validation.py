"""One error for every problem in a construct's props, so users fix them in one pass."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from cdktf import Token

__all__ = ["PropsError"]

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class PropsError(ValueError):
    """Raised by a construct constructor when its props are invalid.

    Attributes:
        construct: the construct class name.
        problems: one line per problem, each naming the prop, the value and what is allowed.
    """

    def __init__(self, construct: str, problems: list[str]) -> None:
        self.construct = construct
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{construct} props are invalid:\n{lines}")


def raise_if_problems(construct: str, problems: Iterable[str]) -> None:
    """Raise a single PropsError listing every problem, if there are any."""
    found = [p for p in problems if p]
    if found:
        raise PropsError(construct, found)


def check_dns_label(prop: str, value: str) -> str:
    """Return a problem line if ``value`` is not a Kubernetes DNS-1123 label, else ''.

    Unresolved tokens (references to other resources) are checked by their own construct.
    """
    if DNS_LABEL.match(value) or _is_token(value):
        return ""
    return (
        f"{prop}: {value!r} is not a valid Kubernetes name "
        "(allowed: lowercase letters, digits and '-', at most 63 characters)"
    )


@functools.cache
def _is_token(value: str) -> bool:
    """Whether ``value`` stands for a token. Asking jsii is a round trip to Node, and the same
    reference (a namespace's name) is checked by every construct that takes it; a string never
    changes from one to the other. A token never matches a label, so the pattern goes first."""
    return Token.is_unresolved(value)
