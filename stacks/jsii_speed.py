"""Two costs jsii's generated Python pays on every synth for nothing the synth writes.

1. A cdktf provider package's ``__init__`` imports every one of its submodules (109 for
   kubernetes, each building hundreds of jsii classes): about half of a synth went there, on
   resources no stack uses. Provider submodules become placeholders that load on first attribute
   access, and jsii is told where each one lives, so a type Node hands back from a module nobody
   has imported yet is still found (jsii's own lazy-loading path, ``_submodule_fqn_map``).
2. Every generated constructor, struct and method calls ``typing.get_type_hints`` on its
   ``_typecheckingstub__*`` function before it type-checks its arguments, each time; those hints
   never change, so they are resolved once. The checks themselves still run.

:func:`install` turns both on, before any provider is imported. What a synth produces does not
change (the snapshot tests compare it); the mapping from Python module to jsii submodule is
checked against every installed provider by ``tests/stacks/test_jsii_speed.py``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import typing
from collections.abc import Sequence
from typing import Any

PACKAGE_PREFIX = "cdktf_cdktf_provider_"
STUB_PREFIX = "_typecheckingstub__"


def jsii_submodule_name(python_name: str) -> str:
    """The jsii submodule a generated Python submodule stands for: ``pod_v1`` → ``podV1``."""
    head, *rest = python_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class _LazySubmodule(types.ModuleType):
    """Stands in for a provider submodule until something reads from it."""

    _armed = False  # the import system reads __path__, __file__, ... before exec_module

    def __getattr__(self, name: str) -> Any:
        if not self._armed:
            raise AttributeError(name)
        real = _load(self.__name__)
        self.__dict__.update(vars(real))
        return getattr(real, name)


_EAGER: set[str] = set()


def _load(fullname: str) -> types.ModuleType:
    """Build the real module now, as a plain import would, and hand it back."""
    sys.modules.pop(fullname, None)
    _EAGER.add(fullname)
    try:
        return importlib.import_module(fullname)
    finally:
        _EAGER.discard(fullname)


class _PlaceholderLoader(importlib.abc.Loader):
    """Creates the placeholder in place of the submodule."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _LazySubmodule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        # Without __spec__ in its namespace, the import system's check of a module it finds in
        # sys.modules (``module.__spec__._initializing``) loads it, so importlib.import_module,
        # which jsii calls to find a type, hands back a module whose types are registered.
        del module.__spec__
        typing.cast(_LazySubmodule, module)._armed = True


class _ProviderSubmoduleFinder(importlib.abc.MetaPathFinder):
    """Answers ``cdktf_cdktf_provider_<name>.<submodule>`` imports with placeholders, and tells
    jsii which module holds the types of that jsii submodule."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, submodule = fullname.partition(".")
        if (
            not package.startswith(PACKAGE_PREFIX)
            or not submodule
            or "." in submodule
            or submodule.startswith("_")  # _jsii loads the assembly into Node: needed at once
            or fullname in _EAGER
        ):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None:
            return None
        # Imported here, not above: the tofu driver imports stacks on the standard library alone.
        from jsii import _reference_map

        for assembly, module in _reference_map._assembly_to_module.items():
            if module == package:
                fqn = f"{assembly}.{jsii_submodule_name(submodule)}"
                _reference_map._submodule_fqn_map[fqn] = fullname
        spec.loader = _PlaceholderLoader()
        return spec


_FINDER = _ProviderSubmoduleFinder()
_get_type_hints = typing.get_type_hints


@functools.cache
def _stub_hints(stub: Any) -> dict[str, Any]:
    return _get_type_hints(stub)


def _get_type_hints_once_per_stub(
    obj: Any,
    globalns: dict[str, Any] | None = None,
    localns: typing.Mapping[str, Any] | None = None,
    include_extras: bool = False,
) -> dict[str, Any]:
    """``typing.get_type_hints``, resolved once for a jsii type-checking stub."""
    plain = globalns is None and localns is None and not include_extras
    if plain and getattr(obj, "__name__", "").startswith(STUB_PREFIX):
        return _stub_hints(obj)
    return _get_type_hints(obj, globalns, localns, include_extras)


def built_provider_modules() -> list[str]:
    """The provider submodules this process has built (the rest are still placeholders)."""
    return sorted(
        name
        for name, module in sys.modules.items()
        if name.startswith(PACKAGE_PREFIX)
        and name.count(".") == 1
        and not name.rpartition(".")[2].startswith("_")
        and not isinstance(module, _LazySubmodule)
    )


def install() -> None:
    """Turn both on for this process (idempotent); call before any provider is imported."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    typing.get_type_hints = _get_type_hints_once_per_stub
