"""The vendored browser libraries are exactly what MANIFEST.json says npm shipped (pinned
versions, sha256 per file, the licence beside each), and the check notices any change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.tools.vendor_js import PINS, VENDOR, problems


def test_vendored_files_match_the_manifest():
    assert problems() == []


def test_each_package_carries_its_licence_and_pinned_version():
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text())
    assert [(e["package"], e["version"]) for e in manifest["packages"]] == [
        ("htmx.org", "2.0.11"),
        ("htmx-ext-sse", "2.2.4"),
        ("uplot", "1.6.32"),
    ]
    for pin in PINS:
        text = (VENDOR / pin.package / "LICENSE").read_text()
        assert ("MIT License" if pin.license == "MIT" else "Zero") in text
    assert 'version:"2.0.11"' in (VENDOR / "htmx.org" / "htmx.min.js").read_text()
    assert "(v1.6.32)" in (VENDOR / "uplot" / "uPlot.iife.min.js").read_text()[:100]


def test_the_check_notices_a_changed_missing_or_extra_file(tmp_path: Path):
    copy = tmp_path / "vendor"
    shutil.copytree(VENDOR, copy)
    assert problems(copy) == []
    with (copy / "htmx.org" / "htmx.min.js").open("a") as handle:
        handle.write("\n")
    (copy / "uplot" / "LICENSE").unlink()
    (copy / "uplot" / "uPlot.js").write_text("//")
    assert problems(copy) == [
        "htmx.org/htmx.min.js: sha256 differs from the manifest",
        "uplot/LICENSE: missing",
        "uplot/uPlot.js: not in the manifest",
    ]
