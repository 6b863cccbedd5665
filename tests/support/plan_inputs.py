"""The inputs a plan needs beyond the config: values for the stacks' variables that have no
default, as the pipeline (the dashboard image's digest) or an operator (``TF_VAR_*`` secrets)
supplies them; and the variables' own validation, evaluated the way OpenTofu does."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

# What the pipeline's dashboard-image job exports: an image by digest.
DASHBOARD_IMAGE = "registry.example.com/acme/attic-iac/dashboard@sha256:" + "0123456789abcdef" * 4
# Values of variables that must be real-looking for a check to read them (not secrets).
KNOWN_VALUES = {"dashboard_image": DASHBOARD_IMAGE}

# The only validation form the stacks use: can(regex("<pattern>", var.<name>)).
_CAN_REGEX = re.compile(r'^\$\{can\(regex\("((?:[^"\\]|\\.)*)", var\.([A-Za-z0-9_]+)\)\)\}$')


def required_variables(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The stack's variables without a default: a plan stops unless each gets a value."""
    return {name: spec for name, spec in doc.get("variable", {}).items() if "default" not in spec}


def tf_var_environment(docs: Iterable[dict[str, Any]]) -> dict[str, str]:
    """``TF_VAR_<name>`` for every required variable of these stacks."""
    return {
        f"TF_VAR_{name}": KNOWN_VALUES.get(name, f"test-value-of-{name}")
        for doc in docs
        for name in required_variables(doc)
    }


def validation_accepts(spec: dict[str, Any], value: str) -> bool:
    """Whether every ``validation`` of a variable passes for ``value``: ``regex`` succeeds when
    the pattern matches anywhere, and ``can`` turns its failure into false. The pattern is RE2,
    whose ``$`` (without the m flag) is the very end of the text, Python's ``\\Z``; the rest
    of the syntax used here means the same in Python."""
    for rule in spec.get("validation", []):
        found = _CAN_REGEX.match(rule["condition"])
        assert found, f"validation not modelled: {rule['condition']}"
        pattern = json.loads(f'"{found[1]}"')  # HCL's string escapes, as far as used here
        assert "\\" not in pattern, f"escapes not modelled: {pattern}"
        if re.search(pattern.replace("$", r"\Z"), value) is None:
            return False
    return True
