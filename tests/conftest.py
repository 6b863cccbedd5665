"""Session fixtures: each config is synthesized once per test session."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from config_model.loader import EXAMPLE_CONFIG, LoadedConfig, load_config
from iac_tools.cli import main
from tests.support.synth_output import SynthOutput

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def refdata_dir() -> Path | None:
    """``$ATTIC_IAC_REFDATA`` or ``../shared/refdata`` beside the repo; None if absent."""
    candidate = Path(os.environ.get("ATTIC_IAC_REFDATA") or REPO.parent / "shared" / "refdata")
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def refdata() -> Path:
    found = refdata_dir()
    if found is None:
        pytest.skip(
            "reference data not found: set ATTIC_IAC_REFDATA or put shared/ beside the repo"
        )
    return found


@pytest.fixture(scope="session")
def example_config() -> LoadedConfig:
    return load_config(EXAMPLE_CONFIG)


@dataclass(frozen=True)
class CliRun:
    code: int
    stdout: str
    stderr: str


def _cli_synth(
    tmp_path_factory: pytest.TempPathFactory, name: str, config: Path
) -> tuple[CliRun, SynthOutput]:
    """``attic-iac synth --config CONFIG`` run in-process once per test session.

    Under pytest-xdist every worker has its own session fixtures; the first worker to ask
    synthesizes into the run's shared temporary folder (under a lock) and the others read the
    same output and the same recorded stdout, stderr and exit code.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this run
    folder = base / f"synth-{name}"
    with (base / f"synth-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        recorded = folder / "run.json"
        if not recorded.exists():
            folder.mkdir(exist_ok=True)
            stdout, stderr = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                code = main(
                    ["synth", "--config", str(config), "--outdir", str(folder / "cdktf.out")]
                )
            run = CliRun(code, stdout.getvalue(), stderr.getvalue())
            recorded.write_text(json.dumps(dataclasses.asdict(run)))
        run = CliRun(**json.loads(recorded.read_text()))
    return run, SynthOutput(folder / "cdktf.out")


@pytest.fixture(scope="session")
def example_cli_synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[CliRun, SynthOutput]:
    """The example config synthesized through ``attic-iac synth``, as a user runs it."""
    return _cli_synth(tmp_path_factory, "example", EXAMPLE_CONFIG)


@pytest.fixture(scope="session")
def example_synth(example_cli_synth: tuple[CliRun, SynthOutput]) -> SynthOutput:
    return example_cli_synth[1]


@pytest.fixture(scope="session")
def variants_cli_synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[CliRun, SynthOutput]:
    """A config whose environments switch on what the example leaves off, synthesized through
    ``attic-iac synth`` (its warnings are in the run's stderr)."""
    return _cli_synth(tmp_path_factory, "variants", DATA / "variants.yaml")


@pytest.fixture(scope="session")
def variants_synth(variants_cli_synth: tuple[CliRun, SynthOutput]) -> SynthOutput:
    run, synth = variants_cli_synth
    assert run.code == 0, run.stderr
    return synth


@pytest.fixture(scope="session")
def all_synths(example_synth: SynthOutput, variants_synth: SynthOutput) -> list[SynthOutput]:
    return [example_synth, variants_synth]
