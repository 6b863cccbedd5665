"""``make bench``: wall time and peak memory of a full synth next to a bare cdktf baseline.

The baseline imports cdktf and the kubernetes and helm providers and synthesizes one tiny
stack: the cost every cdktf Python app pays. Each run is a fresh process; memory is the peak
summed RSS of the process tree (Python plus the jsii Node child), sampled every 10 ms.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "5"))

BARE = """
import stacks  # sets JSII_NODE, as every attic-iac entry point does
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


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        bare = [sys.executable, "-c", BARE.format(outdir=f"{tmp}/bare")]
        full = [
            sys.executable,
            "-m",
            "iac_tools.cli",
            "synth",
            "--config",
            str(REPO / "config" / "organization.example.yaml"),
            "--outdir",
            f"{tmp}/full",
        ]
        measure(full)  # warm the jsii package cache and the page cache
        results: dict[str, list[tuple[float, int]]] = {"bare": [], "full": []}
        for _ in range(RUNS):
            for name, argv in (("bare", bare), ("full", full)):
                results[name].append(measure(argv))
    summary = {}
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        peak = max(r[1] for r in runs) / 1024
        summary[name] = (wall, peak)
        print(f"{name:>4}: median wall {wall:.2f} s over {RUNS} runs, peak RSS {peak:.0f} MiB")
    ratio = summary["full"][0] / summary["bare"][0]
    print(f"full / bare wall time: {ratio:.2f}x (budget 1.30x); full peak RSS budget 1024 MiB")
    ok = ratio <= 1.3 and summary["full"][1] <= 1024
    print("within budget" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
