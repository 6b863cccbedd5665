"""``attic-iac tofu`` against a fake ``tofu`` that records its calls.

These tests check the command lines, environment and refusals of our driver, not OpenTofu: the
fake only creates the files OpenTofu would (``.terraform/``, the saved plan) and prints canned
``show`` output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from iac_tools import tofu
from iac_tools.cli import main as cli_main
from stacks.stack_kinds import STACK_KINDS
from tests.conftest import REPO
from tests.support.fake_tofu import LOCK_ID, calls, install
from tests.support.plan_inputs import tf_var_environment
from tests.support.synth_output import SynthOutput

SECRET = "glpat-not-a-real-token-0123456789"


@pytest.fixture
def outdir(example_synth: SynthOutput, tmp_path: Path) -> Path:
    """A private copy of the example's synthesized output."""
    target = tmp_path / "cdktf.out"
    shutil.copytree(example_synth.root, target)
    return target


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, example_synth: SynthOutput) -> Path:
    """A fake ``tofu`` first on PATH, with every input a plan needs; returns its call log."""
    bin_dir = tmp_path / "bin"
    install(bin_dir)
    log = tmp_path / "tofu-calls.jsonl"
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_TOFU_LOG", str(log))
    for name in (
        "TOFU_BIN",
        "TF_HTTP_PASSWORD",
        "CI_JOB_TOKEN",
        "GITLAB_TOKEN",
        "DEPLOYMENT_FREEZE",
        "CI_DEPLOY_FREEZE",
        "FREEZE_REASON",
        "FREEZE_CONTACT",
        "KUBECONFIG",
        "KUBE_CONFIG_PATH",
        "KUBE_CONFIG_PATHS",
        "FAKE_TOFU_FAIL",
        "CDKTF_OUTDIR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TF_HTTP_PASSWORD", SECRET)
    for name, value in tf_var_environment(doc for _, doc in example_synth.stacks()).items():
        monkeypatch.setenv(name, value)
    return log


def run(outdir: Path, *argv: str) -> int:
    own, sep, rest = list(argv), [], []
    if "--" in own:
        split = own.index("--")
        own, sep, rest = own[:split], ["--"], own[split + 1 :]
    return tofu.main([*own, "--outdir", str(outdir), *sep, *rest])


def test_fake_tofu_init_plan_apply_in_order_in_the_stack_folder(
    outdir: Path, fake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_dir = outdir / "stacks" / "attic-dev"
    assert run(outdir, "init", "attic-dev") == 0
    assert run(outdir, "plan", "attic-dev") == 0
    assert run(outdir, "apply", "attic-dev") == 0
    recorded = calls(fake)
    assert [c["args"] for c in recorded] == [
        ["init", "-input=false"],
        ["plan", "-input=false", "-out=tfplan"],
        ["show", "-no-color", "tfplan"],
        ["show", "-json", "tfplan"],
        ["apply", "-input=false", "tfplan"],
    ]
    assert {c["cwd"] for c in recorded} == {str(stack_dir)}
    assert all(c["automation"] == "1" for c in recorded)
    # the human-readable plan and GitLab's terraform report; replace counts as delete + create
    assert "(sensitive value)" in (stack_dir / "plan.txt").read_text()
    report = json.loads((stack_dir / "plan.report.json").read_text())
    assert report == {"create": 2, "update": 1, "delete": 1}
    assert "2 to create, 1 to update, 1 to delete" in capsys.readouterr().out
    # the applied plan is gone: applying again needs a new plan
    assert not (stack_dir / "tfplan").exists()
    assert run(outdir, "apply", "attic-dev") == tofu.EXIT_BAD_INPUT
    assert len(calls(fake)) == len(recorded)


def test_fake_tofu_plan_runs_init_only_when_needed(outdir: Path, fake: Path) -> None:
    assert run(outdir, "plan", "platform-dev") == 0
    assert run(outdir, "plan", "platform-dev") == 0
    verbs = [c["args"][0] for c in calls(fake)]
    assert verbs == ["init", "plan", "show", "show", "plan", "show", "show"]


def test_fake_tofu_apply_without_a_saved_plan_is_refused(
    outdir: Path, fake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(outdir, "apply", "attic-dev") == tofu.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "no saved plan" in err
    assert "attic-iac tofu plan attic-dev" in err
    assert calls(fake) == []


def test_fake_tofu_apply_refuses_a_plan_older_than_the_synth(
    outdir: Path, fake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(outdir, "plan", "attic-dev") == 0
    document = outdir / "stacks" / "attic-dev" / "cdk.tf.json"
    synthesized = json.loads(document.read_text())
    synthesized.setdefault("locals", {})["changed"] = "by a later synth"
    document.write_text(json.dumps(synthesized))
    before = len(calls(fake))
    assert run(outdir, "apply", "attic-dev") == tofu.EXIT_BAD_INPUT
    assert "older than the synthesized stack" in capsys.readouterr().err
    assert len(calls(fake)) == before
    assert all(c["args"][0] != "apply" for c in calls(fake))


FREEZES = [
    ("DEPLOYMENT_FREEZE", "true", "DEPLOYMENT_FREEZE is set"),
    ("DEPLOYMENT_FREEZE", "TRUE", "DEPLOYMENT_FREEZE is set"),
    ("CI_DEPLOY_FREEZE", "true", "GitLab deploy freeze period"),
]


@pytest.mark.parametrize(
    "case", [(verb, *freeze) for verb in ("apply", "destroy") for freeze in FREEZES]
)
def test_fake_tofu_freeze_refuses_apply_and_destroy_without_calling_tofu(
    outdir: Path,
    fake: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, str, str, str],
) -> None:
    verb, variable, value, why = case
    assert run(outdir, "plan", "attic-dev") == 0
    before = calls(fake)
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("FREEZE_REASON", "end-of-year change freeze")
    monkeypatch.setenv("FREEZE_CONTACT", "#platform-oncall")
    assert run(outdir, verb, "attic-dev") == tofu.EXIT_FROZEN
    assert run(outdir, verb, "--all", "--env", "dev") == tofu.EXIT_FROZEN
    err = capsys.readouterr().err
    assert why in err
    assert "reason: end-of-year change freeze" in err
    assert "contact: #platform-oncall" in err
    assert calls(fake) == before
    # a freeze does not stop planning
    assert run(outdir, "plan", "attic-dev") == 0


def test_fake_tofu_freeze_false_does_not_block(
    outdir: Path, fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYMENT_FREEZE", "false")
    assert run(outdir, "plan", "attic-dev") == 0
    assert run(outdir, "apply", "attic-dev") == 0
    assert calls(fake)[-1]["args"][0] == "apply"


def test_fake_tofu_all_walks_the_environment_in_dependency_order(outdir: Path, fake: Path) -> None:
    assert run(outdir, "plan", "--all", "--env", "staging") == 0
    plans = [Path(c["cwd"]).name for c in calls(fake) if c["args"][0] == "plan"]
    assert plans == ["platform-staging", "runners-staging", "attic-staging", "dashboard-staging"]
    assert run(outdir, "apply", "--all", "--env", "staging") == 0
    applies = [Path(c["cwd"]).name for c in calls(fake) if c["args"][0] == "apply"]
    assert applies == plans
    # the manifest agrees: every dependency comes earlier
    manifest = json.loads((outdir / "manifest.json").read_text())
    for index, name in enumerate(plans):
        assert set(manifest["stacks"][name]["dependencies"]) <= set(plans[:index])


def test_fake_tofu_all_except_leaves_a_kind_out_and_keeps_the_order(
    outdir: Path, fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's apply:<env> is the fleet alone; dashboard-<env> goes in a job of its own.
    The fleet's stacks need no dashboard image."""
    monkeypatch.delenv("TF_VAR_dashboard_image")
    assert run(outdir, "plan", "--all", "--env", "dev", "--except", "dashboard") == 0
    assert run(outdir, "apply", "--all", "--env", "dev", "--except", "dashboard") == 0
    fleet = ["platform-dev", "runners-dev", "attic-dev"]
    for verb in ("plan", "apply"):
        assert [Path(c["cwd"]).name for c in calls(fake) if c["args"][0] == verb] == fleet
    assert not (outdir / "stacks" / "dashboard-dev" / "tfplan").exists()
    before = len(calls(fake))
    assert (
        run(
            outdir, "destroy", "--all", "--env", "dev", "--except", "dashboard", "--except", "attic"
        )
        == 0
    )
    destroyed = [Path(c["cwd"]).name for c in calls(fake)[before:] if c["args"][0] == "destroy"]
    assert destroyed == ["runners-dev", "platform-dev"]


def test_fake_tofu_destroy_all_runs_backwards_with_passthrough(outdir: Path, fake: Path) -> None:
    assert run(outdir, "destroy", "--all", "--env", "prod", "--", "-auto-approve") == 0
    destroys = [c for c in calls(fake) if c["args"][0] == "destroy"]
    assert [Path(c["cwd"]).name for c in destroys] == [
        "dashboard-prod",
        "attic-prod",
        "runners-prod",
        "platform-prod",
    ]
    assert all(c["args"] == ["destroy", "-auto-approve"] for c in destroys)


def test_fake_tofu_all_stops_at_the_first_failing_stack(
    outdir: Path, fake: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_TOFU_FAIL", "plan:runners-dev")
    assert run(outdir, "plan", "--all", "--env", "dev") == 1
    stacks = {Path(c["cwd"]).name for c in calls(fake)}
    assert "attic-dev" not in stacks
    assert "not run: attic-dev" in capsys.readouterr().err


def test_fake_tofu_a_plan_without_the_dashboard_image_stops_before_tofu(
    outdir: Path, fake: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No digest, no plan: there is no tag to fall back to, and OpenTofu never starts."""
    monkeypatch.delenv("TF_VAR_dashboard_image")
    monkeypatch.setenv("TF_VAR_dashboard_gitlab_read_token", "")
    assert run(outdir, "plan", "dashboard-dev") == tofu.EXIT_BAD_INPUT
    assert run(outdir, "plan", "--all", "--env", "dev") == tofu.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert (
        "error: dashboard-dev: no value for variable dashboard_image (set TF_VAR_dashboard_image)"
        in err
    )
    assert "variable dashboard_gitlab_read_token (set TF_VAR_dashboard_gitlab_read_token)" in err
    assert calls(fake) == []
    # OpenTofu's own -var/-var-file may give it instead; the stacks that need nothing plan.
    image = "registry.example.com/a/dashboard@sha256:" + "f" * 64
    assert run(outdir, "plan", "dashboard-dev", "--", f"-var=dashboard_image={image}") == 0
    assert run(outdir, "plan", "attic-dev") == 0


def test_fake_tofu_missing_password_is_a_clear_error(
    outdir: Path, fake: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TF_HTTP_PASSWORD")
    assert run(outdir, "plan", "attic-dev") == tofu.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("error:") == 1
    for name in ("TF_HTTP_PASSWORD", "CI_JOB_TOKEN", "GITLAB_TOKEN"):
        assert name in err
    assert calls(fake) == []


def test_fake_tofu_job_token_is_mapped_with_gitlabs_job_token_user(
    outdir: Path, fake: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TF_HTTP_PASSWORD")
    monkeypatch.setenv("CI_JOB_TOKEN", "job-token-value")
    monkeypatch.setenv("GITLAB_TOKEN", SECRET)  # the job token wins: least privilege
    # a config whose state user is a person's: the job token still needs gitlab-ci-token
    document = outdir / "stacks" / "attic-dev" / "cdk.tf.json"
    synthesized = json.loads(document.read_text())
    synthesized["terraform"]["backend"]["http"]["username"] = "alice"
    document.write_text(json.dumps(synthesized))
    assert run(outdir, "init", "attic-dev") == 0
    (call,) = calls(fake)
    assert call["password"] == "job-token-value"
    assert call["args"] == ["init", "-input=false", "-backend-config=username=gitlab-ci-token"]
    out = capsys.readouterr()
    assert "job-token-value" not in out.out + out.err


def test_fake_tofu_example_user_needs_no_override_for_the_job_token(
    outdir: Path, fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TF_HTTP_PASSWORD")
    monkeypatch.setenv("CI_JOB_TOKEN", "job-token-value")
    assert run(outdir, "init", "runners-dev") == 0
    assert calls(fake)[0]["args"] == ["init", "-input=false"]


def test_fake_tofu_gitlab_token_is_mapped_and_never_printed(
    outdir: Path, fake: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TF_HTTP_PASSWORD")
    monkeypatch.setenv("GITLAB_TOKEN", SECRET)
    assert run(outdir, "plan", "attic-dev") == 0
    assert {c["password"] for c in calls(fake)} == {SECRET}
    assert all("-backend-config=username" not in " ".join(c["args"]) for c in calls(fake))
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    for produced in (outdir / "stacks" / "attic-dev").rglob("*"):
        if produced.is_file():
            assert SECRET.encode() not in produced.read_bytes(), produced


def test_fake_tofu_reconfigures_when_the_backend_changed(outdir: Path, fake: Path) -> None:
    assert run(outdir, "init", "attic-dev") == 0
    assert run(outdir, "plan", "attic-dev") == 0  # same backend: no second init
    document = outdir / "stacks" / "attic-dev" / "cdk.tf.json"
    synthesized = json.loads(document.read_text())
    http = synthesized["terraform"]["backend"]["http"]
    http["address"] = http["address"].replace("/state/", "/state/moved-")
    document.write_text(json.dumps(synthesized))
    assert run(outdir, "plan", "attic-dev") == 0
    inits = [c["args"] for c in calls(fake) if c["args"][0] == "init"]
    assert inits == [["init", "-input=false"], ["init", "-input=false", "-reconfigure"]]


def test_fake_tofu_reconfigures_a_folder_initialized_outside_the_driver(
    outdir: Path, fake: Path
) -> None:
    dot = outdir / "stacks" / "attic-dev" / ".terraform"
    dot.mkdir()
    (dot / "terraform.tfstate").write_text("{}")
    assert run(outdir, "init", "attic-dev") == 0
    assert calls(fake)[0]["args"] == ["init", "-input=false", "-reconfigure"]


def test_fake_tofu_lock_conflict_explains_both_ways_out(
    outdir: Path, fake: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_TOFU_FAIL", "plan:attic-dev:lock")
    assert run(outdir, "plan", "attic-dev") == 1
    err = capsys.readouterr().err
    assert "Error acquiring the state lock" in err  # OpenTofu's own output passes through
    assert f"lock {LOCK_ID}, held by runner@job-4242" in err
    assert "-lock-timeout=10m" in err
    assert f"attic-iac tofu unlock attic-dev {LOCK_ID}" in err


def test_fake_tofu_other_failures_get_no_lock_advice(
    outdir: Path, fake: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_TOFU_FAIL", "plan:attic-dev")
    assert run(outdir, "plan", "attic-dev") == 1
    err = capsys.readouterr().err
    assert "something broke" in err
    assert "unlock" not in err
    assert not (outdir / "stacks" / "attic-dev" / "tfplan.meta.json").exists()


def test_fake_tofu_unlock_force_unlocks_the_given_id(outdir: Path, fake: Path) -> None:
    assert run(outdir, "unlock", "attic-dev", LOCK_ID) == 0
    assert [c["args"] for c in calls(fake)][-1] == ["force-unlock", "-force", LOCK_ID]


def test_fake_tofu_passthrough_args_reach_tofu(outdir: Path, fake: Path) -> None:
    assert run(outdir, "plan", "attic-dev", "--", "-lock=false", "-lock-timeout=5m") == 0
    assert run(outdir, "apply", "attic-dev", "--", "-lock-timeout=5m") == 0
    by_verb = {c["args"][0]: c["args"] for c in calls(fake)}
    assert by_verb["plan"] == [
        "plan",
        "-input=false",
        "-out=tfplan",
        "-lock=false",
        "-lock-timeout=5m",
    ]
    # the saved plan stays the last argument
    assert by_verb["apply"] == ["apply", "-input=false", "-lock-timeout=5m", "tfplan"]


def test_fake_tofu_agent_kubeconfig_reaches_the_providers(
    outdir: Path, fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", "/builds/agent-kubeconfig")
    assert run(outdir, "init", "attic-dev") == 0
    monkeypatch.setenv("KUBE_CONFIG_PATH", "/home/me/.kube/config")  # the user's choice wins
    assert run(outdir, "init", "attic-dev") == 0
    assert [c["kube"] for c in calls(fake)] == ["/builds/agent-kubeconfig", None]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan", "attic-nowhere"], "allowed: "),
        (["plan"], "name a stack"),
        (["plan", "--all"], "--all needs --env"),
        (["plan", "--all", "--env", "qa"], "allowed: dev, prod, staging"),
        (["plan", "attic-dev", "--all", "--env", "dev"], "not both"),
        (["plan", "attic-dev", "--env", "dev"], "--env only goes with --all"),
        (["unlock", "attic-dev"], "needs the lock ID"),
        (["unlock", "--all", "--env", "dev"], "not --all"),
        (["plan", "attic-dev", "extra"], "go after --"),
        (["apply", "dashboard-dev", "--except", "dashboard"], "--except only goes with --all"),
        (["apply", "--all", "--env", "dev", "--except", "dashbord"], "unknown kind 'dashbord'"),
        (
            ["plan", "--all", "--env", "dev", *(f"--except={kind.name}" for kind in STACK_KINDS)],
            "leaves no stack of 'dev'",
        ),
    ],
)
def test_fake_tofu_bad_input_exits_2_without_calling_tofu(
    outdir: Path, fake: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(outdir, *argv) == tofu.EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    assert calls(fake) == []


def test_missing_synth_output_says_to_synthesize(
    tmp_path: Path, fake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path / "nothing", "plan", "attic-dev") == tofu.EXIT_BAD_INPUT
    assert "make synth" in capsys.readouterr().err


def test_missing_tofu_binary_is_a_clear_error(
    outdir: Path, fake: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOFU_BIN", str(outdir / "no-such-tofu"))
    assert run(outdir, "init", "attic-dev") == tofu.EXIT_BAD_INPUT
    assert "TOFU_BIN" in capsys.readouterr().err


def test_fake_tofu_through_attic_iac_cli(outdir: Path, fake: Path) -> None:
    assert cli_main(["tofu", "init", "attic-dev", "--outdir", str(outdir)]) == 0
    assert calls(fake)[0]["args"] == ["init", "-input=false"]


def test_driver_runs_on_the_standard_library_alone(fake: Path) -> None:
    """CI's OpenTofu image has python3 and nothing else: -S drops site-packages."""
    result = subprocess.run(
        [sys.executable, "-S", "-m", "iac_tools.tofu", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "apply" in result.stdout


def test_plan_report_counts_gitlab_terraform_actions() -> None:
    plan = {
        "resource_changes": [
            {"change": {"actions": ["create"]}},
            {"change": {"actions": ["create", "delete"]}},
            {"change": {"actions": ["update"]}},
            {"change": {"actions": ["delete"]}},
            {"change": {"actions": ["no-op"]}},
        ]
    }
    assert tofu.plan_report(plan) == {"create": 2, "update": 1, "delete": 2}
    assert tofu.plan_report({}) == {"create": 0, "update": 0, "delete": 0}
    with pytest.raises(ValueError, match="not a list"):
        tofu.plan_report({"resource_changes": {}})
