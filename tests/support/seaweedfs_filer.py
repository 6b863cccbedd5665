"""The filer store SeaweedFS ends up with, computed from our Helm values as the chart (4.44) and
the filer compute it.

- Helm merges our values over the chart's values.yaml, maps key by key.
- ``templates/filer/filer-statefulset.yaml`` renders every ``filer.extraEnvironmentVars``
  entry as a variable (a map as ``valueFrom``), drops ``WEED_MYSQL_*`` unless
  ``WEED_MYSQL_ENABLED`` is "true", then adds ``filer.secretExtraEnvironmentVars``.
- The image's ``/etc/seaweedfs/filer.toml`` (docker/filer.toml) enables leveldb2; viper reads
  ``WEED_<STORE>_<KEY>`` over it (weed/util/config.go: prefix ``weed``, ``.`` as ``_``).
- ``weed/filer/configuration.go`` exits unless exactly one store is enabled.
"""

from __future__ import annotations

import copy
from typing import Any

IMAGE_FILER_TOML: dict[str, dict[str, Any]] = {
    "leveldb2": {"enabled": True, "dir": "/data/filerldb2"}
}
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # Go strconv.ParseBool


def helm_merge(defaults: Any, values: Any) -> Any:
    """Our values over the chart's defaults, as Helm coalesces them."""
    if isinstance(defaults, dict) and isinstance(values, dict):
        merged = copy.deepcopy(defaults)
        for key, value in values.items():
            merged[key] = helm_merge(defaults.get(key), value)
        return merged
    return copy.deepcopy(values)


def filer_env(values: dict[str, Any], chart_defaults: dict[str, Any]) -> dict[str, Any]:
    """The filer container's extra variables: name -> value, or the ``valueFrom`` map."""
    filer = helm_merge(chart_defaults, values)["filer"]
    env = dict(filer.get("extraEnvironmentVars") or {})
    if str(env.get("WEED_MYSQL_ENABLED", "")).lower() != "true":
        env = {k: v for k, v in env.items() if not k.startswith("WEED_MYSQL_")}
    for name, source in (filer.get("secretExtraEnvironmentVars") or {}).items():
        env[name] = source
    return env


def enabled_stores(env: dict[str, Any]) -> list[str]:
    """Stores whose ``enabled`` is true after the variables override the image's file."""
    names = set(IMAGE_FILER_TOML) | {
        k.removeprefix("WEED_").removesuffix("_ENABLED").lower()
        for k in env
        if k.startswith("WEED_") and k.endswith("_ENABLED")
    }
    enabled = []
    for name in sorted(names):
        variable = f"WEED_{name.upper()}_ENABLED"
        if variable in env:
            on = str(env[variable]) in _TRUE
        else:
            on = bool(IMAGE_FILER_TOML.get(name, {}).get("enabled"))
        if on:
            enabled.append(name)
    return enabled


def store_settings(env: dict[str, Any], store: str) -> dict[str, Any]:
    """``<key>: value`` of one store from its ``WEED_<STORE>_<KEY>`` variables."""
    prefix = f"WEED_{store.upper()}_"
    return {k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}
