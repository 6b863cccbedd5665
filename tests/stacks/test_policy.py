"""checkov over every synthesized stack must report zero failed checks.

checkov's terraform_json reader leaves ``${var.<name>}`` unresolved, so a workload whose image is
a variable reads as an unpinned image. The scan therefore sees the stack as OpenTofu plans it:
such references are replaced by the value the pipeline supplies (:mod:`tests.support.plan_inputs`),
and a test proves each such value passes the variable's own validation, which admits nothing but
a digest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.support.plan_inputs import KNOWN_VALUES, required_variables, validation_accepts
from tests.support.synth_output import SynthOutput

CONFIG = REPO / ".checkov.yaml"


def _checkov() -> Path:
    binary = Path(os.environ.get("CHECKOV_BIN") or REPO / ".venv-checkov" / "bin" / "checkov")
    if not binary.exists():
        pytest.fail(f"checkov not found at {binary}: run `make setup` (or set CHECKOV_BIN)")
    return binary


# Top-level blocks checkov 3.3's terraform_json parser cannot read: it drops the whole file as a
# parsing error, so none of its resources would be checked. `removed` declares no resource.
UNPARSED_BLOCKS = ("removed",)


def _planned(value: Any) -> Any:
    """``value`` with ``${var.<name>}`` of the variables in KNOWN_VALUES replaced by them."""
    if isinstance(value, dict):
        return {k: _planned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_planned(v) for v in value]
    if isinstance(value, str) and value.startswith("${var.") and value.endswith("}"):
        return KNOWN_VALUES.get(value[len("${var.") : -1], value)
    return value


def _checkable_copy(directory: Path, scratch: Path) -> Path:
    """``directory`` with the blocks checkov cannot parse taken out of every ``cdk.tf.json``,
    and the pipeline's inputs in place of their variables."""
    for source in directory.rglob("cdk.tf.json"):
        target = scratch / source.relative_to(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            doc = json.loads(source.read_text())
        except ValueError:  # passed on as it is, for checkov to report
            target.write_text(source.read_text())
            continue
        kept = {k: _planned(v) for k, v in doc.items() if k not in UNPARSED_BLOCKS}
        target.write_text(json.dumps(kept))
    return scratch


def run_checkov(directory: Path) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as scratch:
        proc = subprocess.run(
            [
                str(_checkov()),
                "--config-file",
                str(CONFIG),
                "-d",
                str(_checkable_copy(directory, Path(scratch))),
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    # A file checkov cannot parse is silently skipped: the gate would pass while blind.
    unparsed = [e for r in reports for e in r.get("results", {}).get("parsing_errors", [])]
    assert unparsed == [], f"checkov could not parse {unparsed}"
    return reports


def _failed(reports: list[dict[str, Any]]) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]


def test_checkov_reports_no_failed_checks(all_synths: list[SynthOutput]):
    for synth in all_synths:
        assert _failed(run_checkov(synth.root)) == []


def test_checkov_cannot_go_blind(tmp_path: Path):
    """A stack checkov cannot parse fails the gate instead of passing unchecked."""
    (tmp_path / "cdk.tf.json").write_text('{"resource": {"kubernetes_namespace_v1": {')
    with pytest.raises(AssertionError, match="could not parse"):
        run_checkov(tmp_path)


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


def test_the_scanned_inputs_are_values_the_variables_accept(all_synths: list[SynthOutput]):
    """What checkov sees in place of a variable is a value OpenTofu would let through."""
    seen = set()
    for synth in all_synths:
        for name, doc in synth.stacks():
            for variable, spec in required_variables(doc).items():
                if variable in KNOWN_VALUES:
                    assert validation_accepts(spec, KNOWN_VALUES[variable]), (name, variable)
                    seen.add(variable)
    assert seen == set(KNOWN_VALUES)
