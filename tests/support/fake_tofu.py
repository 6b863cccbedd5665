"""A fake ``tofu`` executable that records its calls, for tests of our command lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

LOCK_ID = "9db6e1f4-2a4e-4f8c-b0a1-3c1c2d0e5f77"

FAKE_TOFU = """\
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["FAKE_TOFU_LOG"], "a") as log:
    log.write(json.dumps({
        "args": args,
        "cwd": os.getcwd(),
        "password": os.environ.get("TF_HTTP_PASSWORD"),
        "kube": os.environ.get("KUBE_CONFIG_PATHS"),
        "automation": os.environ.get("TF_IN_AUTOMATION"),
    }) + "\\n")
stack = Path.cwd().name
fail = os.environ.get("FAKE_TOFU_FAIL", "")
if fail == f"{args[0]}:{stack}:lock":
    sys.stderr.write(
        "Error: Error acquiring the state lock\\n\\n"
        "Error message: HTTP remote state already locked: ID=LOCK_ID_HERE\\n"
        "Lock Info:\\n"
        "  ID:        LOCK_ID_HERE\\n"
        "  Path:      \\n"
        "  Operation: OperationTypeApply\\n"
        "  Who:       runner@job-4242\\n"
        "  Version:   1.13.1\\n"
        "  Created:   2026-11-21 08:00:00 +0000 UTC\\n"
    )
    sys.exit(1)
if fail == f"{args[0]}:{stack}":
    sys.stderr.write("Error: something broke\\n")
    sys.exit(1)
if args[0] == "init":
    Path(".terraform").mkdir(exist_ok=True)
    Path(".terraform/terraform.tfstate").write_text("{}")
elif args[0] == "plan":
    for arg in args:
        if arg.startswith("-out="):
            Path(arg[5:]).write_text("binary plan")
elif args[0] == "show" and "-json" in args:
    print(json.dumps({"resource_changes": [
        {"address": "a.b", "change": {"actions": ["create"]}},
        {"address": "a.c", "change": {"actions": ["delete", "create"]}},
        {"address": "a.d", "change": {"actions": ["update"]}},
        {"address": "a.e", "change": {"actions": ["no-op"]}},
        {"address": "a.f", "change": {"actions": ["read"]}},
    ]}))
elif args[0] == "show":
    print("Plan: 2 to add, 1 to change, 1 to destroy. password = (sensitive value)")
""".replace("LOCK_ID_HERE", LOCK_ID)


def install(bin_dir: Path) -> Path:
    """Write the fake as ``bin_dir/tofu``; it logs to ``$FAKE_TOFU_LOG``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "tofu"
    script.write_text(f"#!{sys.executable}\n{FAKE_TOFU}")
    script.chmod(0o755)
    return script


def calls(log: Path) -> list[dict[str, Any]]:
    """The recorded calls: args, cwd, TF_HTTP_PASSWORD, KUBE_CONFIG_PATHS, TF_IN_AUTOMATION."""
    return [json.loads(line) for line in log.read_text().splitlines()]
