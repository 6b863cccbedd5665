"""A fresh virtual environment holding the library wheel and exactly what it requires.

The wheel is installed with pip into a new venv that does not see the repository. Its
dependencies are not downloaded: the packages this test session already runs with are made
visible through one ``.pth`` directory that holds links to the files of the distributions
the wheel's ``Requires-Dist`` reaches (with the chosen extras), and nothing else. So an import
the library does not declare fails there, and each range is checked against the version that
stands in for it. Nothing of the repository is on that interpreter's path.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.dists import Dist


def _requirements(dist: metadata.Distribution | Dist, extras: Iterable[str]) -> list[Requirement]:
    raw = (
        dist.metadata().get_all("Requires-Dist") or []
        if isinstance(dist, Dist)
        else dist.requires or []
    )
    wanted = ["", *extras]
    found = []
    for line in raw:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in wanted):
            found.append(requirement)
    return found


def installed_closure(
    requirements: Iterable[Requirement], required_by: str
) -> dict[str, metadata.Distribution]:
    """The installed distributions ``requirements`` reach, directly or not, by canonical name;
    each is followed once per set of extras asked of it. Also what the dashboard image's lock
    is checked against (tests/tools/test_dashboard_image.py).

    Raises AssertionError when one is missing or its installed version is outside the range.
    """
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    queue = [(r, required_by) for r in requirements]
    while queue:
        requirement, by = queue.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            raise AssertionError(f"{requirement} (required by {by}) is not installed") from None
        assert requirement.specifier.contains(dist.version, prereleases=True), (
            f"{by} requires {requirement}, the test environment has {dist.version}"
        )
        found[name] = dist
        queue += [(r, name) for r in _requirements(dist, requirement.extras)]
    return found


def _top_level_entries(dist: metadata.Distribution) -> set[Path]:
    """What a distribution put into site-packages: its packages, modules and dist-info."""
    base = Path(str(dist.locate_file("")))
    entries = set()
    for file in dist.files or ():
        parts = Path(str(file)).parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(".pth"):
            continue
        entries.add(base / parts[0])
    return entries


def make_library_venv(root: Path, wheel: Dist, extras: Iterable[str] = ()) -> Path:
    """A venv at ``root`` with the wheel installed and its dependency closure linked in;
    returns its interpreter."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            str(wheel.wheel),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    deps = root / "deps"
    deps.mkdir()
    closure = installed_closure(_requirements(wheel, extras), "attic-iac-constructs")
    for dist in closure.values():
        for entry in _top_level_entries(dist):
            if entry.exists() and not (deps / entry.name).exists():
                (deps / entry.name).symlink_to(entry)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    (site / "_attic_iac_test_deps.pth").write_text(f"{deps}\n")
    return python
