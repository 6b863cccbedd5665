"""No secret value may reach cdktf.out: only references, sensitive variables or env at run time."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from tests.support.synth_output import SynthOutput, resources

SECRET_KEY = re.compile(r"(password|passwd|secret|token|private_key|access_key|credential)", re.I)
NAME_KEY = re.compile(r"(_names?|Name|_ref|_key_key)$")  # names of Secrets, not their values
SECRET_TEXT = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|glrt-[A-Za-z0-9_-]{8,}|glpat-")


def secret_literals(value: Any, path: str = "") -> list[str]:
    """Paths of keys that look secret and hold a literal instead of a reference."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if (
                SECRET_KEY.search(str(key))
                and not NAME_KEY.search(str(key))
                and isinstance(item, str)
                and item
                and not item.startswith("${")
            ):
                found.append(here)
            found += secret_literals(item, here)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += secret_literals(item, f"{path}[{i}]")
    return found


def test_no_secret_literals_in_synthesized_output(all_synths: list[SynthOutput]):
    for synth in all_synths:
        for path in Path(synth.root).rglob("*.json"):
            text = path.read_text()
            assert not SECRET_TEXT.search(text), path
            assert secret_literals(json.loads(text)) == [], path


def test_backend_never_carries_a_password(all_synths: list[SynthOutput]):
    for synth in all_synths:
        for name, doc in synth.stacks():
            assert "password" not in doc["terraform"]["backend"]["http"], name


def test_the_scanner_finds_a_planted_secret():
    planted = {
        "resource": {"x": {"y": {"data": {"db_password": "hunter2", "ref_token": "${var.t}"}}}}
    }
    assert secret_literals(planted) == ["resource.x.y.data.db_password"]


def test_every_secret_value_is_a_reference(all_synths: list[SynthOutput]):
    """Secret data come from variables, generated resources or functions of them."""
    checked = 0
    for synth in all_synths:
        for name, doc in synth.stacks():
            for address, secret in resources(doc, "kubernetes_secret_v1").items():
                for key, value in secret["data"].items():
                    if value == "" and key == "runner-registration-token":
                        continue  # deliberately empty: registration tokens are not used
                    if key == "username" and secret.get("type") == "kubernetes.io/basic-auth":
                        continue  # a login role's name (CNPG managed roles), not a secret
                    assert re.fullmatch(r"\$\{.*\}", value, re.S), (name, address, key)
                    checked += 1
    assert checked > 0


def test_config_maps_hold_no_secret(all_synths: list[SynthOutput]):
    checked = 0
    for synth in all_synths:
        for name, doc in synth.stacks():
            for address, config_map in resources(doc, "kubernetes_config_map_v1").items():
                for key, text in config_map["data"].items():
                    assert not SECRET_TEXT.search(text), (name, address)
                    # Interpolation only of object names (a namespace in a URL), never of values.
                    # ('$${' is an escaped, literal '${' of a shell script.)
                    refs = re.findall(r"(?<!\$)\$\{([^}]*)\}", text)
                    assert all(r.endswith(".metadata[0].name") for r in refs), (name, refs)
                    if key.endswith(".toml"):
                        doc_ = tomllib.loads(text)
                        assert "url" not in doc_.get("database", {}), (name, address)
                        assert "credentials" not in doc_.get("storage", {}), (name, address)
                        assert "signing" not in doc_.get("jwt", {}), (name, address)
                    checked += 1
    assert checked > 0


# Inputs that are not secrets: shown in plans on purpose, each held to a format by validation.
NOT_SECRET_INPUTS = {"dashboard_image"}


def test_sensitive_inputs_are_declared_sensitive(all_synths: list[SynthOutput]):
    for synth in all_synths:
        for name, doc in synth.stacks():
            for variable, spec in doc.get("variable", {}).items():
                if variable in NOT_SECRET_INPUTS:
                    assert spec.get("validation"), (name, variable)
                    continue
                assert spec.get("sensitive") is True, (name, variable)
