"""``make vendor-js``: re-fetch the dashboard's browser libraries from npm and check them.

The dashboard serves htmx, its SSE extension and uPlot itself (CSP ``default-src 'self'``, no
CDN), so the files live in ``dashboard/static/vendor/<package>/`` with each package's LICENSE
and a MANIFEST.json of what they are: package, version, the npm tarball's integrity and a
sha256 per file. ``npm pack`` (the machine's npm, nothing installed into the repository)
fetches the pinned tarball; it must hash to the integrity the registry states AND to the one
already in the manifest, so a changed tarball behind an unchanged version is refused. To move a
pin, edit PINS and run with ``--update``, then review the diff. ``--check`` only verifies the
files on disk against the manifest (what tests/dashboard/test_vendor.py does), offline.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "dashboard" / "static" / "vendor"
MANIFEST = VENDOR / "MANIFEST.json"


@dataclass(frozen=True, kw_only=True)
class Pin:
    """One npm package: which tarball members we keep and under which name."""

    package: str
    version: str
    license: str
    files: dict[str, str] = field(default_factory=dict)  # tarball member -> vendored name


PINS = (
    Pin(
        package="htmx.org",
        version="2.0.11",
        license="0BSD",
        files={"package/dist/htmx.min.js": "htmx.min.js", "package/LICENSE": "LICENSE"},
    ),
    Pin(
        package="htmx-ext-sse",
        version="2.2.4",
        # package.json has no license field; the LICENSE file is the BSD Zero Clause text
        license="0BSD",
        files={"package/dist/sse.min.js": "sse.min.js", "package/LICENSE": "LICENSE"},
    ),
    Pin(
        package="uplot",
        version="1.6.32",
        license="MIT",
        files={
            "package/dist/uPlot.iife.min.js": "uPlot.iife.min.js",
            "package/dist/uPlot.min.css": "uPlot.min.css",
            "package/LICENSE": "LICENSE",
        },
    ),
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sri_sha512(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def problems(vendor: Path = VENDOR) -> list[str]:
    """What differs between the vendored files and their manifest (empty when they agree)."""
    manifest_path = vendor / "MANIFEST.json"
    if not manifest_path.is_file():
        return [f"{manifest_path} is missing"]
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    found: list[str] = []
    entries = {entry["package"]: entry for entry in manifest["packages"]}
    for pin in PINS:
        entry = entries.pop(pin.package, None)
        if entry is None:
            found.append(f"{pin.package}: not in the manifest")
            continue
        if entry["version"] != pin.version or entry["license"] != pin.license:
            found.append(f"{pin.package}: manifest says {entry['version']}/{entry['license']}")
        if not str(entry["integrity"]).startswith("sha512-"):
            found.append(f"{pin.package}: integrity is not a sha512 SRI string")
        if set(entry["files"]) != set(pin.files.values()):
            found.append(f"{pin.package}: manifest files {sorted(entry['files'])}")
        for name, digest in entry["files"].items():
            path = vendor / pin.package / name
            if not path.is_file():
                found.append(f"{pin.package}/{name}: missing")
            elif _sha256(path.read_bytes()) != digest:
                found.append(f"{pin.package}/{name}: sha256 differs from the manifest")
    found += [f"{package}: in the manifest but not pinned" for package in entries]
    listed = {
        (vendor / pin.package / name).resolve() for pin in PINS for name in pin.files.values()
    }
    listed.add(manifest_path.resolve())
    found += [
        f"{path.relative_to(vendor)}: not in the manifest"
        for path in sorted(vendor.rglob("*"))
        if path.is_file() and path.resolve() not in listed
    ]
    return found


def _npm(*args: str) -> str:
    run = subprocess.run(["npm", *args], capture_output=True, text=True, check=True)
    return run.stdout.strip()


def _fetch(pin: Pin, workdir: Path, pinned_integrity: str | None) -> dict[str, Any]:
    """Pack the pinned tarball, check its integrity, copy the kept members; the manifest entry."""
    spec = f"{pin.package}@{pin.version}"
    integrity = _npm("view", spec, "dist.integrity")
    if pinned_integrity is not None and integrity != pinned_integrity:
        raise SystemExit(f"{spec}: registry integrity {integrity} != manifest {pinned_integrity}")
    name = _npm("pack", spec, "--ignore-scripts", "--silent", "--pack-destination", str(workdir))
    tarball = (workdir / name.splitlines()[-1]).read_bytes()
    if _sri_sha512(tarball) != integrity:
        raise SystemExit(f"{spec}: tarball does not hash to the registry's integrity")
    target = VENDOR / pin.package
    target.mkdir(parents=True, exist_ok=True)
    digests: dict[str, str] = {}
    with tarfile.open(workdir / name.splitlines()[-1]) as archive:
        for member, vendored in pin.files.items():
            extracted = archive.extractfile(member)  # by exact name: no path from the archive
            if extracted is None:
                raise SystemExit(f"{spec}: {member} is not a file in the tarball")
            data = extracted.read()
            (target / vendored).write_bytes(data)
            digests[vendored] = _sha256(data)
    return {
        "package": pin.package,
        "version": pin.version,
        "integrity": integrity,
        "tarball": f"https://registry.npmjs.org/{pin.package}/-/{pin.package}-{pin.version}.tgz",
        "license": pin.license,
        "files": dict(sorted(digests.items())),
    }


def vendor(*, update: bool) -> None:
    """Re-fetch every pin into VENDOR and rewrite the manifest."""
    previous: dict[str, dict[str, Any]] = {}
    if MANIFEST.is_file():
        previous = {e["package"]: e for e in json.loads(MANIFEST.read_text())["packages"]}
    entries = []
    with tempfile.TemporaryDirectory(prefix="vendor-js-") as workdir:
        for pin in PINS:
            old = previous.get(pin.package)
            pinned = old["integrity"] if old and old["version"] == pin.version else None
            if pinned is None and not update:
                raise SystemExit(f"{pin.package}@{pin.version} is a new pin: run with --update")
            entries.append(_fetch(pin, Path(workdir), pinned))
    document = {
        "note": "written by `make vendor-js` (tests/tools/vendor_js.py); do not edit by hand",
        "packages": entries,
    }
    MANIFEST.write_text(json.dumps(document, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="verify files only, offline")
    mode.add_argument("--update", action="store_true", help="accept new pins' integrity")
    args = parser.parse_args(argv)
    if not args.check:
        vendor(update=args.update)
    found = problems()
    for line in found:
        print(f"vendor-js: {line}", file=sys.stderr)
    if not found:
        print(f"vendor-js: {len(PINS)} packages match {MANIFEST.relative_to(REPO)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
