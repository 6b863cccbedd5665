"""The k8s-deploy component (templates/k8s-deploy): its job run for real against a stub
kubectl."""

from __future__ import annotations

from tests.support.component_sandbox import Sandbox
from tests.support.component_templates import EXAMPLES, jobs_of
from tests.support.gitlab_ci import resolve_extends
from tests.support.shell_stubs import stub

KUBECTL_STUB = """#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/kubectl.calls"
case "$1 $*" in
    *--dry-run=server*) [ -z "${FAKE_DRY_RUN_FAIL:-}" ] || { echo "invalid" >&2; exit 1; } ;;
    apply*) printf '%s\\n' $FAKE_APPLIED ;;
    get*) printf '%s\\n' $FAKE_SELECTED ;;
    rollout*)
        case " $FAKE_NOT_READY " in *" $3 "*) echo "timed out waiting for $3" >&2; exit 1 ;; esac
        echo "$3 successfully rolled out"
        ;;
esac
"""

APPLIED = "namespace/web service/web deployment.apps/web statefulset.apps/db configmap/settings"


def _deploy_env(**extra: str) -> dict[str, str]:
    return {"KUBECONFIG": "/builds/agent.kubeconfig", "FAKE_APPLIED": APPLIED, **extra}


def _apply_args(manifests: str = "k8s/") -> list[str]:
    return [
        "--server-side",
        "--field-manager=group-app",
        "--namespace=web",
        "--recursive",
        f"--filename={manifests}",
    ]


def test_k8s_deploy_applies_server_side_and_waits_for_the_applied_workloads(
    sandbox: Sandbox,
) -> None:
    stub(sandbox.bin / "kubectl", KUBECTL_STUB)

    deploy = resolve_extends(jobs_of("k8s-deploy"), "k8s-deploy")
    step = sandbox.run(deploy, ("script",), env=_deploy_env())

    assert step.code == 0, step.output
    calls = [call.split() for call in sandbox.calls("kubectl")]
    assert calls == [
        ["config", "use-context", EXAMPLES["agent"]],
        ["apply", *_apply_args(), "--dry-run=server"],
        ["apply", *_apply_args(), "--output=name"],
        ["rollout", "status", "deployment.apps/web", "--namespace=web", "--timeout=5m"],
        ["rollout", "status", "statefulset.apps/db", "--namespace=web", "--timeout=5m"],
    ]
    assert "--prune" not in " ".join(sandbox.calls("kubectl"))


def test_k8s_deploy_waits_for_the_selected_workloads_and_forces_when_asked(
    sandbox: Sandbox,
) -> None:
    stub(sandbox.bin / "kubectl", KUBECTL_STUB)
    job = resolve_extends(
        jobs_of(
            "k8s-deploy",
            rollout_selector="app.kubernetes.io/part-of=shop",
            force_conflicts=True,
            manifests="deploy/prod",
            rollout_timeout="90s",
        ),
        "k8s-deploy",
    )

    step = sandbox.run(job, ("script",), env=_deploy_env(FAKE_SELECTED="daemonset.apps/agent"))

    assert step.code == 0, step.output
    calls = [call.split() for call in sandbox.calls("kubectl")]
    assert calls[2] == ["apply", *_apply_args("deploy/prod"), "--force-conflicts", "--output=name"]
    assert calls[3:] == [
        [
            "get",
            "deployment,statefulset,daemonset",
            "--namespace=web",
            "--selector=app.kubernetes.io/part-of=shop",
            "--output=name",
        ],
        ["rollout", "status", "daemonset.apps/agent", "--namespace=web", "--timeout=90s"],
    ]


def test_k8s_deploy_fails_when_a_workload_does_not_roll_out(sandbox: Sandbox) -> None:
    stub(sandbox.bin / "kubectl", KUBECTL_STUB)
    job = resolve_extends(jobs_of("k8s-deploy"), "k8s-deploy")

    step = sandbox.run(job, ("script",), env=_deploy_env(FAKE_NOT_READY="deployment.apps/web"))

    assert step.code == 1
    assert "not rolled out within 5m: deployment.apps/web" in step.output
    # The other workload is still waited for, so the log names every one that failed.
    assert sandbox.calls("kubectl")[-1].startswith("rollout status statefulset.apps/db")


def test_k8s_deploy_applies_nothing_when_the_dry_run_fails(sandbox: Sandbox) -> None:
    stub(sandbox.bin / "kubectl", KUBECTL_STUB)
    job = resolve_extends(jobs_of("k8s-deploy"), "k8s-deploy")

    step = sandbox.run(job, ("script",), env=_deploy_env(FAKE_DRY_RUN_FAIL="1"))

    assert step.code != 0
    assert not any("--output=name" in call for call in sandbox.calls("kubectl"))


def test_k8s_deploy_without_an_agent_kubeconfig_explains(sandbox: Sandbox) -> None:
    stub(sandbox.bin / "kubectl", KUBECTL_STUB)
    job = resolve_extends(jobs_of("k8s-deploy"), "k8s-deploy")

    step = sandbox.run(job, ("script",), env={"FAKE_APPLIED": APPLIED})

    assert step.code == 1
    assert "ci_access" in step.output
    assert sandbox.calls("kubectl") == []
