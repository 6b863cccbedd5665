"""The dashboard's container image (dashboard/Dockerfile, .dockerignore and
requirements/dashboard.lock), checked without a Docker daemon: a pinned base, no root, no
compiler, only the lock and three source packages, and a lock that is exactly the closure of what
they import, at dev.lock's versions, with no cdktf. test_dashboard_image_run.py runs the recipe."""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
import tomllib
from pathlib import Path

import grimp
import pytest
from packaging.requirements import Requirement

from config_model.loader import CONFIG_ENV_VAR
from tests.conftest import REPO
from tests.support.dashboard_image import (
    LOCK,
    SCRIPT,
    SHIPPED,
    SITE,
    VENV,
    console_script,
    copies,
    dockerfile,
    entrypoint,
    final,
    lock,
)
from tests.support.dockerfile import DockerIgnore
from tests.support.library_venv import installed_closure

DEV_LOCK = REPO / "requirements" / "dev.lock"
BASE = re.compile(r"docker\.io/library/python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}")
# Never in the image: the construct side and what it loads.
HEAVY = ("cdktf", "jsii", "constructs", "constructs_lib", "stacks", "iac_tools", "tests")


# --- the Dockerfile ---


def test_every_stage_starts_from_the_one_pinned_base():
    """Pinned by digest; one base for both stages, so the venv's link to its interpreter holds."""
    froms = [i.words() for i in dockerfile() if i.keyword == "FROM"]
    assert len(froms) == 2
    assert all(BASE.fullmatch(words[0]) for words in froms), froms
    assert len({words[0] for words in froms}) == 1
    assert froms[0][1:] == ["AS", "builder"]


def test_the_final_stage_runs_as_a_numeric_non_root_user():
    """Numeric, so Kubernetes' runAsNonRoot can verify it without an /etc/passwd entry."""
    users = final("USER")
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].args.partition(":")
    assert (uid, gid) == ("10001", "10001")


def test_the_final_stage_installs_no_package_and_no_compiler():
    for run in final("RUN"):
        assert not re.search(r"\b(apt-get|apt|dpkg|pip|gcc|cc|make|build-essential)\b", run.args), (
            run.args
        )


def test_the_entrypoint_is_the_console_script_in_exec_form():
    """The same command as pyproject's ``attic-iac-dashboard``, written as pip writes it (the
    wheel itself is not installed: it would bring cdktf)."""
    assert entrypoint() == [SCRIPT]
    assert not final("CMD")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    module, _, function = project["scripts"]["attic-iac-dashboard"].partition(":")
    assert console_script() == [
        f"#!{VENV}/bin/python",
        "import sys",
        f"from {module} import {function}",
        f"sys.exit({function}())",
    ]
    assert f"chmod 0755 {SCRIPT}" in " ".join(i.args for i in dockerfile() if i.keyword == "RUN")
    env = " ".join(i.args for i in final("ENV")).split()
    assert f"PATH={VENV}/bin:$PATH" in env


def test_the_builder_installs_exactly_the_lock_from_wheels_into_the_venv():
    runs = [i.args for i in dockerfile() if i.stage == 0 and i.keyword == "RUN"]
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
    assert ("requirements/dashboard.lock", "/tmp/dashboard.lock") in copies()


def test_only_the_lock_and_the_three_packages_are_copied_into_the_image():
    assert sorted(copies()) == sorted(
        [("requirements/dashboard.lock", "/tmp/dashboard.lock")]
        + [(f"{name}/", f"{SITE}/{name}/") for name in SHIPPED]
    )
    froms = [i.words() for i in final("COPY") if i.words()[0].startswith("--from=")]
    assert froms == [["--from=builder", VENV, VENV]]


def test_the_image_writes_nothing_at_run_time():
    """Read-only root filesystem: every .pyc is built in, hash-based so COPY's timestamps do not
    matter; the config is the mounted file."""
    runs = [i.args for i in dockerfile() if i.keyword == "RUN" and "compileall" in i.args]
    assert any(
        i.stage == 0 and f"--invalidation-mode unchecked-hash {VENV}/lib/python3.11" in i.args
        for i in dockerfile()
        if i.keyword == "RUN"
    ), runs
    assert any("unchecked-hash" in run and "/usr/local/lib/python3.11" in run for run in runs)
    env = " ".join(i.args for i in final("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env.split()
    assert f"{CONFIG_ENV_VAR}=/etc/attic-iac/organization.yaml" in env.split()


def test_the_image_exposes_the_app_and_the_metrics_ports():
    (expose,) = final("EXPOSE")
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


def test_the_build_context_holds_only_what_the_dockerfilecopies():
    ignore = DockerIgnore.parse((REPO / ".dockerignore").read_text())
    sent = ignore.sent_of(_context_files())
    sources = tuple(source.rstrip("/") for source, _ in copies())
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


def test_the_lock_is_the_closure_of_what_the_image_runs():
    """Whatever the packages import, plus the [dashboard] extra (its server and libraries),
    with every dependency: nothing missing for ``pip install --no-deps``, nothing extra."""
    distributions = importlib.metadata.packages_distributions()
    unknown = sorted(r for r in _imported_roots() if r not in distributions)
    assert unknown == [], "imported, but installed by no distribution"
    imported = {name for r in _imported_roots() for name in distributions[r]}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["dashboard"]
    requirements = [Requirement(r) for r in sorted(imported)] + [Requirement(r) for r in extra]
    # with the markers of this interpreter: the image's (CPython 3.11 on Linux)
    closure = installed_closure(requirements, "the dashboard image")
    wanted = {name: dist.version for name, dist in closure.items()}
    locked = lock()
    missing = {name: v for name, v in wanted.items() if locked.get(name) != v}
    assert missing == {}, "needed at this version, not in dashboard.lock"
    assert sorted(set(locked) - set(wanted)) == [], "in dashboard.lock, needed by nothing"
