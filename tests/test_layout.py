"""The layering contract (README "Layout"): rooms import only downwards, the model loads no
cdktf/jsii, and no module imports itself back through another.

The contract lives in pyproject.toml (``[tool.importlinter]``) and ``make lint`` runs
``lint-imports`` too; these tests run it here as well, prove that it fails on a deliberate
violation, and add what it does not check: a cycle between any two modules (not only siblings)
and what a fresh interpreter really loads.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from tests.conftest import REPO
from tests.support.graph import reachable

ROOMS = ("iac_tools", "stacks", "config_model", "constructs_lib", "upstream_formats")
HEAVY = ("cdktf", "jsii", "constructs", "cdktf_cdktf_provider_")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )


def _copy_rooms(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for room in ROOMS:
        shutil.copytree(REPO / room, root / room, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_layering_contract_holds():
    run = _lint_imports(REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # the library must not know the YAML model
        (
            "constructs_lib/kubernetes/hardening.py",
            "from config_model.base import deep_merge",
            "Rooms",
        ),
        # the model must not reach up into the stacks
        ("config_model/base.py", "from stacks.app import apply_order", "Rooms"),
        # nothing imports the tools
        ("stacks/app.py", "from iac_tools.cli import main", "Rooms"),
        # the model must stay importable without jsii
        ("config_model/platform.py", "import cdktf", "config model loads no cdktf"),
        # the formats must stay stdlib-only
        ("upstream_formats/humantime.py", "import yaml", "formats import only"),
        # a circle inside a room
        ("config_model/base.py", "from config_model.loader import load_config", "No import cycle"),
    ],
)
def test_the_contract_fails_on_a_violation(tmp_path: Path, module: str, line: str, broken: str):
    root = _copy_rooms(tmp_path)
    with (root / module).open("a") as handle:
        handle.write(f"\n{line}  # deliberate violation\n")
    run = _lint_imports(root)
    assert run.returncode != 0
    report = run.stdout.split("Broken contracts", 1)[1]
    assert broken in report
    dotted = module.removesuffix(".py").replace("/", ".")
    # layer and forbidden contracts name the module; acyclic_siblings names it relative
    assert dotted in report or f".{dotted.rsplit('.', 1)[1]} ->" in report


def _cycles(graph: grimp.ImportGraph, rooms: tuple[str, ...] = ROOMS) -> list[list[str]]:
    """Groups of modules in ``rooms`` that reach each other through imports."""
    modules = {m for m in graph.modules if m.split(".")[0] in rooms}
    edges = {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}
    reach = {start: reachable(edges, start) for start in modules}
    groups = {frozenset(n for n in reach[m] if m in reach[n]) for m in modules if m in reach[m]}
    return sorted(sorted(group) for group in groups)


def test_no_module_imports_itself_back():
    """Every import counts, including those inside functions and under TYPE_CHECKING."""
    graph = grimp.build_graph(*ROOMS, cache_dir=None)
    assert graph.find_modules_directly_imported_by("config_model.loader"), "graph is empty"
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_cycle(tmp_path: Path):
    root = tmp_path / "planted"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "a.py").write_text("def f():\n    from pkg import b\n")
    (root / "pkg" / "b.py").write_text("from pkg import c\n")
    (root / "pkg" / "c.py").write_text("import pkg.a\n")
    sys.path.insert(0, str(root))
    try:
        graph = grimp.build_graph("pkg", cache_dir=None)
    finally:
        sys.path.remove(str(root))
    assert _cycles(graph, ("pkg",)) == [["pkg.a", "pkg.b", "pkg.c"]]


@pytest.mark.parametrize(
    "module",
    [
        "config_model.loader",
        "config_model.schema",
        "config_model.rules",
        "upstream_formats.attic_tokens",
        "upstream_formats.k8s_quantity",
    ],
)
def test_the_model_loads_without_cdktf_or_jsii(module: str):
    code = (
        f"import sys, {module}\n"
        f"heavy = sorted(m for m in sys.modules if m.startswith({HEAVY!r}))\n"
        "print(','.join(heavy))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == ""


def test_the_model_and_formats_need_only_pydantic_and_pyyaml():
    """Third-party top-level modules a fresh interpreter loads for the model and its loader."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import config_model.loader, config_model.schema\n"
        "from config_model.loader import EXAMPLE_CONFIG, load_config\n"
        "load_config(EXAMPLE_CONFIG)\n"
        "roots = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "std = set(sys.stdlib_module_names)\n"
        "print(','.join(sorted(r for r in roots if r not in std and not r.startswith('_'))))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    loaded = set(run.stdout.strip().split(","))
    ours = {"config_model", "upstream_formats"}
    allowed = {"pydantic", "pydantic_core", "annotated_types", "typing_extensions"}
    allowed |= {"typing_inspection", "yaml", "cython_runtime"}  # cython_runtime: PyYAML's C loader
    assert loaded - ours <= allowed, sorted(loaded - ours - allowed)
    assert "yaml" in loaded
    assert "pydantic" in loaded


MAX_LINES = 500


def _long_modules_without_reason() -> list[str]:
    found = []
    for room in (*ROOMS, "tests"):
        for path in sorted((REPO / room).rglob("*.py")):
            text = path.read_text()
            if text.count("\n") <= MAX_LINES:
                continue
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if "Long because" not in docstring:
                found.append(f"{path.relative_to(REPO)} ({text.count(chr(10))} lines)")
    return found


def test_a_long_module_says_why_it_is_long():
    """Over ~500 lines a module is split along a seam, or its docstring says "Long because ..."."""
    assert _long_modules_without_reason() == []
