"""Build the kubernetes provider's typed structs from plain nested data.

Each resource type has its own struct classes (``DeploymentV1SpecTemplateSpecContainer``,
``JobV1SpecTemplateSpecContainer``, ...) for the same pod spec, and jsii silently drops nested
plain dicts. :func:`to_struct` walks the struct's type hints so one pod spec, written once as
data, becomes the typed struct of any resource; a misspelt key raises instead of vanishing.

Internal: not listed in the package's ``__all__``, so not part of the public API; it may change in
any release.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def to_struct(cls: type[T], data: Mapping[str, Any], path: str = "") -> T:
    """``cls(**data)`` with every nested mapping converted to the struct its field expects."""
    hints = _hints(cls)  # type: ignore[arg-type]  # classes are hashable
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        here = f"{path}.{key}" if path else key
        if key not in hints:
            known = ", ".join(sorted(k for k in hints if k != "return"))
            raise TypeError(f"{cls.__name__}: unknown field {here!r} (known: {known})")
        kwargs[key] = _convert(hints[key], value, here)
    return cls(**kwargs)


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls.__init__)


def _convert(hint: Any, value: Any, path: str) -> Any:
    struct = _struct_in(hint)
    if struct is not None and isinstance(value, Mapping):
        return to_struct(struct, value, path)
    item_struct = _sequence_struct_in(hint)
    if item_struct is not None and isinstance(value, Mapping):
        raise TypeError(f"{path}: expects a list of {item_struct.__name__} (got a mapping)")
    if item_struct is not None and isinstance(value, list | tuple):
        return [
            to_struct(item_struct, item, f"{path}[{i}]") if isinstance(item, Mapping) else item
            for i, item in enumerate(value)
        ]
    return value


def _members(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _is_struct(candidate: Any) -> bool:
    return isinstance(candidate, type) and candidate.__module__.startswith("cdktf_cdktf_provider_")


def _struct_in(hint: Any) -> type | None:
    return next((m for m in _members(hint) if _is_struct(m)), None)


def _sequence_struct_in(hint: Any) -> type | None:
    for member in _members(hint):
        origin = typing.get_origin(member)
        if getattr(origin, "__name__", "") in ("Sequence", "list") and typing.get_args(member):
            found = _struct_in(typing.get_args(member)[0])
            if found is not None:
                return found
    return None


def literal_text(text: str) -> str:
    """``text`` escaped for a Terraform string, so ``${...}`` and ``%{...}`` in scripts reach
    the object as written instead of being read as Terraform interpolation."""
    return text.replace("${", "$${").replace("%{", "%%{")
