"""Terraform addresses are public API: a renamed address is a destroy plus a create.

``tests/stacks/inventory/<stack>.json`` lists every address of a stack and which of them are
stateful. A rename must come with a ``moved`` block (cdktf ``move_to``/``move_from_id``) and an
updated inventory; stateful addresses must carry ``prevent_destroy`` where the environment
protects state.
"""

from __future__ import annotations

import json
from pathlib import Path

from config_model.loader import EXAMPLE_CONFIG, load_config
from tests.conftest import DATA
from tests.support.synth_output import SynthOutput, addresses

INVENTORY = Path(__file__).resolve().parent / "inventory"


def _protected() -> dict[str, bool]:
    flags = {}
    for path in (EXAMPLE_CONFIG, DATA / "variants.yaml"):
        for name, env in load_config(path).environments.items():
            flags[name] = env.settings.protect_stateful
    return flags


def _lookup(doc: dict, address: str) -> dict:
    rtype, name = address.split(".", 1)
    return doc["resource"][rtype][name]


def test_addresses_match_the_committed_inventory(all_synths: list[SynthOutput]):
    seen = set()
    for synth in all_synths:
        for stack, doc in synth.stacks():
            seen.add(f"{stack}.json")
            inventory = json.loads((INVENTORY / f"{stack}.json").read_text())
            actual = addresses(doc)
            removed = sorted(set(inventory["addresses"]) - set(actual))
            added = sorted(set(actual) - set(inventory["addresses"]))
            assert (removed, added) == ([], []), (
                f"{stack}: addresses changed. Removed (OpenTofu would DESTROY these): {removed}; "
                f"added: {added}. If intended, add a moved block for each rename and update "
                f"tests/stacks/inventory/{stack}.json."
            )
    assert seen == {p.name for p in INVENTORY.glob("*.json")}, "stale inventory files"


def test_stateful_resources_are_protected_where_the_environment_asks(
    all_synths: list[SynthOutput],
):
    protected = _protected()
    checked = 0
    for synth in all_synths:
        for stack, doc in synth.stacks():
            env = stack.split("-", 1)[1]
            inventory = json.loads((INVENTORY / f"{stack}.json").read_text())
            assert set(inventory["stateful"]) <= set(inventory["addresses"])
            for address in inventory["stateful"]:
                lifecycle = _lookup(doc, address).get("lifecycle", {})
                assert lifecycle.get("prevent_destroy", False) is protected[env], (stack, address)
                checked += 1
    assert checked > 0
