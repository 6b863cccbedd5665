"""Build the two distributions the way ``make dist`` does, and look inside them.

``python -m build`` builds the sdist, then the wheel from that sdist (so a wheel proves the
sdist is complete), without build isolation: hatchling comes from the dev lock, so a build
needs no network and takes about a second.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from email.parser import Parser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "library"
# Any fixed time works; make dist uses the last commit's.
EPOCH = "1767225600"  # 2026-01-01T00:00:00Z


@dataclass(frozen=True)
class Dist:
    """One distribution's wheel and sdist."""

    wheel: Path
    sdist: Path

    def wheel_files(self) -> list[str]:
        with zipfile.ZipFile(self.wheel) as archive:
            return sorted(archive.namelist())

    def sdist_files(self) -> list[str]:
        with tarfile.open(self.sdist) as archive:
            return sorted(member.name for member in archive.getmembers() if member.isfile())

    def metadata(self) -> Message:
        with zipfile.ZipFile(self.wheel) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            return Parser().parsestr(archive.read(name).decode())


def build_tool_missing() -> str | None:
    """Why ``python -m build --no-isolation`` cannot run here, or None."""
    for tool in ("build", "hatchling", "twine"):
        if importlib.util.find_spec(tool) is None:
            return f"{tool} is not installed: run `make setup` (it is in requirements/dev.lock)"
    return None


def build_dist(project: Path, outdir: Path, *, epoch: str = EPOCH) -> Dist:
    """Build ``project`` (the repository root or ``library/``) into ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(outdir), str(project)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SOURCE_DATE_EPOCH": epoch},
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    wheels = sorted(outdir.glob("*.whl"))
    sdists = sorted(outdir.glob("*.tar.gz"))
    assert len(wheels) == len(sdists) == 1, (wheels, sdists)
    return Dist(wheel=wheels[0], sdist=sdists[0])
