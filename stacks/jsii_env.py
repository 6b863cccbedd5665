"""Point jsii at the supported Node.js that ``make`` installs, before jsii starts.

The machine's Node 20 is end-of-life and jsii prints a large warning on every run with it;
``make`` installs Node 24 LTS from the npm registry into ``.tools/`` and we use it when present.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_NODE = Path(__file__).resolve().parent.parent / ".tools" / "node" / "bin" / "node"


def prepare() -> None:
    """Set ``JSII_NODE`` to the project's Node unless the caller chose one.

    Also silence Node's deprecation warnings: cdktf 0.21 (archived upstream) calls
    ``util.isArray`` when it synthesizes map outputs, which Node 24 reports on every run.
    """
    if "JSII_NODE" not in os.environ and PROJECT_NODE.exists():
        os.environ["JSII_NODE"] = str(PROJECT_NODE)
    options = os.environ.get("NODE_OPTIONS", "")
    if "--no-deprecation" not in options.split():
        os.environ["NODE_OPTIONS"] = f"{options} --no-deprecation".strip()
