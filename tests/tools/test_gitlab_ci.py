"""The repository's own ``.gitlab-ci.yml``: GitLab's schema, which jobs each kind of pipeline
creates (its ``rules`` evaluated here), and that its commands drive our tofu driver correctly."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from config_model.loader import LoadedConfig
from constructs_lib import versions
from iac_tools import tofu
from stacks.stack_kinds import STACK_KINDS
from tests.conftest import REPO
from tests.support.component_sandbox import Sandbox
from tests.support.component_templates import jobs_of
from tests.support.fake_tofu import calls, install
from tests.support.gitlab_ci import resolve_extends
from tests.support.plan_inputs import tf_var_environment, validation_accepts
from tests.support.shell_stubs import stub
from tests.support.synth_output import SynthOutput

PIPELINE = REPO / ".gitlab-ci.yml"
SEMVER_TAG = r"^v\d+\.\d+\.\d+$"
# Keys that are not jobs at the top level of a pipeline.
GLOBAL_KEYS = {"workflow", "stages", "include", "variables", "default", "image", "services"}

MERGE_REQUEST = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": "main"}
DEFAULT_BRANCH = {
    "CI_PIPELINE_SOURCE": "push",
    "CI_COMMIT_BRANCH": "main",
    "CI_DEFAULT_BRANCH": "main",
}
RELEASE_TAG = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "v1.4.0", "CI_DEFAULT_BRANCH": "main"}


def raw() -> dict[str, Any]:
    loaded = yaml.safe_load(PIPELINE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def resolved_jobs() -> dict[str, dict[str, Any]]:
    """Every visible job of our file with ``extends`` applied (included templates excluded)."""
    document = raw()
    definitions = {k: v for k, v in document.items() if k not in GLOBAL_KEYS}
    return {
        name: resolve_extends(definitions, name) for name in definitions if not name.startswith(".")
    }


_CLAUSE = re.compile(r"^\$(\w+)(?:\s*(==|!=|=~)\s*(.+))?$")


def evaluate(expression: str, variables: dict[str, str]) -> bool:
    """The subset of GitLab's ``rules:if`` our file uses: ``&&`` of comparisons and presence."""
    assert "||" not in expression
    assert "(" not in expression
    for clause in expression.split("&&"):
        match = _CLAUSE.match(clause.strip())
        assert match, f"unsupported clause {clause!r}"
        name, operator, operand = match.groups()
        value = variables.get(name)
        if operator is None:
            ok = bool(value)
        elif operator == "=~":
            assert operand.startswith("/")
            assert operand.endswith("/")
            ok = value is not None and re.search(operand[1:-1], value) is not None
        else:
            other = variables.get(operand[1:]) if operand.startswith("$") else operand.strip('"')
            ok = (value == other) == (operator == "==")
        if not ok:
            return False
    return True


def first_rule(rules: list[dict[str, Any]], variables: dict[str, str]) -> dict[str, Any] | None:
    for rule in rules:
        if "if" not in rule or evaluate(rule["if"], variables):
            return rule
    return None


def pipeline(context: dict[str, str]) -> dict[str, dict[str, Any]] | None:
    """The jobs GitLab creates for ``context`` (None: no pipeline), each with its resolved
    ``when``, ``allow_failure`` and variables."""
    workflow = first_rule(raw()["workflow"]["rules"], context)
    if workflow is None or workflow.get("when") == "never":
        return None
    created: dict[str, dict[str, Any]] = {}
    for name, job in resolved_jobs().items():
        if name in ("sast", "secret_detection"):
            continue  # their rules live in GitLab's templates
        rule: dict[str, Any] | None = {}
        if "rules" in job:
            rule = first_rule(job["rules"], context)
        if rule is None or rule.get("when") == "never":
            continue
        created[name] = {
            "when": rule.get("when", "on_success"),
            "allow_failure": rule.get("allow_failure", job.get("allow_failure", False)),
            "variables": {**job.get("variables", {}), **rule.get("variables", {})},
            "job": job,
        }
    return created


def environment_of(job: dict[str, Any]) -> str:
    return str(job["variables"]["ATTIC_IAC_ENV"])


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
    assert set(created) == {"test", "synth", "plan:dev"}
    assert created["plan:dev"]["variables"]["PLAN_ARGS"] == "-lock=false"
    assert "$PLAN_ARGS" in " ".join(created["plan:dev"]["job"]["script"])


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
    for env in ("dev", "staging", "prod"):
        assert created[f"rollback:{env}"]["when"] == "manual"


def test_semver_tags_apply_prod_automatically() -> None:
    created = pipeline(RELEASE_TAG)
    assert created is not None
    assert created["apply:prod"]["when"] == "on_success"
    assert {"plan:prod", "apply:prod", "health:prod"} <= set(created)
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
        assert 'python3 -m iac_tools.tofu apply --all --env "$ATTIC_IAC_ENV"' in script
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
    plans = {name: job for name, job in jobs.items() if name.startswith("plan:")}
    assert plans
    for name, job in plans.items():
        assert job["parallel"]["matrix"] == [{"STACK": [kind.name for kind in STACK_KINDS]}]
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
        # The dashboard's plan gets the image digest from dashboard-image's dotenv report.
        assert job["needs"] == ["synth", "dashboard-image"]


def test_every_config_environment_has_plan_apply_rollback_and_health(
    example_config: LoadedConfig,
) -> None:
    by_kind: dict[str, set[str]] = {}
    for name, job in resolved_jobs().items():
        kind, _, suffix = name.partition(":")
        if kind in ("plan", "apply", "rollback", "health"):
            assert environment_of(job) == suffix, name
            by_kind.setdefault(kind, set()).add(suffix)
    assert set(by_kind) == {"plan", "apply", "rollback", "health"}
    for envs in by_kind.values():
        assert envs == set(example_config.environments)


def test_environment_scoped_variables_reach_every_job_that_runs_tofu_or_health() -> None:
    """GitLab gives an environment-scoped variable only to jobs naming that environment."""
    actions = {"plan": "prepare", "apply": None, "rollback": None, "health": "verify"}
    for name, job in resolved_jobs().items():
        kind = name.partition(":")[0]
        if kind in actions:
            assert job["environment"]["name"] == environment_of(job), name
            assert job["environment"].get("action") == actions[kind], name


def test_health_runs_after_its_apply() -> None:
    jobs = resolved_jobs()
    for name, job in jobs.items():
        if name.startswith("health:"):
            env = environment_of(job)
            assert job["needs"] == [f"apply:{env}"]
            assert 'attic-iac health --env "$ATTIC_IAC_ENV"' in " ".join(job["script"])


def _shell(script: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-ec", "\n".join(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_fake_tofu_the_pipelines_own_commands_plan_then_apply_dev(
    example_synth: SynthOutput, tmp_path: Path
) -> None:
    """Runs the plan and apply jobs' script lines as GitLab would (artifacts passed by copying
    only the declared paths), with a fake tofu: checks our command lines, not OpenTofu."""
    jobs = resolved_jobs()
    plan_job, apply_job = jobs["plan:dev"], jobs["apply:dev"]
    log = tmp_path / "calls.jsonl"
    log.touch()
    install(tmp_path / "bin")
    base = {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "FAKE_TOFU_LOG": str(log),
        "CI_JOB_TOKEN": "job-token-value",
        "PYTHONPATH": str(REPO),
        "ATTIC_IAC_ENV": "dev",
        "PLAN_ARGS": "",
        "HOME": str(tmp_path),
        # dashboard-image's dotenv report and the CI/CD variables of the environment
        **tf_var_environment([example_synth.stack("dashboard-dev")]),
    }
    # the apply job's workspace: the synth artifact plus each plan job's declared artifacts
    applier = tmp_path / "apply-job"
    shutil.copytree(example_synth.root, applier / "cdktf.out")
    for stack in [kind.name for kind in STACK_KINDS]:
        planner = tmp_path / f"plan-{stack}"
        shutil.copytree(example_synth.root, planner / "cdktf.out")
        # the fake writes no lock file; OpenTofu's init does
        (planner / "cdktf.out" / "stacks" / f"{stack}-dev" / ".terraform.lock.hcl").write_text("")
        env = {**base, "STACK": stack}
        done = _shell(plan_job["script"], env, planner)
        assert done.returncode == 0, done.stderr
        for pattern in [
            *plan_job["artifacts"]["paths"],
            plan_job["artifacts"]["reports"]["terraform"],
        ]:
            path = pattern.replace("$STACK", stack).replace("$ATTIC_IAC_ENV", "dev")
            assert (planner / path).is_file(), path
            if not path.endswith(tofu.PLAN_REPORT):
                (applier / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(planner / path, applier / path)
    done = _shell(apply_job["script"], base, applier)
    assert done.returncode == 0, done.stderr
    applied = [c for c in calls(log) if c["args"][0] == "apply"]
    assert [Path(c["cwd"]).name for c in applied] == [
        "platform-dev",
        "runners-dev",
        "attic-dev",
        "dashboard-dev",
    ]
    assert all(
        c["args"] == ["apply", "-input=false", "-lock-timeout=5m", "tfplan"] for c in applied
    )
    assert {c["password"] for c in calls(log)} == {"job-token-value"}
    # the same apply during a freeze: exit 3, which the job allows as a warning
    frozen = _shell(apply_job["script"], {**base, "DEPLOYMENT_FREEZE": "true"}, applier)
    assert frozen.returncode in apply_job["allow_failure"]["exit_codes"]


# --- the dashboard's image -----------------------------------------------------------------


def _dashboard_image_job() -> dict[str, Any]:
    """The job the local include of the docker-build component creates, as GitLab reads it."""
    (include,) = [item for item in raw()["include"] if "local" in item]
    assert include["local"] == "templates/docker-build/template.yml"
    jobs = jobs_of("docker-build", **include["inputs"])
    return resolve_extends(jobs, "dashboard-image")


def test_the_dashboard_image_is_built_in_every_pipeline_that_plans_and_reported_by_digest():
    job = _dashboard_image_job()
    assert job["stage"] == "validate"
    assert job["variables"]["IMAGE_NAME"] == "$CI_REGISTRY_IMAGE/dashboard"
    assert job["variables"]["IMAGE_DOCKERFILE"] == "dashboard/Dockerfile"
    assert job["variables"]["IMAGE_CONTEXT"] == "."
    assert job["variables"]["IMAGE_DIGEST_VARIABLE"] == "TF_VAR_dashboard_image"
    assert job["artifacts"]["reports"]["dotenv"] == "docker-build.env"
    assert "rules" not in job  # every pipeline the workflow allows: MR, default branch, tag
    assert "$[[ inputs.latest ]]" not in str(job["script"])  # interpolated: latest is off
    assert 'if [ "false" = true ]' in "\n".join(job["script"])
    for context in (MERGE_REQUEST, DEFAULT_BRANCH, RELEASE_TAG):
        created = pipeline(context)
        assert created is not None
        plans = [name for name in created if name.startswith("plan:")]
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
    job = _dashboard_image_job()
    step = sandbox.run(job, ("script",), env={"CI_COMMIT_BRANCH": "main"})
    assert step.code == 0, step.output
    report = (sandbox.work / "docker-build.env").read_text()
    name, _, value = report.strip().partition("=")
    assert name == "TF_VAR_dashboard_image"
    assert value == f"registry.example.com/group/app/dashboard@{digest}"
    spec = example_synth.stack("dashboard-dev")["variable"]["dashboard_image"]
    assert validation_accepts(spec, value)


def test_a_rollback_to_a_chosen_synth_needs_that_pipelines_dashboard_image(tmp_path: Path) -> None:
    script = resolved_jobs()["rollback:dev"]["script"]
    (step,) = [line for line in script if "ROLLBACK_DASHBOARD_IMAGE" in line]
    base = {"PATH": os.environ["PATH"], "ROLLBACK_SYNTH_JOB_ID": "1234"}
    refused = _shell([step], {**base, "ROLLBACK_DASHBOARD_IMAGE": ""}, tmp_path)
    assert refused.returncode == 2
    assert "ROLLBACK_SYNTH_JOB_ID needs ROLLBACK_DASHBOARD_IMAGE" in refused.stderr
    image = "registry.example.com/acme/dashboard@sha256:" + "0" * 64
    given = _shell(
        [step, 'echo "$TF_VAR_dashboard_image"'],
        {**base, "ROLLBACK_DASHBOARD_IMAGE": image},
        tmp_path,
    )
    assert given.returncode == 0, given.stderr
    assert given.stdout.strip() == image
