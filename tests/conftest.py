"""Session fixtures: each config is synthesized once per test session."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from config_model.loader import EXAMPLE_CONFIG, LoadedConfig, load_config
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
    # for a synth in a fresh process: the heavy providers (aws, cloudflare, gitlab) it imported
    providers_loaded: tuple[str, ...] = ()
    # ... and the provider submodules it built (the others stay placeholders: stacks/jsii_speed)
    provider_modules_built: tuple[str, ...] = ()


HEAVY_PROVIDERS = ("aws", "cloudflare", "gitlab")

_FRESH_SYNTH = f"""
import json, sys
from iac_tools.cli import main
code = main(["synth", "--config", sys.argv[1], "--outdir", sys.argv[2]])
sys.stdout.flush()
loaded = [p for p in {HEAVY_PROVIDERS!r}
          if any(m.startswith(f"cdktf_cdktf_provider_{{p}}") for m in sys.modules)]
from stacks.jsii_speed import built_provider_modules
with open(sys.argv[3], "w") as record:
    json.dump({{"code": code, "providers_loaded": loaded,
               "provider_modules_built": built_provider_modules()}}, record)
sys.exit(code)
"""


def synth_in_fresh_process(config: Path, outdir: Path) -> CliRun:
    """``attic-iac synth --config CONFIG --outdir OUTDIR`` in a new Python process, as a user
    runs it, with the heavy providers that process imported."""
    record = outdir.parent / f"{outdir.name}.run.json"
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH_SYNTH, str(config), str(outdir), str(record)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=300,
    )
    assert record.exists(), proc.stderr
    fields = json.loads(record.read_text())
    return CliRun(
        proc.returncode,
        proc.stdout,
        proc.stderr,
        tuple(fields["providers_loaded"]),
        tuple(fields["provider_modules_built"]),
    )


# The configs synthesized once per test run through ``attic-iac synth``, by name.
SHARED_SYNTHS = {"example": EXAMPLE_CONFIG, "variants": DATA / "variants.yaml"}


def _cli_synth(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[CliRun, SynthOutput]:
    """``attic-iac synth --config CONFIG`` in a fresh process, once per test run.

    Under pytest-xdist every worker has its own session fixtures; the first worker to ask
    synthesizes into the run's shared temporary folder (under a lock) and the others read the
    same output and the same recorded exit code, stdout, stderr and imported providers. A
    worker that finds its config being synthesized by another starts a config nobody has
    started yet meanwhile, rather than wait idle.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this run
    if not _synth_once(base, name, block=False):
        for other in SHARED_SYNTHS:
            if other != name:
                _synth_once(base, other, block=False)
        _synth_once(base, name, block=True)
    folder = base / f"synth-{name}"
    fields = json.loads((folder / "run.json").read_text())
    for key in ("providers_loaded", "provider_modules_built"):
        fields[key] = tuple(fields[key])
    return CliRun(**fields), SynthOutput(folder / "cdktf.out")


def _synth_once(base: Path, name: str, *, block: bool) -> bool:
    """Make sure ``base/synth-NAME`` holds that config's synth; False when another worker
    holds its lock and ``block`` is False."""
    folder = base / f"synth-{name}"
    with (base / f"synth-{name}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        recorded = folder / "run.json"
        if not recorded.exists():
            folder.mkdir(exist_ok=True)
            run = synth_in_fresh_process(SHARED_SYNTHS[name], folder / "cdktf.out")
            recorded.write_text(json.dumps(dataclasses.asdict(run)))
    return True


@pytest.fixture(scope="session")
def example_cli_synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[CliRun, SynthOutput]:
    """The example config synthesized through ``attic-iac synth``, as a user runs it."""
    return _cli_synth(tmp_path_factory, "example")


@pytest.fixture(scope="session")
def example_synth(example_cli_synth: tuple[CliRun, SynthOutput]) -> SynthOutput:
    return example_cli_synth[1]


@pytest.fixture(scope="session")
def variants_cli_synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[CliRun, SynthOutput]:
    """A config whose environments switch on what the example leaves off, synthesized through
    ``attic-iac synth`` (its warnings are in the run's stderr)."""
    return _cli_synth(tmp_path_factory, "variants")


@pytest.fixture(scope="session")
def variants_synth(variants_cli_synth: tuple[CliRun, SynthOutput]) -> SynthOutput:
    run, synth = variants_cli_synth
    assert run.code == 0, run.stderr
    return synth


@pytest.fixture(scope="session")
def all_synths(example_synth: SynthOutput, variants_synth: SynthOutput) -> list[SynthOutput]:
    return [example_synth, variants_synth]
