"""``make bench``: wall time and peak memory of a full synth next to a bare cdktf baseline.

The baseline (the floor) is a plain cdktf app: it imports cdktf and the kubernetes and helm
providers the standard way and synthesizes one tiny stack, the cost every cdktf Python app pays.
It runs on the same Node.js as the synth. ``lazy`` is the same tiny app after ``import stacks``,
which builds only the provider modules an app uses (``stacks/jsii_speed.py``): what is left of
the floor for attic-iac, printed for reference, not budgeted. Each run is a fresh process;
memory is the peak summed RSS of the process tree (Python plus the jsii Node child), sampled
every 10 ms.
"""

from __future__ import annotations

import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from stacks import jsii_env

REPO = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
EXAMPLE = REPO / "config" / "organization.example.yaml"
# Budgets: wall time of a full synth over the bare baseline, and peak RSS of the process tree.
BUDGET_EXAMPLE, BUDGET_TEN, BUDGET_MIB = 1.30, 1.60, 1024

BARE = """
from cdktf import App, TerraformStack
from cdktf_cdktf_provider_helm.provider import HelmProvider
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider
app = App(outdir={outdir!r})
stack = TerraformStack(app, "tiny")
KubernetesProvider(stack, "kubernetes")
HelmProvider(stack, "helm")
NamespaceV1(stack, "ns", metadata=NamespaceV1Metadata(name="tiny"))
app.synth()
"""


def _tree_rss_kib(pid: int) -> int:
    """Summed RSS of ``pid`` and its descendants, in KiB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
        todo += children.get(current, [])
    return total


def measure(argv: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kib(proc.pid))
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed:\n{proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, peak


def ten_environments(path: Path) -> Path:
    """The example config grown to 10 environments: its own three, then copies of staging
    (``stage4`` ... ``stage10``), each with its own cluster context and domain."""
    data = yaml.safe_load(EXAMPLE.read_text())
    environments = data["environments"]
    for number in range(len(environments) + 1, 11):
        name = f"stage{number}"
        env = copy.deepcopy(environments["staging"])
        env["cluster_context"] = f"acme/infra/agents:{name}"
        env["domain"] = f"{name}.example.com"
        environments[name] = env
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _synth(config: Path, outdir: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "iac_tools.cli",
        "synth",
        "--config",
        str(config),
        "--outdir",
        outdir,
    ]


def main() -> int:
    jsii_env.prepare()  # the floor's Node.js is the synth's: set here, inherited by every run
    with tempfile.TemporaryDirectory() as tmp:
        ten = ten_environments(Path(tmp) / "ten.yaml")
        argvs = {
            "bare": [sys.executable, "-c", BARE.format(outdir=f"{tmp}/bare")],
            "lazy": [sys.executable, "-c", "import stacks\n" + BARE.format(outdir=f"{tmp}/lazy")],
            "full": _synth(EXAMPLE, f"{tmp}/full"),
            "ten": _synth(ten, f"{tmp}/ten"),
        }
        measure(argvs["ten"])  # warm the jsii package cache and the page cache
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in argvs}
        for _ in range(RUNS):
            for name, argv in argvs.items():
                results[name].append(measure(argv))
    summary = {}
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        peak = max(r[1] for r in runs) / 1024
        summary[name] = (wall, peak)
        print(f"{name:>4}: median wall {wall:.2f} s over {RUNS} runs, peak RSS {peak:.0f} MiB")
    ratio = summary["full"][0] / summary["bare"][0]
    ratio_ten = summary["ten"][0] / summary["bare"][0]
    slope = (summary["ten"][0] - summary["full"][0]) / 7
    print(f"full / bare wall time: {ratio:.2f}x (budget {BUDGET_EXAMPLE:.2f}x)")
    print(f" ten / bare wall time: {ratio_ten:.2f}x (budget {BUDGET_TEN:.2f}x)")
    print(f"per environment: +{slope:.2f} s; peak RSS budget {BUDGET_MIB} MiB")
    ok = (
        ratio <= BUDGET_EXAMPLE
        and ratio_ten <= BUDGET_TEN
        and max(summary["full"][1], summary["ten"][1]) <= BUDGET_MIB
    )
    print("within budget" if ok else "OVER BUDGET")
    print()
    print(readme_paragraph(summary, slope))
    return 0 if ok else 1


def _node_version() -> str:
    node = os.environ.get("JSII_NODE") or "node"
    try:
        run = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return run.stdout.strip().removeprefix("v")


def readme_paragraph(summary: dict[str, tuple[float, int | float]], slope: float) -> str:
    """The README's performance paragraph, from this run's figures and this machine."""
    import platform

    bare, lazy, full, ten = summary["bare"], summary["lazy"], summary["full"], summary["ten"]
    return (
        f"`make bench` ({os.cpu_count()} cores, Python {platform.python_version()}, Node "
        f"{_node_version()}; median of {RUNS} fresh processes): the floor, a plain cdktf app "
        f"(the kubernetes and helm providers imported the standard way, one tiny stack) "
        f"{bare[0]:.2f} s / {bare[1]:.0f} MiB, or {lazy[0]:.2f} s when it builds only the "
        f"provider modules it uses, as attic-iac does; "
        f"the example config (3 environments) {full[0]:.2f} s / {full[1]:.0f} MiB = "
        f"**{full[0] / bare[0]:.2f}x** (budget {BUDGET_EXAMPLE:.2f}x); a generated "
        f"10-environment config {ten[0]:.2f} s / {ten[1]:.0f} MiB = **{ten[0] / bare[0]:.2f}x** "
        f"(budget {BUDGET_TEN:.2f}x); each environment adds about {slope:.2f} s."
    )


if __name__ == "__main__":
    sys.exit(main())
