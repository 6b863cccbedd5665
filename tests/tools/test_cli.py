"""The attic-iac command as users run it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from config_model.loader import EXAMPLE_CONFIG, LoadedConfig
from stacks import app as app_module
from stacks.synth import summarize, synthesize
from tests.conftest import REPO, CliRun
from tests.support.synth_output import SynthOutput

BAD_CONFIG = """\
organization: {name: Acme, full_name: Acme}
gitlab: {url: http://gitlab.com, state_project_id: "1"}
environments:
  dev: {cluster_context: c, domain: dev.example.com, colour: blue}
"""


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iac_tools.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def existing_outdir(tmp_path: Path) -> Path:
    out = tmp_path / "cdktf.out"
    (out / "stacks" / "platform-dev").mkdir(parents=True)
    (out / "stacks" / "platform-dev" / "cdk.tf.json").write_text('{"previous": true}')
    (out / "manifest.json").write_text("{}")
    return out


def test_synth_prints_one_summary_line_per_stack(example_cli_synth: tuple[CliRun, SynthOutput]):
    run, synth = example_cli_synth
    assert run.code == 0
    counts = {s.stack: s.resources for s in summarize(synth.root)}
    lines = run.stdout.splitlines()
    assert sorted(lines[:-1]) == sorted(f"{k}: {v} resources" for k, v in counts.items())
    assert lines[-1].startswith(f"synthesized {len(counts)} stacks into ")
    assert all(v > 0 for v in counts.values())


def test_bad_config_fails_fast_with_exit_2_and_leaves_output_alone(
    tmp_path: Path, existing_outdir: Path
):
    config = tmp_path / "bad.yaml"
    config.write_text(BAD_CONFIG)
    before = _tree_digest(existing_outdir)
    started = time.monotonic()
    proc = _run("synth", "--config", str(config), "--outdir", str(existing_outdir))
    elapsed = time.monotonic() - started
    assert proc.returncode == 2
    assert elapsed < 3, f"took {elapsed:.2f}s"
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert [e.split(":")[1].strip() for e in errors] == [
        "organization.name",
        "gitlab.url",
        "environments.dev.colour",
    ]
    assert proc.stdout == ""
    assert _tree_digest(existing_outdir) == before
    assert not list(tmp_path.glob(".cdktf.out.*")), "scratch folder left behind"


def test_config_errors_are_found_before_jsii_starts(tmp_path: Path):
    config = tmp_path / "bad.yaml"
    config.write_text(BAD_CONFIG)
    code = (
        "import sys\n"
        "from iac_tools.cli import main\n"
        f"rc = main(['synth', '--config', {str(config)!r}])\n"
        "loaded = [m for m in ('jsii', 'cdktf', 'constructs') if m in sys.modules]\n"
        "print(rc, loaded)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.stdout.strip() == "2 []"


def test_failed_synth_leaves_existing_output_byte_for_byte(
    example_config: LoadedConfig, existing_outdir: Path, monkeypatch: pytest.MonkeyPatch
):
    def explode(app, config, only=None):
        app_module_build(app, config, only)
        raise RuntimeError("construct failure")

    app_module_build = app_module.build_app
    before = _tree_digest(existing_outdir)
    monkeypatch.setattr(app_module, "build_app", explode)
    with pytest.raises(RuntimeError, match="construct failure"):
        synthesize(example_config, existing_outdir)
    assert _tree_digest(existing_outdir) == before
    assert not list(existing_outdir.parent.glob(".cdktf.out.*"))


def test_cdktf_outdir_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from stacks.synth import default_outdir

    monkeypatch.setenv("CDKTF_OUTDIR", str(tmp_path / "elsewhere"))
    assert default_outdir() == tmp_path / "elsewhere"
    monkeypatch.delenv("CDKTF_OUTDIR")
    assert default_outdir() == Path("cdktf.out")


def test_validate_and_notice_about_the_example(tmp_path: Path):
    proc = _run("validate", cwd=REPO)
    if (REPO / "config" / "organization.yaml").exists():
        pytest.skip("a user config exists in this checkout")
    assert proc.returncode == 0, proc.stderr
    assert (
        "using config/organization.example.yaml (config/organization.yaml not found" in proc.stderr
    )
    assert proc.stdout.strip().endswith("valid (3 environments)")


def test_config_env_var_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = tmp_path / "mine.yaml"
    config.write_text(EXAMPLE_CONFIG.read_text())
    proc = subprocess.run(
        [sys.executable, "-m", "iac_tools.cli", "stacks"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"ATTIC_IAC_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"using {config} (from $ATTIC_IAC_CONFIG)" in proc.stderr


def test_stacks_prints_apply_order_one_per_line():
    proc = _run("stacks", "--config", str(EXAMPLE_CONFIG))
    assert proc.stdout.splitlines() == [
        f"{kind}-{env}"
        for env in ("dev", "staging", "prod")
        for kind in ("platform", "runners", "attic", "dashboard")
    ]
    proc = _run("stacks", "--config", str(EXAMPLE_CONFIG), "--env", "prod")
    assert proc.stdout.splitlines() == [
        "platform-prod",
        "runners-prod",
        "attic-prod",
        "dashboard-prod",
    ]


def test_synth_warns_about_choices_that_weaken_the_defaults(
    variants_cli_synth: tuple[CliRun, SynthOutput],
):
    run, _ = variants_cli_synth
    assert run.code == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: full: attic.storage.backend 'minio' - MinIO's open-source project was "
        "archived in 2026 and gets no security fixes; prefer 'seaweedfs' or 's3'",
        "warning: external: runners.types.dind.jobs has no node_selector: privileged dind job "
        "pods may run beside Postgres, atticd and other jobs, and a container escape there "
        "reaches them",
        "warning: incluster: runners.attic.unprotected_push is true: jobs of every branch and "
        "merge request can push to the Attic cache that every consumer trusts",
    ]


def test_validate_warns_about_backups_beside_the_cache(tmp_path: Path):
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    del data["environments"]["prod"]["overrides"]["attic"]["database"]["backup"]
    config = tmp_path / "organization.yaml"
    config.write_text(yaml.safe_dump(data))
    proc = _run("validate", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, proc.stderr
    assert warnings[0].startswith("warning: prod: the environment protects its state")


def test_stacks_rejects_an_unknown_environment():
    proc = _run("stacks", "--config", str(EXAMPLE_CONFIG), "--env", "qa")
    assert proc.returncode == 2
    assert (
        "error: --env: unknown environment (got 'qa'; allowed: dev, staging, prod)" in proc.stderr
    )


def test_schema_matches_the_committed_file():
    proc = _run("schema")
    committed = json.loads((REPO / "config" / "organization.schema.json").read_text())
    assert json.loads(proc.stdout) == committed, "run `make schema` and commit the result"


def test_example_config_points_editors_at_the_schema():
    first = EXAMPLE_CONFIG.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=./organization.schema.json"


def test_jsii_uses_the_project_node_when_installed():
    from stacks.jsii_env import PROJECT_NODE

    if not PROJECT_NODE.exists():
        pytest.skip("run `make setup` to install the project's Node.js")
    code = "import os, stacks; print(os.environ.get('JSII_NODE'))"
    env = {k: v for k, v in os.environ.items() if k != "JSII_NODE"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env, check=False
    )
    assert proc.stdout.strip() == str(PROJECT_NODE)


def test_synth_runs_without_the_node_end_of_life_warning(
    example_cli_synth: tuple[CliRun, SynthOutput],
):
    assert "end-of-life" not in example_cli_synth[0].stderr


def test_validate_rejects_a_bad_config_with_exit_2_and_one_line_per_problem(tmp_path: Path):
    import yaml

    document = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    document["gitlab"]["url"] = "http://gitlab.example.com"
    document["attic"]["api"]["min_replicas"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    started = time.monotonic()
    proc = _run("validate", "--config", str(bad))
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(errors) == 2, proc.stderr
    assert any("gitlab.url" in line and "http://gitlab.example.com" in line for line in errors)
    assert any("attic.api.min_replicas" in line for line in errors)
    # no cdktf, no Node: validating is quick enough for an editor hook
    assert time.monotonic() - started < 20


def _stack_files(root: Path, name: str) -> dict[str, bytes]:
    folder = root / "stacks" / name
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _assert_partial_synth_matches_the_full_one(
    partial: Path, full: SynthOutput, expected: list[str]
) -> None:
    manifest = json.loads((partial / "manifest.json").read_text())
    assert list(manifest["stacks"]) == sorted(expected)
    assert sorted(p.name for p in (partial / "stacks").iterdir()) == sorted(expected)
    for name in expected:
        assert _stack_files(partial, name) == _stack_files(full.root, name), name
        assert manifest["stacks"][name] == full.manifest["stacks"][name], name


def test_synth_env_writes_that_environment_byte_for_byte_as_a_full_synth(
    tmp_path: Path, example_synth: SynthOutput, capsys: pytest.CaptureFixture[str]
):
    from iac_tools.cli import main

    out = tmp_path / "cdktf.out"
    assert (
        main(["synth", "--config", str(EXAMPLE_CONFIG), "--outdir", str(out), "--env", "staging"])
        == 0
    )
    expected = ["platform-staging", "runners-staging", "attic-staging", "dashboard-staging"]
    _assert_partial_synth_matches_the_full_one(out, example_synth, expected)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == sorted(expected)
    assert lines[-1] == f"synthesized 4 stacks into {out}"


def test_synth_stack_writes_only_the_named_stacks_byte_for_byte(
    tmp_path: Path, example_synth: SynthOutput, existing_outdir: Path
):
    from iac_tools.cli import main

    argv = ["synth", "--config", str(EXAMPLE_CONFIG), "--outdir", str(existing_outdir)]
    assert main([*argv, "--stack", "dashboard-prod", "--stack", "runners-dev"]) == 0
    # dashboard-prod keeps its dependencies on runners-prod and attic-prod in the manifest,
    # though neither was synthesized.
    _assert_partial_synth_matches_the_full_one(
        existing_outdir, example_synth, ["dashboard-prod", "runners-dev"]
    )
    assert not list(tmp_path.glob(".cdktf.out.*")), "scratch folder left behind"


@pytest.mark.parametrize(
    ("selection", "error"),
    [
        (
            ["--env", "qa"],
            "error: --env: unknown environment (got 'qa'; allowed: dev, staging, prod)",
        ),
        (
            ["--stack", "attic-prod", "--stack", "attic-qa", "--stack", "cache-dev"],
            "error: --stack: unknown stack (got 'attic-qa'; allowed: platform-dev, ",
        ),
    ],
    ids=["unknown-env", "unknown-stacks"],
)
def test_synth_of_an_unknown_env_or_stack_fails_fast_and_leaves_output_alone(
    tmp_path: Path, existing_outdir: Path, selection: list[str], error: str
):
    before = _tree_digest(existing_outdir)
    started = time.monotonic()
    proc = _run(
        "synth", "--config", str(EXAMPLE_CONFIG), "--outdir", str(existing_outdir), *selection
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr
    assert elapsed < 3, f"took {elapsed:.2f}s"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors[0].startswith(error)
    assert len(errors) == len([s for s in selection if s.startswith(("qa", "attic-qa", "cache"))])
    assert proc.stderr.splitlines()[-1] == f"{len(errors)} problem(s); nothing was synthesized."
    assert proc.stdout == ""
    assert _tree_digest(existing_outdir) == before


def test_synth_env_and_stack_are_exclusive(tmp_path: Path):
    proc = _run(
        "synth",
        "--config",
        str(EXAMPLE_CONFIG),
        "--outdir",
        str(tmp_path / "o"),
        "--env",
        "dev",
        "--stack",
        "attic-dev",
    )
    assert proc.returncode == 2
    assert "not allowed with argument" in proc.stderr
    assert not (tmp_path / "o").exists()
