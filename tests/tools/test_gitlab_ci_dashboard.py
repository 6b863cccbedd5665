"""The dashboard in the repository's ``.gitlab-ci.yml``: a leaf. Its image is built on the
fleet's own dind runner, so nothing of platform, runners or attic waits for ``dashboard-image``;
its plan, apply (after its environment's apply) and rollback are jobs of their own, and their
commands are run here against a fake ``tofu``."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from iac_tools import tofu
from tests.support.component_sandbox import Sandbox
from tests.support.fake_tofu import calls
from tests.support.plan_inputs import tf_var_environment, validation_accepts
from tests.support.repo_pipeline import (
    CONTEXTS,
    ENVIRONMENTS,
    FLEET,
    applied,
    dashboard_image_job,
    every_job,
    need_names,
    pipeline,
    resolved_jobs,
    shell,
    tofu_environment,
    waits_for,
)
from tests.support.shell_stubs import stub
from tests.support.synth_output import SynthOutput


def test_nothing_of_the_fleet_waits_for_the_dashboard_image() -> None:
    """A first deploy (no dind runner yet), a dind runner that is down or a failed image build
    must never stop a plan, apply, health check or rollback of platform, runners or attic."""
    jobs = every_job()
    for env in ENVIRONMENTS:
        for name in (f"plan:{env}", f"apply:{env}", f"health:{env}", f"rollback:{env}"):
            upstream = waits_for(name, jobs)
            assert "dashboard-image" not in upstream, name
            assert not {other for other in upstream if "dashboard" in other}, name
    # the check sees through the chain: the dashboard's jobs do wait for the image
    for env in ENVIRONMENTS:
        assert "dashboard-image" in waits_for(f"plan-dashboard:{env}", jobs)
        assert "dashboard-image" in waits_for(f"apply-dashboard:{env}", jobs)


def test_the_dashboard_applies_after_its_environments_apply_and_like_it() -> None:
    jobs = every_job()
    for env in ENVIRONMENTS:
        main, dashboard = jobs[f"apply:{env}"], jobs[f"apply-dashboard:{env}"]
        # synth's artifact holds the manifest and cdk.tf.json the saved plan is checked against
        assert set(dashboard["needs"]) == {"synth", f"apply:{env}", f"plan-dashboard:{env}"}
        assert f"apply:{env}" in waits_for(f"apply-dashboard:{env}", jobs)
        # and no job waits for it: the dashboard is a leaf
        assert not any(
            f"apply-dashboard:{env}" in waits_for(name, jobs)
            for name in jobs
            if name != f"apply-dashboard:{env}"
        )
        for key in ("stage", "environment", "resource_group", "rules", "interruptible"):
            assert dashboard[key] == main[key], (env, key)
        assert dashboard["allow_failure"] == {"exit_codes": [tofu.EXIT_FROZEN]}
        script = " ".join(dashboard["script"])
        assert 'python3 -m iac_tools.tofu apply "dashboard-$ATTIC_IAC_ENV"' in script
        assert "--all" not in script
        # its plan is planned like the fleet's, in the same pipelines
        plan, fleet_plan = jobs[f"plan-dashboard:{env}"], jobs[f"plan:{env}"]
        for key in ("stage", "environment", "rules"):
            assert plan[key] == fleet_plan[key], (env, key)


def test_every_need_is_a_job_of_the_same_pipeline() -> None:
    """GitLab refuses a pipeline whose job needs a job it did not create."""
    assert "rules" not in dashboard_image_job()  # created in every pipeline
    for context in CONTEXTS:
        created = pipeline(context)
        assert created is not None
        names = {*created, "dashboard-image", "sast", "secret_detection"}
        for name, entry in created.items():
            for need in need_names(entry["job"]) if "needs" in entry["job"] else []:
                assert need in names, (context, name, need)


def test_the_rollbacks_leave_the_dashboard_to_its_own(example_synth: SynthOutput) -> None:
    jobs = resolved_jobs()
    for env in ENVIRONMENTS:
        fleet, dashboard = jobs[f"rollback:{env}"], jobs[f"rollback-dashboard:{env}"]
        fleet_script, dashboard_script = "\n".join(fleet["script"]), "\n".join(dashboard["script"])
        assert "dashboard-image" not in fleet_script
        assert "ROLLBACK_DASHBOARD_IMAGE" not in fleet_script
        for verb in ("plan", "apply"):
            assert (
                f'tofu {verb} --all --env "$ATTIC_IAC_ENV" --except dashboard '
                "--outdir rollback/cdktf.out" in fleet_script
            )
            assert (
                f'tofu {verb} "dashboard-$ATTIC_IAC_ENV" --outdir rollback/cdktf.out'
                in dashboard_script
            )
        assert "--all" not in dashboard_script
        # the same synth download, the same rules, resource group and environment
        assert fleet["script"][1] == dashboard["script"][1]
        for key in ("stage", "environment", "resource_group", "rules", "needs", "interruptible"):
            assert dashboard[key] == fleet[key], (env, key)
        assert fleet["resource_group"] == jobs[f"apply:{env}"]["resource_group"]


CURL_STUB = """#!/bin/sh
out= url=
while [ $# -gt 0 ]; do
    case $1 in
        --output | --header) [ "$1" = --output ] && out=$2; shift 2 ;;
        -*) shift ;;
        *) url=$1; shift ;;
    esac
done
printf '%s\\n' "$url" >> "$RECORD/curl.calls"
case $url in
    *job=dashboard-image) cp "$RECORD/dashboard-image.zip" "$out" ;;
    *) cp "$RECORD/synth.zip" "$out" ;;
esac
"""


def _zip(target: Path, files: dict[str, Path]) -> None:
    with zipfile.ZipFile(target, "w") as archive:
        for name, path in files.items():
            archive.write(path, name)


def test_fake_tofu_the_rollback_jobs_re_apply_the_fleet_and_the_dashboard(
    example_synth: SynthOutput, tmp_path: Path
) -> None:
    """Both rollback jobs' own script lines, with the artifacts API stubbed: the fleet's needs
    no dashboard image at all; the dashboard's takes the one that pipeline built."""
    jobs = resolved_jobs()
    base, log = tofu_environment(example_synth, tmp_path)
    record = tmp_path / "record"
    record.mkdir()
    root = example_synth.root
    _zip(
        record / "synth.zip",
        {f"cdktf.out/{path.relative_to(root)}": path for path in root.rglob("*") if path.is_file()},
    )
    image = tf_var_environment([example_synth.stack("dashboard-dev")])["TF_VAR_dashboard_image"]
    (record / "docker-build.env").write_text(f"TF_VAR_dashboard_image={image}\n")
    _zip(record / "dashboard-image.zip", {"docker-build.env": record / "docker-build.env"})
    stub(tmp_path / "bin" / "curl", CURL_STUB)
    stub(tmp_path / "bin" / "apk", "#!/bin/sh\nexit 0\n")
    env = {
        **base,
        "RECORD": str(record),
        "CI_API_V4_URL": "https://gitlab.example.com/api/v4",
        "CI_PROJECT_ID": "42",
        "CI_COMMIT_REF_NAME": "main",
        "ROLLBACK_SYNTH_JOB_ID": "",
        "ROLLBACK_DASHBOARD_IMAGE": "",
    }
    fleet = tmp_path / "rollback-job"
    fleet.mkdir()
    done = shell(jobs["rollback:dev"]["script"], env, fleet)
    assert done.returncode == 0, done.stderr
    assert "dashboard-image" not in (record / "curl.calls").read_text()
    assert applied(log) == [f"{stack}-dev" for stack in FLEET]
    assert {Path(c["cwd"]).parent.parent for c in calls(log)} == {fleet / "rollback" / "cdktf.out"}
    before = len(calls(log))
    dashboard = tmp_path / "rollback-dashboard-job"
    dashboard.mkdir()
    done = shell(jobs["rollback-dashboard:dev"]["script"], env, dashboard)
    assert done.returncode == 0, done.stderr
    assert (record / "curl.calls").read_text().count("job=dashboard-image") == 1
    assert {Path(c["cwd"]).name for c in calls(log)[before:]} == {"dashboard-dev"}
    assert applied(log, before) == ["dashboard-dev"]


def test_the_dashboard_image_is_built_in_every_pipeline_that_plans_and_reported_by_digest():
    job = dashboard_image_job()
    assert job["stage"] == "validate"
    assert job["variables"]["IMAGE_NAME"] == "$CI_REGISTRY_IMAGE/dashboard"
    assert job["variables"]["IMAGE_DOCKERFILE"] == "dashboard/Dockerfile"
    assert job["variables"]["IMAGE_CONTEXT"] == "."
    assert job["variables"]["IMAGE_DIGEST_VARIABLE"] == "TF_VAR_dashboard_image"
    assert job["artifacts"]["reports"]["dotenv"] == "docker-build.env"
    assert "rules" not in job  # every pipeline the workflow allows: MR, default branch, tag
    assert "$[[ inputs.latest ]]" not in str(job["script"])  # interpolated: latest is off
    assert 'if [ "false" = true ]' in "\n".join(job["script"])
    for context in CONTEXTS:
        created = pipeline(context)
        assert created is not None
        plans = [name for name in created if name.startswith("plan-dashboard:")]
        assert plans
        for name in plans:
            assert "dashboard-image" in created[name]["job"]["needs"], name


def test_the_reported_image_is_one_the_dashboard_stack_accepts(
    sandbox: Sandbox, example_synth: SynthOutput
) -> None:
    """The job's own script, against a docker stub, writes TF_VAR_dashboard_image as a digest
    reference that the variable's validation lets through."""
    digest = "sha256:" + "ab" * 32
    stub(
        sandbox.bin / "docker",
        "#!/bin/sh\n"
        'case $1 in login) cat >/dev/null ;; image) echo "${IMAGE_NAME}@' + digest + '" ;; esac\n',
    )
    job = dashboard_image_job()
    step = sandbox.run(job, ("script",), env={"CI_COMMIT_BRANCH": "main"})
    assert step.code == 0, step.output
    report = (sandbox.work / "docker-build.env").read_text()
    name, _, value = report.strip().partition("=")
    assert name == "TF_VAR_dashboard_image"
    assert value == f"registry.example.com/group/app/dashboard@{digest}"
    spec = example_synth.stack("dashboard-dev")["variable"]["dashboard_image"]
    assert validation_accepts(spec, value)


def test_a_rollback_to_a_chosen_synth_needs_that_pipelines_dashboard_image(tmp_path: Path) -> None:
    script = resolved_jobs()["rollback-dashboard:dev"]["script"]
    (step,) = [line for line in script if "ROLLBACK_DASHBOARD_IMAGE" in line]
    base = {"PATH": os.environ["PATH"], "ROLLBACK_SYNTH_JOB_ID": "1234"}
    refused = shell([step], {**base, "ROLLBACK_DASHBOARD_IMAGE": ""}, tmp_path)
    assert refused.returncode == 2
    assert "ROLLBACK_SYNTH_JOB_ID needs ROLLBACK_DASHBOARD_IMAGE" in refused.stderr
    image = "registry.example.com/acme/dashboard@sha256:" + "0" * 64
    given = shell(
        [step, 'echo "$TF_VAR_dashboard_image"'],
        {**base, "ROLLBACK_DASHBOARD_IMAGE": image},
        tmp_path,
    )
    assert given.returncode == 0, given.stderr
    assert given.stdout.strip() == image
