"""The library's public API is stated, documented and guarded (README "Stability promise").

- ``tests/library/public_api.txt`` records every public module and name, signatures, props
  fields with types and defaults, and construct attributes; any difference fails until the
  snapshot is regenerated on purpose and CHANGELOG.md says what changed;
- every public name is documented, every props field with its default, every construct with
  what it creates and an example; the examples run;
- public signatures use only public types, and every construct and props class is public.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import shutil
from pathlib import Path

import pytest
from cdktf import App, TerraformStack

from tests.conftest import REPO
from tests.support import public_api
from tests.support.public_api import PACKAGE, SNAPSHOT

UPDATE = "regenerate with `.venv/bin/python -m tests.support.public_api --write`"


def _diff(expected: str, actual: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), "committed", "source", lineterm="", n=1
        )
        if not line.startswith(("---", "+++"))
    ]


def test_the_public_api_matches_the_committed_snapshot():
    diff = _diff(SNAPSHOT.read_text(), public_api.render())
    assert diff == [], (
        "The public API changed (- committed, + now):\n"
        + "\n".join(diff)
        + f"\nIf intended: {UPDATE}, add the change to CHANGELOG.md under Unreleased, and bump "
        "the major version for a removal, rename or changed default (see CHANGELOG.md)."
    )


def test_a_renamed_prop_fails_the_snapshot(tmp_path: Path):
    """The guard is live: renaming a props field in a copy of the package changes the snapshot
    in exactly that field's line."""
    shutil.copytree(REPO / PACKAGE, tmp_path / PACKAGE)
    module = tmp_path / PACKAGE / "postgres" / "cnpg_cluster.py"
    source = module.read_text()
    assert source.count("    instances: int = 3\n") == 1
    module.write_text(source.replace("    instances: int = 3\n", "    replicas: int = 3\n"))
    diff = _diff(SNAPSHOT.read_text(), public_api.render(public_api.public_modules(tmp_path)))
    changed = [line for line in diff if line.startswith(("-", "+"))]
    assert changed == ["-    instances: int = 3", "+    replicas: int = 3"]


def test_every_public_name_is_documented():
    """What ``make docs`` refuses to build without."""
    problems = public_api.doc_problems()
    assert problems == [], "\n".join(problems)


def test_public_signatures_use_only_public_types():
    problems = public_api.internal_types_in_public_api()
    assert problems == [], "\n".join(problems)


def test_every_module_is_public_or_says_it_is_internal():
    public = {m.name for m in public_api.public_modules()}
    silent = []
    for name in public_api.library_modules():
        if name in public:
            continue
        parts = name.split(".")
        # the module itself, or the internal package it belongs to, says so
        docs = []
        for depth in range(len(parts), 1, -1):
            dotted = ".".join(parts[:depth])
            docs.append(ast.get_docstring(ast.parse(public_api._source(dotted).read_text())) or "")
            if dotted in public:
                break
        if not any("Internal" in doc for doc in docs):
            silent.append(name)
    assert silent == [], f"modules neither public nor marked internal: {silent}"


def _classes(module: str) -> list[ast.ClassDef]:
    tree = ast.parse(public_api._source(module).read_text())
    return [node for node in tree.body if isinstance(node, ast.ClassDef)]


def test_every_construct_and_props_class_is_public():
    public = {m.name: set(public_api.module_names(m)) for m in public_api.public_modules()}
    hidden = []
    for module in public_api.library_modules():
        for node in _classes(module):
            kind = public_api.is_construct(node) or node.name.endswith("Props")
            wanted = kind and node.name[0] != "_"
            if wanted and node.name not in public.get(module, set()):
                hidden.append(f"{module}.{node.name}")
    assert hidden == [], f"add to the module's __all__ (and its package's): {hidden}"


def test_every_name_in_all_is_importable():
    for module in public_api.public_modules():
        imported = importlib.import_module(module.name)
        for name in module.names:
            if name in public_api.module_names(module):
                assert hasattr(imported, name), f"{module.name}.{name}"
            else:
                importlib.import_module(f"{module.name}.{name}")


def _documented_examples() -> list[tuple[str, str]]:
    found = []
    for module in public_api.public_modules():
        for node in module.tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                for code in public_api.examples(ast.get_docstring(node) or ""):
                    found.append((f"{module.name}.{node.name}", code))
    return found


def test_the_docstring_examples_run(tmp_path: Path):
    examples = _documented_examples()
    constructs = {
        f"{m.name}.{node.name}"
        for m in public_api.public_modules()
        for node in m.tree.body
        if isinstance(node, ast.ClassDef) and public_api.is_construct(node)
    }
    assert constructs <= {where for where, _ in examples}
    app = App(outdir=str(tmp_path), skip_validation=True)
    for index, (where, code) in enumerate(examples):
        stack = TerraformStack(app, f"example-{index}")
        try:
            exec(compile(code, f"<example of {where}>", "exec"), {"stack": stack})
        except Exception as error:  # pragma: no cover - the message is the point
            pytest.fail(f"the example of {where} fails: {type(error).__name__}: {error}")
    app.synth()
