"""Build hook of the library distribution: bring in its packages from the repository root.

The library's packages sit at the repository root, beside the application's, and keep their
import names there. Built from the repository, this project force-includes ``../<package>``;
its sdist holds the packages at its own root, so a build from the sdist needs nothing extra.
An editable install adds the repository root to the path instead (``dev-mode-dirs``).
"""

from __future__ import annotations

import os
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Force-includes each package named in ``packages`` that is not inside the project."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "editable":
            return
        for package in self.config["packages"]:
            if os.path.isdir(os.path.join(self.root, package)):
                continue  # an unpacked sdist
            source = os.path.join(os.path.dirname(self.root), package)
            if not os.path.isdir(source):
                raise FileNotFoundError(f"library package {package!r} not found at {source}")
            build_data["force_include"][source] = package
