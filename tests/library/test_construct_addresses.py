"""Construct ids inside the library are public API: given props yield the committed addresses.

A construct's child ids become Terraform addresses (``<type>.<path>_<hash>``); a renamed or
re-parented child makes OpenTofu destroy the old object and create a new one, a user's
database or bucket included. ``tests/library/addresses.json`` records, for one set of props per
construct (``construct_cases.py``, optional children on), every address it synthesizes.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from tests.library.construct_cases import CASES, INVENTORY, case_addresses
from tests.support import public_api


def test_addresses_match_the_committed_inventory(tmp_path: Path):
    committed = json.loads(INVENTORY.read_text())
    actual = case_addresses(tmp_path)
    assert sorted(committed) == sorted(actual), "cases and inventory differ: regenerate it"
    changes = []
    for case, addresses in actual.items():
        removed = sorted(set(committed[case]) - set(addresses))
        added = sorted(set(addresses) - set(committed[case]))
        if removed or added:
            changes.append(
                f"{case}: removed (OpenTofu would DESTROY these) {removed}; added {added}"
            )
    assert changes == [], (
        "\n".join(changes)
        + "\nA construct's addresses changed: every user's plan would replace these objects. "
        "If intended, keep the old id (a child named 'Default' keeps its parent's address), or "
        "ship a moved block in a breaking release with an upgrade note in CHANGELOG.md; then run "
        "`.venv/bin/python -m tests.library.construct_cases --write`."
    )


def test_every_public_construct_has_a_case():
    constructs = {
        node.name
        for module in public_api.public_modules()
        for node in module.tree.body
        if isinstance(node, ast.ClassDef)
        and node.name in public_api.module_names(module)
        and public_api.is_construct(node)
    }
    assert constructs == {name.split("-")[0] for name in CASES}
