"""Checks shared by the tests of in-cluster scripts that ship in ConfigMaps."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def imported_modules(source: str) -> set[str]:
    """Full names of the modules ``source`` imports (``from m import n`` counts as ``m``);
    relative imports fail (a ConfigMap is no package)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports do not work from a ConfigMap"
            assert node.module is not None
            modules.add(node.module)
    return modules


def non_stdlib_imports(source: str) -> set[str]:
    """The modules ``source`` imports that a stock Python image does not have."""
    return {
        name
        for name in imported_modules(source)
        if name.split(".")[0] not in sys.stdlib_module_names
    }


def run_shipped(
    text: str, name: str, args: Sequence[str], directory: Path
) -> subprocess.CompletedProcess[str]:
    """Run a script as its ConfigMap ships it, as in the pod: alone in its own directory under
    ``directory``, on an interpreter with no site-packages (``-I -S``), so no project or
    third-party module can be imported."""
    script = directory / "configmap" / name
    script.parent.mkdir()
    script.write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-I", "-S", str(script), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=directory,
    )
