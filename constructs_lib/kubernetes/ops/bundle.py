"""Ship an in-cluster ops script as one file, with :mod:`.incluster` inlined in place of its import.

In this repository the ops scripts import the shared client as ``from
constructs_lib.kubernetes.ops.incluster import ...``: mypy, the tests and the linters see one
ordinary module. A pod has no ``constructs_lib``, so the constructs put :func:`shipped_script`'s
text in the script's ConfigMap: the script with that one import statement replaced by the
module's code, a single standard-library-only file that ``python3 <script>`` runs on a stock
Python image. Its text, and so the ConfigMap and the Job revision hashes built from it, changes
whenever the script or the shared module does.

Inlining is checked, not trusted: exactly one such import, at the top level, naming only what
the module defines (no ``as``); no name bound by both files unless it is the same import; the
script has the module's ``from __future__`` features; the result compiles and imports nothing
but the standard library. Any failure raises :class:`BundleError` when the stack is synthesized.
"""

from __future__ import annotations

import ast
import functools
import sys
import textwrap
from importlib import resources

MODULE = "constructs_lib.kubernetes.ops.incluster"
_PACKAGE, _, _NAME = MODULE.rpartition(".")
_SOURCE = f"{MODULE.replace('.', '/')}.py"


class BundleError(ValueError):
    """A script and the shared module cannot be combined safely; the message says why."""


@functools.cache
def shipped_script(package: str, name: str) -> str:
    """The text of script ``name`` of ``package`` as its ConfigMap ships it."""
    script = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    module = resources.files(_PACKAGE).joinpath(f"{_NAME}.py").read_text(encoding="utf-8")
    return inline(script, module, where=f"{package.replace('.', '/')}/{name}")


def inline(script: str, module: str, *, where: str = "<script>") -> str:
    """``script`` with its ``from <MODULE> import ...`` replaced by ``module``'s code (after its
    docstring and ``from __future__`` imports)."""
    script_tree, module_tree = ast.parse(script), ast.parse(module)
    statement = _the_import(script_tree, where)
    provided = _bindings(module_tree)
    problems = [
        f"'{alias.name} as {alias.asname}': no aliases (the inlined names keep theirs)"
        for alias in statement.names
        if alias.asname not in (None, alias.name)
    ]
    problems += [
        f"{alias.name!r} is not defined at the top level of {MODULE}"
        for alias in statement.names
        if alias.name not in provided
    ]
    own = _bindings(script_tree, skip=statement)
    problems += [
        f"{name!r} is bound by both the script ({own[name]}) and {MODULE} ({provided[name]})"
        for name in sorted(own.keys() & provided.keys())
        if own[name] != provided[name] or not own[name].startswith(("import ", "from "))
    ]
    missing = _futures(module_tree) - _futures(script_tree)
    if missing:
        problems.append(f"the script lacks 'from __future__ import {', '.join(sorted(missing))}'")
    if problems:
        raise BundleError(f"{where}: cannot inline {MODULE}:\n  " + "\n  ".join(problems))
    header = textwrap.wrap(
        f"Inlined at synth time from {_SOURCE} (edit it there) in place of the script's "
        f"'from {MODULE} import " + ", ".join(alias.name for alias in statement.names) + "'.",
        width=90,
        break_on_hyphens=False,
    )
    lines = script.splitlines(keepends=True)
    body = "".join(module.splitlines(keepends=True)[_preamble_end(module_tree) :]).strip("\n")
    text = "".join(
        [
            *lines[: statement.lineno - 1],
            *(f"# ---- {line}\n" for line in header),
            "\n",
            body,
            f"\n\n\n# ---- end of {_SOURCE}\n",
            *lines[statement.end_lineno or statement.lineno :],
        ]
    )
    _check_result(text, where)
    return text


def _the_import(tree: ast.Module, where: str) -> ast.ImportFrom:
    found = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == MODULE
    ]
    if len(found) != 1 or found[0] not in tree.body:
        raise BundleError(
            f"{where}: expected exactly one top-level 'from {MODULE} import ...' "
            f"(found {len(found)})"
        )
    return found[0]


def _futures(tree: ast.Module) -> set[str]:
    return {
        alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "__future__"
        for alias in node.names
    }


def _preamble_end(tree: ast.Module) -> int:
    """The line index after the module's docstring and ``from __future__`` imports."""
    end = 0
    for index, node in enumerate(tree.body):
        docstring = (
            index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        )
        if not docstring and not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            break
        end = node.end_lineno or node.lineno
    return end


def _bindings(tree: ast.Module, skip: ast.stmt | None = None) -> dict[str, str]:
    """Top-level names a module binds, each with how (imports) or where (anything else)."""
    names: dict[str, str] = {}
    for node in tree.body:
        if node is skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                names[bound] = f"import {alias.name if alias.asname else bound}"
        elif isinstance(node, ast.ImportFrom):
            if node.module != "__future__":
                for alias in node.names:
                    source = "." * node.level + (node.module or "")
                    names[alias.asname or alias.name] = f"from {source} import {alias.name}"
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = f"line {node.lineno}"
        else:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.setdefault(sub.id, f"line {sub.lineno}")
    return names


def _check_result(text: str, where: str) -> None:
    try:
        tree = ast.parse(text)
        compile(text, where, "exec", dont_inherit=True)
    except SyntaxError as err:
        raise BundleError(f"{where}: the inlined script does not compile: {err}") from None
    foreign = sorted(
        "." * node.level + (node.module or "")
        if isinstance(node, ast.ImportFrom)
        else ", ".join(alias.name for alias in node.names)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom) and not _is_stdlib(node)
    )
    if foreign:
        raise BundleError(
            f"{where}: the shipped script must import only the standard library, not "
            + ", ".join(foreign)
        )


def _is_stdlib(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        modules = [node.module or ""] if node.level == 0 else []
    else:
        modules = [alias.name for alias in node.names]
    return bool(modules) and all(m.split(".")[0] in sys.stdlib_module_names for m in modules)
