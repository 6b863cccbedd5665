"""Checks shared by the tests of in-cluster scripts that ship in ConfigMaps."""

from __future__ import annotations

import ast
from pathlib import Path


def imported_modules(script: Path) -> set[str]:
    """Top-level modules a script imports; relative imports fail (a ConfigMap is no package)."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports do not work from a ConfigMap"
            assert node.module is not None
            modules.add(node.module.split(".")[0])
    return modules
