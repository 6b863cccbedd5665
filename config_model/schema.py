"""The JSON Schema of ``organization.yaml``, generated from the model.

``config/organization.schema.json`` is this text (``make schema``); editors use it through the
example's ``yaml-language-server`` line, and a test fails when the committed copy is stale.
"""

from __future__ import annotations

import json

from config_model.organization import OrganizationConfig


def schema_json() -> str:
    """The schema as the committed file holds it: sorted keys, two-space indent."""
    return json.dumps(OrganizationConfig.model_json_schema(), indent=2, sort_keys=True)
