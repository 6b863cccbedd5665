"""The dashboard's container image (dashboard/Dockerfile, .dockerignore and
requirements/dashboard.lock): what it is made of, checked without a Docker daemon, and its install
recipe run for real: the locked libraries alone plus the three source packages, in an interpreter
that sees nothing else, import every shipped module, so the app starts without cdktf, jsii or any
construct."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from config_model.loader import CONFIG_ENV_VAR
from tests.conftest import REPO
from tests.support.dockerfile import DockerIgnore, Instruction, instructions

DOCKERFILE = REPO / "dashboard" / "Dockerfile"
LOCK = REPO / "requirements" / "dashboard.lock"
DEV_LOCK = REPO / "requirements" / "dev.lock"
SHIPPED = ("upstream_formats", "config_model", "dashboard")
VENV = "/opt/dashboard"
SITE = f"{VENV}/lib/python3.11/site-packages"
BASE = re.compile(r"docker\.io/library/python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}")
# Never in the image: the construct side and what it loads.
HEAVY = ("cdktf", "jsii", "constructs", "constructs_lib", "stacks", "iac_tools", "tests")


def _instructions() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text())


def _final(keyword: str) -> list[Instruction]:
    found = _instructions()
    last = found[-1].stage
    return [i for i in found if i.stage == last and i.keyword == keyword]


def _copies() -> list[tuple[str, str]]:
    """(source, destination) of each COPY from the build context."""
    pairs: list[tuple[str, str]] = []
    for copy in (i for i in _instructions() if i.keyword == "COPY"):
        words = copy.words()
        if any(w.startswith("--from=") for w in words):
            continue
        assert not any(w.startswith("--") for w in words), copy.args
        *sources, destination = words
        pairs.extend((source, destination) for source in sources)
    return pairs


def _lock() -> dict[str, str]:
    """Canonical name -> version of each locked line."""
    pinned: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[canonicalize_name(name)] = version
    return pinned


# --- the Dockerfile ---


def test_every_stage_starts_from_the_one_pinned_base():
    """Pinned by digest; one base for both stages, so the venv's link to its interpreter holds."""
    froms = [i.words() for i in _instructions() if i.keyword == "FROM"]
    assert len(froms) == 2
    assert all(BASE.fullmatch(words[0]) for words in froms), froms
    assert len({words[0] for words in froms}) == 1
    assert froms[0][1:] == ["AS", "builder"]


def test_the_final_stage_runs_as_a_numeric_non_root_user():
    """Numeric, so Kubernetes' runAsNonRoot can verify it without an /etc/passwd entry."""
    users = _final("USER")
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].args.partition(":")
    assert (uid, gid) == ("10001", "10001")


def test_the_final_stage_installs_no_package_and_no_compiler():
    for run in _final("RUN"):
        assert not re.search(r"\b(apt-get|apt|dpkg|pip|gcc|cc|make|build-essential)\b", run.args), (
            run.args
        )


def test_the_entrypoint_runs_the_dashboard_module_in_exec_form():
    (entrypoint,) = _final("ENTRYPOINT")
    assert json.loads(entrypoint.args) == [f"{VENV}/bin/python", "-m", "dashboard.main"]
    assert not _final("CMD")


def test_the_builder_installs_exactly_the_lock_from_wheels_into_the_venv():
    runs = [i.args for i in _instructions() if i.stage == 0 and i.keyword == "RUN"]
    assert any(f"python -m venv --without-pip {VENV}" in run for run in runs)
    installs = [m for run in runs for m in re.findall(r"pip --python (\S+) install ([^&]*)", run)]
    assert len(installs) == 1, runs
    assert installs[0][0] == f"{VENV}/bin/python"
    assert installs[0][1].split() == [
        "--no-deps",
        "--no-compile",
        "--only-binary=:all:",
        "--requirement",
        "/tmp/dashboard.lock",
    ]
    assert ("requirements/dashboard.lock", "/tmp/dashboard.lock") in _copies()


def test_only_the_lock_and_the_three_packages_are_copied_into_the_image():
    assert sorted(_copies()) == sorted(
        [("requirements/dashboard.lock", "/tmp/dashboard.lock")]
        + [(f"{name}/", f"{SITE}/{name}/") for name in SHIPPED]
    )
    froms = [i.words() for i in _final("COPY") if i.words()[0].startswith("--from=")]
    assert froms == [["--from=builder", VENV, VENV]]


def test_the_image_writes_nothing_at_run_time():
    """Read-only root filesystem: every .pyc is built in, hash-based so COPY's timestamps do not
    matter; the config is the mounted file."""
    runs = [i.args for i in _instructions() if i.keyword == "RUN" and "compileall" in i.args]
    assert any(
        i.stage == 0 and f"--invalidation-mode unchecked-hash {VENV}/lib/python3.11" in i.args
        for i in _instructions()
        if i.keyword == "RUN"
    ), runs
    assert any("unchecked-hash" in run and "/usr/local/lib/python3.11" in run for run in runs)
    env = " ".join(i.args for i in _final("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env.split()
    assert f"{CONFIG_ENV_VAR}=/etc/attic-iac/organization.yaml" in env.split()


def test_the_image_exposes_the_app_and_the_metrics_ports():
    (expose,) = _final("EXPOSE")
    assert expose.words() == ["8080", "9090"]


# --- the build context ---


def _context_files() -> list[str]:
    """Every file of the work tree, symlinked tools (.venv, .tools) as their own names."""
    files: list[str] = []
    for root, dirs, names in os.walk(REPO):
        here = Path(root).relative_to(REPO)
        files.extend(str(here / name) for name in names)
        files.extend(str(here / d) for d in dirs if (Path(root) / d).is_symlink())
    return [f.removeprefix("./") for f in files]


def test_the_build_context_holds_only_what_the_dockerfile_copies():
    ignore = DockerIgnore.parse((REPO / ".dockerignore").read_text())
    sent = ignore.sent_of(_context_files())
    sources = tuple(source.rstrip("/") for source, _ in _copies())
    assert {f for f in sent if not any(f == s or f.startswith(f"{s}/") for s in sources)} == set()
    for source in sources:
        assert any(f == source or f.startswith(f"{source}/") for f in sent), source


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        (".venv", False),
        (".venv/lib/python3.11/site-packages/cdktf/__init__.py", False),
        (".tools/node/bin/node", False),
        ("cdktf.out/stacks/x/cdk.tf.json", False),
        ("tests/conftest.py", False),
        (".git", False),
        ("config/organization.yaml", False),
        ("requirements/dev.lock", False),
        ("dashboard/Dockerfile", False),
        ("dashboard/__pycache__/store.cpython-311.pyc", False),
        ("config_model/__pycache__/loader.cpython-311.pyc", False),
        ("dashboard/store.py", True),
        ("dashboard/static/vendor/htmx.min.js", True),
        ("config_model/loader.py", True),
        ("upstream_formats/humantime.py", True),
        ("requirements/dashboard.lock", True),
    ],
)
def test_the_dockerignore_rules(path: str, sent: bool):
    assert DockerIgnore.parse((REPO / ".dockerignore").read_text()).sent(path) is sent


# --- the lock ---


def test_every_locked_line_is_the_dev_lock_line():
    """One set of versions is tested and shipped."""
    dev = set(DEV_LOCK.read_text().splitlines())
    lines = [line for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]
    assert lines == sorted(lines, key=str.lower)
    assert [line for line in lines if line not in dev] == []


def _imported_roots() -> set[str]:
    """Top-level modules outside the standard library that the shipped packages import (inside
    functions and under TYPE_CHECKING too)."""
    graph = grimp.build_graph(*SHIPPED, include_external_packages=True, cache_dir=None)
    roots = {module.split(".")[0] for module in graph.modules} - set(SHIPPED)
    return {root for root in roots if root not in sys.stdlib_module_names}


def test_the_shipped_packages_import_nothing_of_the_construct_side():
    roots = _imported_roots()
    assert "pydantic" in roots, "the graph is empty"
    heavy = sorted(r for r in roots if r in HEAVY or r.startswith("cdktf_cdktf_provider_"))
    assert heavy == []


def _closure(requirements: list[Requirement]) -> dict[str, str]:
    """Canonical name -> installed version of every distribution the requirements pull in, with
    the markers of this interpreter (the image's: CPython 3.11 on Linux)."""
    found: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        dist = importlib.metadata.distribution(requirement.name)
        found[key[0]] = dist.version
        extras = {"", *requirement.extras}
        for spec in dist.requires or ():
            dependency = Requirement(spec)
            marker = dependency.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in extras):
                todo.append(dependency)
    return found


def test_the_lock_is_the_closure_of_what_the_image_runs():
    """Whatever the packages import, plus the [dashboard] extra (its server and libraries),
    with every dependency: nothing missing for ``pip install --no-deps``, nothing extra."""
    distributions = importlib.metadata.packages_distributions()
    unknown = sorted(r for r in _imported_roots() if r not in distributions)
    assert unknown == [], "imported, but installed by no distribution"
    imported = {name for r in _imported_roots() for name in distributions[r]}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["dashboard"]
    wanted = _closure([Requirement(r) for r in sorted(imported)] + [Requirement(r) for r in extra])
    lock = _lock()
    missing = {name: v for name, v in wanted.items() if lock.get(name) != v}
    assert missing == {}, "needed at this version, not in dashboard.lock"
    assert sorted(set(lock) - set(wanted)) == [], "in dashboard.lock, needed by nothing"


# --- the recipe, run ---

PROBE = """
import importlib, importlib.util, pkgutil, sys
site, entry = sys.argv[1], sys.argv[2]
sys.path.insert(0, site)
assert importlib.util.find_spec(entry) is not None, f"python -m {entry}: no such module"
for top in ("upstream_formats", "config_model", "dashboard"):
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        importlib.import_module(info.name)
stdlib = (sys.base_prefix, sys.base_exec_prefix)
outside = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None)
    and not module.__file__.startswith(site)
    and not module.__file__.startswith(stdlib)
)
print(len(sys.modules), *outside)
"""


def _install_locked(site: Path) -> None:
    """What ``pip install --no-deps -r dashboard.lock`` puts in site-packages: each locked
    distribution's recorded files (linked from the test venv, which has the same versions)."""
    for name, version in _lock().items():
        dist = importlib.metadata.distribution(name)
        assert dist.version == version, name
        for file in dist.files or ():
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue  # scripts in bin/, and byte code compileall makes in the image
            target = site / file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(Path(str(dist.locate_file(file))))


def test_the_image_recipe_imports_every_shipped_module_without_cdktf(tmp_path: Path):
    """The builder stage, replayed: the locked libraries and the Dockerfile's COPYs, in an
    interpreter with no site-packages of its own (``-I -S``), so a missing lock line, an
    uncopied package or an import of cdktf, jsii or a construct fails here."""
    site = tmp_path / SITE.lstrip("/")
    _install_locked(site)
    for source, destination in _copies():
        if destination.startswith(f"{SITE}/"):
            shutil.copytree(
                REPO / source,
                tmp_path / destination.lstrip("/"),
                ignore=shutil.ignore_patterns("__pycache__", "Dockerfile"),
            )
    (entrypoint,) = _final("ENTRYPOINT")
    entry = json.loads(entrypoint.args)[2]
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", PROBE, str(site), entry],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    count, *outside = run.stdout.split()
    assert outside == []
    assert int(count) > 100
