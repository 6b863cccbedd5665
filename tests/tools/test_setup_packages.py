"""``make setup``'s Debian packages (Makefile ``SYSTEM_PACKAGES``): the browser tests' chromium and
a font come with the project's own set-up. The rule runs for real on a copy of the Makefile, only
its stamp target, with a stub apt-get and the packages' files under a temporary root."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.shell_stubs import stub

MAKEFILE = REPO / "Makefile"
STAMP = "stamp/.system-tools"


def _makefile() -> str:
    return MAKEFILE.read_text().replace("\\\n", " ")


def _variable(name: str) -> list[str]:
    match = re.search(rf"^{name} := (.*)$", _makefile(), re.MULTILINE)
    assert match, name
    return match.group(1).split()


def _packages() -> dict[str, str]:
    return dict(entry.split(":", 1) for entry in _variable("SYSTEM_PACKAGES"))


def test_setup_brings_debian_chromium_and_a_font():
    """Playwright drives /usr/bin/chromium (no browser download); the font makes text visible
    in the screenshots."""
    packages = _packages()
    assert packages["chromium"] == "/usr/bin/chromium"
    assert packages["fonts-dejavu-core"].endswith("/DejaVuSans.ttf")
    assert packages["busybox"] == "/bin/busybox"
    setup = re.search(r"^setup: (.*)$", _makefile(), re.MULTILINE)
    assert setup
    assert "$(SYSTEM_TOOLS)" in setup.group(1).split()
    assert re.search(r"^test: lint typecheck pytest$", _makefile(), re.MULTILINE)


class _Rule:
    """The stamp rule in a scratch directory, its packages' files under ``root``."""

    def __init__(self, tmp_path: Path) -> None:
        self.work = tmp_path / "work"
        self.work.mkdir()
        shutil.copy(MAKEFILE, self.work / "Makefile")
        self.root = tmp_path / "root"
        self.record = tmp_path / "apt-get.calls"
        self.bin = tmp_path / "bin"
        stub(self.bin / "apt-get", '#!/bin/sh\nprintf "%s\\n" "$*" >> "$RECORD"\n')

    def install(self, name: str) -> None:
        path = self.root / _packages()[name].lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def run(self) -> list[str]:
        """apt-get's calls of this run."""
        self.record.unlink(missing_ok=True)
        packages = " ".join(f"{name}:{self.root}{path}" for name, path in _packages().items())
        make = shutil.which("make")
        assert make
        run = subprocess.run(
            [make, f"SYSTEM_TOOLS={STAMP}", f"SYSTEM_PACKAGES={packages}", STAMP],
            cwd=self.work,
            env={"PATH": f"{self.bin}:/usr/bin:/bin", "RECORD": str(self.record)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert (self.work / STAMP).is_file()
        return self.record.read_text().splitlines() if self.record.exists() else []


@pytest.mark.parametrize(
    ("present", "installed"),
    [
        ((), "busybox chromium fonts-dejavu-core"),
        (("busybox",), "chromium fonts-dejavu-core"),
        (("busybox", "fonts-dejavu-core"), "chromium"),
        (("busybox", "chromium"), "fonts-dejavu-core"),
    ],
)
def test_setup_installs_only_the_missing_packages(tmp_path: Path, present, installed):
    rule = _Rule(tmp_path)
    for name in present:
        rule.install(name)
    assert rule.run() == ["update -qq", f"install -y -qq --no-install-recommends {installed}"]


def test_setup_calls_no_apt_get_when_all_are_there_and_rechecks_when_the_makefile_changes(
    tmp_path: Path,
):
    """A machine set up before chromium joined the list gets it: the stamp is older than the
    Makefile that added it."""
    rule = _Rule(tmp_path)
    for name in ("busybox", "chromium", "fonts-dejavu-core"):
        rule.install(name)
    assert rule.run() == []
    (rule.root / _packages()["chromium"].lstrip("/")).unlink()
    assert rule.run() == []  # the stamp is current: no check
    stamp = (rule.work / STAMP).stat()
    makefile = rule.work / "Makefile"
    newer = stamp.st_mtime_ns + 1_000_000_000
    os.utime(makefile, ns=(newer, newer))
    assert rule.run() == ["update -qq", "install -y -qq --no-install-recommends chromium"]
