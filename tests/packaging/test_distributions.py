"""Two distributions from one repository: what each ships, what each requires, one version,
clean metadata, and byte-identical rebuilds.

``attic-iac-constructs`` (library/pyproject.toml) ships ``constructs_lib`` and the
``upstream_formats`` it imports, nothing of the application; ``attic-iac`` (pyproject.toml)
ships the model, stacks, CLI and dashboard and requires the library at exactly its own version.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import constructs_lib
from tests.support.dists import LIBRARY, REPO, Dist, build_dist

# Both distributions are built once per worker that needs them: keep these tests on one.
pytestmark = pytest.mark.xdist_group("packaging")

APP_PACKAGES = ("config_model", "stacks", "iac_tools", "dashboard")
LIBRARY_PACKAGES = ("constructs_lib", "upstream_formats")


def _top_levels(files: list[str]) -> set[str]:
    return {name.split("/", 1)[0] for name in files}


def _requirements(dist: Dist) -> list[Requirement]:
    return [Requirement(r) for r in dist.metadata().get_all("Requires-Dist") or []]


def test_the_library_wheel_holds_only_the_library(library_dist: Dist):
    files = library_dist.wheel_files()
    version = constructs_lib.__version__
    assert _top_levels(files) == {*LIBRARY_PACKAGES, f"attic_iac_constructs-{version}.dist-info"}
    assert not [f for f in files if f.split("/", 1)[0] in APP_PACKAGES], "application code"
    assert not [f for f in files if f.endswith((".pyc", "/__pycache__"))]
    # what the constructs read at synth time ships with them
    assert "constructs_lib/py.typed" in files
    for shipped in (
        "constructs_lib/attic/ops/attic_ops.py",
        "constructs_lib/attic/ops/cache_warm.sh",
        "constructs_lib/runners/ops/setup.sh",
        "constructs_lib/runners/ops/flywheel.sh",
        "constructs_lib/kubernetes/ops/incluster.py",
    ):
        assert shipped in files
    # every module of the packages, and nothing else
    on_disk = sorted(
        str(path.relative_to(REPO))
        for package in LIBRARY_PACKAGES
        for path in (REPO / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )
    assert [f for f in files if not f.split("/", 1)[0].endswith(".dist-info")] == on_disk


def test_the_application_wheel_leaves_the_library_out(app_dist: Dist):
    top = _top_levels(app_dist.wheel_files())
    assert top == {*APP_PACKAGES, f"attic_iac-{constructs_lib.__version__}.dist-info"}


def test_the_sdists_build_their_wheels_alone(library_dist: Dist, app_dist: Dist):
    """``python -m build`` made each wheel from its sdist; the sdists hold the sources."""
    library = library_dist.sdist_files()
    root = f"attic_iac_constructs-{constructs_lib.__version__}/"
    assert f"{root}constructs_lib/__init__.py" in library
    assert f"{root}upstream_formats/__init__.py" in library
    assert not [f for f in library if f.removeprefix(root).split("/")[0] in APP_PACKAGES]
    app = app_dist.sdist_files()
    assert not [f for f in app if "/constructs_lib/" in f or "/upstream_formats/" in f]


def test_one_version_and_the_application_pins_the_library(library_dist: Dist, app_dist: Dist):
    version = constructs_lib.__version__
    library, app = library_dist.metadata(), app_dist.metadata()
    assert library["Name"] == "attic-iac-constructs"
    assert library["Version"] == app["Version"] == version
    pins = [r for r in _requirements(app_dist) if r.name == "attic-iac-constructs"]
    assert [str(r.specifier) for r in pins] == [f"=={version}"]
    assert pins[0].marker is None
    assert not pins[0].extras


def test_the_library_requires_ranges_and_keeps_heavy_providers_in_extras(library_dist: Dist):
    requirements = _requirements(library_dist)
    core = {r.name for r in requirements if r.marker is None}
    assert core == {
        "cdktf",
        "constructs",
        "cdktf-cdktf-provider-kubernetes",
        "cdktf-cdktf-provider-helm",
        "cdktf-cdktf-provider-random",
        "cdktf-cdktf-provider-tls",
        "pyyaml",
        "tomli-w",
    }
    for requirement in requirements:
        assert not any(s.operator in ("==", "===") for s in requirement.specifier), requirement
        assert requirement.specifier, f"{requirement} has no range at all"
    extras = {
        name: sorted(
            r.name for r in requirements if r.marker and r.marker.evaluate({"extra": name})
        )
        for name in library_dist.metadata().get_all("Provides-Extra") or []
    }
    assert extras == {
        "aws": ["cdktf-cdktf-provider-aws"],
        "cloudflare": ["cdktf-cdktf-provider-cloudflare"],
        "gitlab": ["cdktf-cdktf-provider-gitlab"],
        "tokens": ["cryptography", "pyjwt"],
    }
    assert library_dist.metadata()["Requires-Python"] == ">=3.11"


def test_the_dev_lock_satisfies_both_distributions(library_dist: Dist, app_dist: Dist):
    """Every range accepts the version we test with (requirements/dev.lock)."""
    pinned = {}
    for line in (REPO / "requirements" / "dev.lock").read_text().splitlines():
        name, _, version = line.partition("==")
        pinned[canonicalize_name(name)] = version
    for dist in (library_dist, app_dist):
        for requirement in _requirements(dist):
            name = canonicalize_name(requirement.name)
            if name == "attic-iac-constructs":
                continue
            assert name in pinned, f"{requirement} is not in requirements/dev.lock"
            assert requirement.specifier.contains(pinned[name]), (requirement, pinned[name])


def test_twine_check_passes(library_dist: Dist, app_dist: Dist):
    files = [library_dist.wheel, library_dist.sdist, app_dist.wheel, app_dist.sdist]
    run = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("PASSED") == 4, run.stdout


def test_rebuilds_are_byte_identical(library_dist: Dist, app_dist: Dist, tmp_path: Path):
    """With SOURCE_DATE_EPOCH fixed, a second build of each distribution is the same bytes."""
    again = {
        "library": build_dist(LIBRARY, tmp_path / "library"),
        "app": build_dist(REPO, tmp_path / "app"),
    }
    for first, second in ((library_dist, again["library"]), (app_dist, again["app"])):
        for a, b in ((first.wheel, second.wheel), (first.sdist, second.sdist)):
            assert a.name == b.name
            assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between two builds"


def test_the_changelog_describes_this_version_or_what_is_unreleased(app_dist: Dist):
    text = (REPO / "CHANGELOG.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("## [")]
    assert headings, "CHANGELOG.md has no version section"
    assert headings[0] == "## [Unreleased]" or headings[0].startswith(
        f"## [{constructs_lib.__version__}] - "
    ), headings[0]
    # the rule for construct ids is spelled out
    assert "construct id or the construct tree changed" in text
    assert f"attic_iac-{constructs_lib.__version__}/CHANGELOG.md" in app_dist.sdist_files()
