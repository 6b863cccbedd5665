"""Metadata hook of the application distribution: depend on the library at exactly our version.

Both distributions take their version from ``constructs_lib.__version__``
(``[tool.hatch.version]``); this hook writes the application's dependencies as the list in
``[tool.hatch.metadata.hooks.custom]`` plus ``attic-iac-constructs==<that version>``, so a
release bumps one line. Built from the application's sdist, hatchling reads both fields back
from ``PKG-INFO`` and this hook has nothing left to do.
"""

from __future__ import annotations

from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface


class CustomMetadataHook(MetadataHookInterface):
    """Sets ``dependencies``: the library pinned to this version, then the configured list."""

    def update(self, metadata: dict[str, Any]) -> None:
        if "dependencies" in metadata:
            return  # read back from an sdist's PKG-INFO
        library = self.config["library"]
        metadata["dependencies"] = [
            f"{library}=={metadata['version']}",
            *self.config["dependencies"],
        ]
