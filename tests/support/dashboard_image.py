"""The dashboard image's recipe (dashboard/Dockerfile, requirements/dashboard.lock) as data, and
its builder stage replayed under a temporary root without Docker: a venv, the locked
distributions' files, the COPYs and the console script, at the image's paths below ``root``."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.utils import canonicalize_name

from tests.conftest import REPO
from tests.support.dockerfile import Instruction, instructions

DOCKERFILE = REPO / "dashboard" / "Dockerfile"
LOCK = REPO / "requirements" / "dashboard.lock"
SHIPPED = ("upstream_formats", "config_model", "dashboard")
VENV = "/opt/dashboard"
SITE = f"{VENV}/lib/python3.11/site-packages"
SCRIPT = f"{VENV}/bin/attic-iac-dashboard"


def dockerfile() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text())


def final(keyword: str) -> list[Instruction]:
    """The final stage's instructions of one kind."""
    found = dockerfile()
    last = found[-1].stage
    return [i for i in found if i.stage == last and i.keyword == keyword]


def copies() -> list[tuple[str, str]]:
    """(source, destination) of each COPY from the build context."""
    pairs: list[tuple[str, str]] = []
    for copy in (i for i in dockerfile() if i.keyword == "COPY"):
        words = copy.words()
        if any(w.startswith("--from=") for w in words):
            continue
        assert not any(w.startswith("--") for w in words), copy.args
        *sources, destination = words
        pairs.extend((source, destination) for source in sources)
    return pairs


def lock() -> dict[str, str]:
    """Canonical name -> version of each locked line."""
    pinned: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[canonicalize_name(name)] = version
    return pinned


def console_script() -> list[str]:
    """The lines the builder's ``printf '%s\\n' ... > SCRIPT`` writes."""
    for run in (i for i in dockerfile() if i.keyword == "RUN"):
        words = run.words()
        if words[:2] == ["printf", "%s\\n"] and f"> {SCRIPT}" in run.args:
            return words[2 : words.index(">")]
    raise AssertionError(f"no RUN writes {SCRIPT}")


def entrypoint() -> list[str]:
    (found,) = final("ENTRYPOINT")
    argv = json.loads(found.args)
    assert isinstance(argv, list)
    return [str(arg) for arg in argv]


def _install_locked(site: Path) -> None:
    """What ``pip install --no-deps -r dashboard.lock`` puts in site-packages: each locked
    distribution's recorded files, linked from the test venv (which has the same versions)."""
    for name, version in lock().items():
        dist = importlib.metadata.distribution(name)
        assert dist.version == version, name
        for file in dist.files or ():
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue  # scripts in bin/, and byte code that compileall makes in the image
            target = site / file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(Path(str(dist.locate_file(file))))


def replay(root: Path) -> None:
    """The builder stage under ``root`` (``root/opt/dashboard`` is the image's venv)."""
    venv = root / VENV.lstrip("/")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    _install_locked(root / SITE.lstrip("/"))
    for source, destination in copies():
        if destination.startswith(f"{SITE}/"):
            shutil.copytree(
                REPO / source,
                root / destination.lstrip("/"),
                ignore=shutil.ignore_patterns("__pycache__", "Dockerfile"),
            )
    shebang, *body = console_script()
    script = root / SCRIPT.lstrip("/")
    script.write_text("\n".join([shebang.replace(VENV, str(venv)), *body]) + "\n")
    script.chmod(0o755)
