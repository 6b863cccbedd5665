"""checkov over every synthesized stack must report zero failed checks."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.support.synth_output import SynthOutput

CONFIG = REPO / ".checkov.yaml"


def _checkov() -> Path:
    binary = Path(os.environ.get("CHECKOV_BIN") or REPO / ".venv-checkov" / "bin" / "checkov")
    if not binary.exists():
        pytest.fail(f"checkov not found at {binary}: run `make setup` (or set CHECKOV_BIN)")
    return binary


def run_checkov(directory: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [str(_checkov()), "--config-file", str(CONFIG), "-d", str(directory), "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    return report if isinstance(report, list) else [report]


def _failed(reports: list[dict[str, Any]]) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]


def test_checkov_reports_no_failed_checks(all_synths: list[SynthOutput]):
    for synth in all_synths:
        assert _failed(run_checkov(synth.root)) == []


def test_checkov_gate_is_live(tmp_path: Path):
    """A deliberately bad deployment must fail: proves checkov really reads tf.json here."""
    bad = {
        "resource": {
            "kubernetes_deployment_v1": {
                "bad": {
                    "metadata": {"name": "bad", "namespace": "x"},
                    "spec": {
                        "selector": {"match_labels": {"a": "b"}},
                        "template": {
                            "metadata": {"labels": {"a": "b"}},
                            "spec": {
                                "container": [
                                    {
                                        "name": "c",
                                        "image": "nginx:latest",
                                        "security_context": {"privileged": True},
                                    }
                                ]
                            },
                        },
                    },
                }
            }
        }
    }
    (tmp_path / "cdk.tf.json").write_text(json.dumps(bad))
    failed = _failed(run_checkov(tmp_path))
    assert any(f.startswith("CKV_K8S_16 ") for f in failed), failed


def test_every_skip_has_a_reason():
    skips = yaml.safe_load(CONFIG.read_text()).get("skip-check") or []
    lines = CONFIG.read_text().splitlines()
    for check in skips:
        line = next(x for x in lines if re.match(rf"\s*-\s*{re.escape(check)}\b", x))
        assert re.search(r"#\s*\S.{20,}", line), f"skip {check} needs a reason: {line}"
