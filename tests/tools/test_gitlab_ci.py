"""The repository's own ``.gitlab-ci.yml``: GitLab's schema, which jobs each kind of pipeline
creates (its ``rules`` evaluated here), and that its plan and apply commands drive our tofu
driver correctly. The dashboard's place in it (a leaf: its image, its own plan, apply and
rollback jobs) is in test_gitlab_ci_dashboard.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from config_model.loader import LoadedConfig
from constructs_lib import versions
from iac_tools import tofu
from tests.support.fake_tofu import calls
from tests.support.plan_inputs import tf_var_environment
from tests.support.repo_pipeline import (
    DASHBOARD,
    DEFAULT_BRANCH,
    ENVIRONMENTS,
    FLEET,
    MERGE_REQUEST,
    RELEASE_TAG,
    applied,
    environment_of,
    pipeline,
    raw,
    resolved_jobs,
    run_plan_job,
    shell,
    tofu_environment,
)
from tests.support.synth_output import SynthOutput


def test_pipeline_validates_against_gitlab_ci_schema(refdata: Path) -> None:
    import jsonschema

    schema = json.loads((refdata / "gitlab" / "ci.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(raw()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_stages_and_security_templates() -> None:
    document = raw()
    assert document["stages"] == ["validate", "plan", "apply", "verify", "release"]
    templates = {item["template"] for item in document["include"] if "template" in item}
    assert templates == {"Jobs/SAST.gitlab-ci.yml", "Jobs/Secret-Detection.gitlab-ci.yml"}
    locals_ = [item["local"] for item in document["include"] if "local" in item]
    assert locals_ == ["templates/docker-build/template.yml"]
    # their jobs default to a 'test' stage this pipeline lacks
    assert document["sast"]["stage"] == "validate"
    assert document["secret_detection"]["stage"] == "validate"
    for name, job in resolved_jobs().items():
        assert job["stage"] in document["stages"], name


def test_images_are_the_pinned_versions() -> None:
    document = raw()
    assert document[".python"]["image"] == versions.CI_NODE_IMAGE.ref
    assert document[".tofu"]["image"]["name"] == versions.TOFU_IMAGE.ref
    for name, job in resolved_jobs().items():
        image = job.get("image")
        if image is None:
            continue
        reference = image["name"] if isinstance(image, dict) else image
        assert "@sha256:" in reference, name


def test_merge_requests_only_plan_dev_without_the_lock() -> None:
    created = pipeline(MERGE_REQUEST)
    assert created is not None
    assert set(created) == {"test", "synth", "plan:dev", "plan-dashboard:dev"}
    for name in ("plan:dev", "plan-dashboard:dev"):
        assert created[name]["variables"]["PLAN_ARGS"] == "-lock=false"
        assert "$PLAN_ARGS" in " ".join(created[name]["job"]["script"])


def test_a_branch_with_an_open_merge_request_runs_only_the_mr_pipeline() -> None:
    assert (
        pipeline(
            {**DEFAULT_BRANCH, "CI_COMMIT_BRANCH": "feature", "CI_OPEN_MERGE_REQUESTS": "g/p!7"}
        )
        is None
    )
    assert pipeline({**DEFAULT_BRANCH, "CI_COMMIT_BRANCH": "feature"}) is None


def test_default_branch_applies_dev_and_staging_and_offers_prod() -> None:
    created = pipeline(DEFAULT_BRANCH)
    assert created is not None
    for env in ("dev", "staging"):
        assert created[f"plan:{env}"]["when"] == "on_success"
        assert created[f"apply:{env}"]["when"] == "on_success"
        assert created[f"health:{env}"]["when"] == "on_success"
    assert "PLAN_ARGS" not in created["plan:dev"]["variables"]  # protected refs take the lock
    assert created["plan:prod"]["when"] == "on_success"
    assert created["apply:prod"]["when"] == "manual"
    assert created["apply:prod"]["allow_failure"] is True  # does not block the pipeline
    for env in ("dev", "staging"):
        assert created[f"plan-dashboard:{env}"]["when"] == "on_success"
        assert created[f"apply-dashboard:{env}"]["when"] == "on_success"
    assert created["plan-dashboard:prod"]["when"] == "on_success"
    assert created["apply-dashboard:prod"]["when"] == "manual"
    assert created["apply-dashboard:prod"]["allow_failure"] is True
    for env in ENVIRONMENTS:
        assert created[f"rollback:{env}"]["when"] == "manual"
        assert created[f"rollback-dashboard:{env}"]["when"] == "manual"


def test_semver_tags_apply_prod_automatically() -> None:
    created = pipeline(RELEASE_TAG)
    assert created is not None
    assert created["apply:prod"]["when"] == "on_success"
    assert created["apply-dashboard:prod"]["when"] == "on_success"
    assert {
        "plan:prod",
        "apply:prod",
        "health:prod",
        "plan-dashboard:prod",
        "apply-dashboard:prod",
    } <= set(created)
    assert not {name for name in created if name.endswith((":dev", ":staging"))}
    assert pipeline({**RELEASE_TAG, "CI_COMMIT_TAG": "v1.4"}) is None
    assert pipeline({**RELEASE_TAG, "CI_COMMIT_TAG": "nightly"}) is None


def test_applies_use_the_saved_plans_in_one_resource_group_per_environment() -> None:
    jobs = resolved_jobs()
    applies = {name: job for name, job in jobs.items() if name.startswith("apply:")}
    groups = set()
    for name, job in applies.items():
        env = environment_of(job)
        assert name == f"apply:{env}"
        script = " ".join(job["script"])
        # the fleet, in order; the dashboard is applied by apply-dashboard:<env>
        assert (
            'python3 -m iac_tools.tofu apply --all --env "$ATTIC_IAC_ENV" --except dashboard'
            in script
        )
        assert "-auto-approve" not in script
        assert "tofu apply" not in script.replace("iac_tools.tofu apply", "")
        assert set(job["needs"]) == {"synth", f"plan:{env}"}
        assert job["environment"]["name"] == env
        assert job["resource_group"] == f"attic-iac-{env}"
        assert jobs[f"rollback:{env}"]["resource_group"] == job["resource_group"]
        assert job["interruptible"] is False
        # a freeze (the driver's exit 3) is a warning, any other failure is red
        assert job["allow_failure"] == {"exit_codes": [tofu.EXIT_FROZEN]}
        groups.add(job["resource_group"])
    assert len(groups) == len(applies)


def test_plan_artifacts_are_what_the_driver_writes() -> None:
    jobs = resolved_jobs()
    plans = {name: job for name, job in jobs.items() if name.startswith(("plan:", "plan-"))}
    assert set(plans) == {
        f"{kind}:{env}" for kind in ("plan", "plan-dashboard") for env in ENVIRONMENTS
    }
    for name, job in plans.items():
        if name.startswith("plan:"):
            # the fleet's stacks; its plans need synth alone, never the dashboard's image
            assert job["parallel"]["matrix"] == [{"STACK": FLEET}]
            assert job["needs"] == ["synth"]
        else:
            # the dashboard's plan gets the image digest from dashboard-image's dotenv report
            assert "parallel" not in job
            assert job["variables"]["STACK"] == DASHBOARD
            assert job["needs"] == ["synth", "dashboard-image"]
        assert 'tofu plan "$STACK-$ATTIC_IAC_ENV"' in " ".join(job["script"])
        folder = "cdktf.out/stacks/$STACK-$ATTIC_IAC_ENV/"
        paths = job["artifacts"]["paths"]
        assert paths == [
            folder + tofu.PLAN_FILE,
            folder + tofu.PLAN_META,
            folder + tofu.PLAN_TEXT,
            folder + ".terraform.lock.hcl",
        ], name
        assert job["artifacts"]["reports"]["terraform"] == folder + tofu.PLAN_REPORT
        # A saved plan holds secrets: nobody downloads it; the apply job gets it via needs.
        assert job["artifacts"]["access"] == "none"
        assert job["artifacts"]["expire_in"] == "12 hours"


# Job kinds with one job per environment, and the action with which each names it.
KINDS_PER_ENVIRONMENT = {
    "plan": "prepare",
    "apply": None,
    "rollback": None,
    "health": "verify",
    "plan-dashboard": "prepare",
    "apply-dashboard": None,
    "rollback-dashboard": None,
}


def test_every_config_environment_has_plan_apply_rollback_and_health(
    example_config: LoadedConfig,
) -> None:
    by_kind: dict[str, set[str]] = {}
    for name, job in resolved_jobs().items():
        kind, _, suffix = name.partition(":")
        if kind in KINDS_PER_ENVIRONMENT:
            assert environment_of(job) == suffix, name
            by_kind.setdefault(kind, set()).add(suffix)
    assert set(by_kind) == set(KINDS_PER_ENVIRONMENT)
    for envs in by_kind.values():
        assert envs == set(example_config.environments)


def test_environment_scoped_variables_reach_every_job_that_runs_tofu_or_health() -> None:
    """GitLab gives an environment-scoped variable only to jobs naming that environment."""
    for name, job in resolved_jobs().items():
        kind = name.partition(":")[0]
        if kind in KINDS_PER_ENVIRONMENT:
            assert job["environment"]["name"] == environment_of(job), name
            assert job["environment"].get("action") == KINDS_PER_ENVIRONMENT[kind], name


def test_health_runs_after_its_apply() -> None:
    jobs = resolved_jobs()
    for name, job in jobs.items():
        if name.startswith("health:"):
            env = environment_of(job)
            assert job["needs"] == [f"apply:{env}"]
            assert 'attic-iac health --env "$ATTIC_IAC_ENV"' in " ".join(job["script"])


def test_fake_tofu_the_pipelines_own_commands_plan_then_apply_dev(
    example_synth: SynthOutput, tmp_path: Path
) -> None:
    """Runs the plan and apply jobs' script lines as GitLab would (artifacts passed by copying
    only the declared paths), with a fake tofu: checks our command lines, not OpenTofu. The
    fleet's jobs run without the dashboard's image; the dashboard's with it, after them."""
    jobs = resolved_jobs()
    base, log = tofu_environment(example_synth, tmp_path)
    # the fleet: no dashboard-image report, no dashboard plan in the apply job's workspace
    applier = tmp_path / "apply-job"
    shutil.copytree(example_synth.root, applier / "cdktf.out")
    for stack in FLEET:
        planner = tmp_path / f"plan-{stack}"
        run_plan_job(
            jobs["plan:dev"],
            stack,
            env=base,
            source=example_synth.root,
            planner=planner,
            applier=applier,
        )
    apply_job = jobs["apply:dev"]
    done = shell(apply_job["script"], base, applier)
    assert done.returncode == 0, done.stderr
    assert applied(log) == [f"{stack}-dev" for stack in FLEET]
    # then the dashboard: its plan gets the digest from dashboard-image's dotenv report
    fleet_calls = len(calls(log))
    dashboard_applier = tmp_path / "apply-dashboard-job"
    shutil.copytree(example_synth.root, dashboard_applier / "cdktf.out")
    image = tf_var_environment([example_synth.stack("dashboard-dev")])["TF_VAR_dashboard_image"]
    with_image = {**base, "TF_VAR_dashboard_image": image}
    plan_dashboard = jobs["plan-dashboard:dev"]
    run_plan_job(
        plan_dashboard,
        DASHBOARD,
        env=with_image,
        source=example_synth.root,
        planner=tmp_path / "plan-dashboard",
        applier=dashboard_applier,
    )
    apply_dashboard = jobs["apply-dashboard:dev"]
    done = shell(apply_dashboard["script"], base, dashboard_applier)
    assert done.returncode == 0, done.stderr
    assert applied(log, fleet_calls) == ["dashboard-dev"]
    applies = [c for c in calls(log) if c["args"][0] == "apply"]
    assert all(
        c["args"] == ["apply", "-input=false", "-lock-timeout=5m", "tfplan"] for c in applies
    )
    assert {c["password"] for c in calls(log)} == {"job-token-value"}
    # the same applies during a freeze: exit 3, which the jobs allow as a warning
    for job, workspace in ((apply_job, applier), (apply_dashboard, dashboard_applier)):
        frozen = shell(job["script"], {**base, "DEPLOYMENT_FREEZE": "true"}, workspace)
        assert frozen.returncode in job["allow_failure"]["exit_codes"]
