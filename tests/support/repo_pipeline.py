"""The repository's own ``.gitlab-ci.yml`` as GitLab evaluates it, for the tests of the pipeline:
its jobs with ``extends`` applied, which jobs each kind of pipeline creates (``rules``), what
each job waits for (``needs`` and stages), and the jobs' own script lines run against a fake
``tofu``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from iac_tools import tofu
from stacks.stack_kinds import STACK_KINDS
from tests.conftest import REPO
from tests.support.component_templates import jobs_of
from tests.support.fake_tofu import calls, install
from tests.support.gitlab_ci import resolve_extends
from tests.support.plan_inputs import tf_var_environment
from tests.support.synth_output import SynthOutput

PIPELINE = REPO / ".gitlab-ci.yml"
# Keys that are not jobs at the top level of a pipeline.
GLOBAL_KEYS = {"workflow", "stages", "include", "variables", "default", "image", "services"}

MERGE_REQUEST = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": "main"}
DEFAULT_BRANCH = {
    "CI_PIPELINE_SOURCE": "push",
    "CI_COMMIT_BRANCH": "main",
    "CI_DEFAULT_BRANCH": "main",
}
RELEASE_TAG = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "v1.4.0", "CI_DEFAULT_BRANCH": "main"}
CONTEXTS = (MERGE_REQUEST, DEFAULT_BRANCH, RELEASE_TAG)
# The dashboard is a leaf: its image is built on the fleet's own dind runner, so nothing of the
# fleet may wait for it. Every other kind of stack is the fleet.
DASHBOARD = "dashboard"
FLEET = [kind.name for kind in STACK_KINDS if kind.name != DASHBOARD]
ENVIRONMENTS = ("dev", "staging", "prod")


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


def dashboard_image_job() -> dict[str, Any]:
    """The job the local include of the docker-build component creates, as GitLab reads it."""
    (include,) = [item for item in raw()["include"] if "local" in item]
    assert include["local"] == "templates/docker-build/template.yml"
    jobs = jobs_of("docker-build", **include["inputs"])
    return resolve_extends(jobs, "dashboard-image")


def every_job() -> dict[str, dict[str, Any]]:
    """Our jobs and the included dashboard-image job, as GitLab reads them."""
    return {**resolved_jobs(), "dashboard-image": dashboard_image_job()}


def need_names(job: dict[str, Any]) -> list[str]:
    """The names of the jobs in ``needs`` (a name, or ``{job: name, ...}``)."""
    return [need if isinstance(need, str) else need["job"] for need in job["needs"]]


def waits_for(name: str, jobs: dict[str, dict[str, Any]]) -> set[str]:
    """Every job ``name`` waits for, transitively: its ``needs``, or, without ``needs``, every
    job of the earlier stages (GitLab's stage order)."""
    stages = raw()["stages"]
    found: set[str] = set()
    pending = [name]
    while pending:
        job = jobs[pending.pop()]
        if "needs" in job:
            direct = need_names(job)
        else:
            before = stages.index(job["stage"])
            direct = [other for other, o in jobs.items() if stages.index(o["stage"]) < before]
        for other in direct:
            if other not in found:
                found.add(other)
                pending.append(other)
    return found


def shell(script: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Script lines run as a job runs them: one ``sh -e``, in ``cwd``, with only ``env``."""
    return subprocess.run(
        ["sh", "-ec", "\n".join(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def tofu_environment(example_synth: SynthOutput, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A job's environment with a fake tofu first on PATH, and the fake's call log. It holds
    the environment-scoped CI/CD variables of dev, but no TF_VAR_dashboard_image: only
    dashboard-image's dotenv report gives that, and only to the jobs that need it."""
    log = tmp_path / "calls.jsonl"
    log.touch()
    install(tmp_path / "bin")
    variables = tf_var_environment(
        doc for name, doc in example_synth.stacks() if name.endswith("-dev")
    )
    variables.pop("TF_VAR_dashboard_image")
    return {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "FAKE_TOFU_LOG": str(log),
        "CI_JOB_TOKEN": "job-token-value",
        "PYTHONPATH": str(REPO),
        "ATTIC_IAC_ENV": "dev",
        "PLAN_ARGS": "",
        "HOME": str(tmp_path),
        **variables,
    }, log


def run_plan_job(
    job: dict[str, Any],
    stack: str,
    *,
    env: dict[str, str],
    source: Path,
    planner: Path,
    applier: Path,
) -> None:
    """One plan job (one stack) in a workspace of its own holding the synth artifact; its
    declared artifacts are then copied into the apply job's workspace, as GitLab passes them."""
    shutil.copytree(source, planner / "cdktf.out")
    # the fake writes no lock file; OpenTofu's init does
    (planner / "cdktf.out" / "stacks" / f"{stack}-dev" / ".terraform.lock.hcl").write_text("")
    done = shell(job["script"], {**env, **job.get("variables", {}), "STACK": stack}, planner)
    assert done.returncode == 0, done.stderr
    for pattern in [*job["artifacts"]["paths"], job["artifacts"]["reports"]["terraform"]]:
        path = pattern.replace("$STACK", stack).replace("$ATTIC_IAC_ENV", "dev")
        assert (planner / path).is_file(), path
        if not path.endswith(tofu.PLAN_REPORT):
            (applier / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(planner / path, applier / path)


def applied(log: Path, since: int = 0) -> list[str]:
    """The stack folders the fake tofu applied in, in order, from call ``since`` on."""
    return [Path(c["cwd"]).name for c in calls(log)[since:] if c["args"][0] == "apply"]
