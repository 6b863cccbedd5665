"""``make docs``: the construct library's API reference, generated from the code with pdoc.

Refuses to build while a public name lacks documentation (the rules of
``tests/support/public_api.py``: every public module and name has a docstring, every props
field is described with its default, every construct says what it creates and shows an
example). pdoc follows ``__all__``, so internal modules and names stay out of the reference.

    .venv/bin/python -m tests.reference [OUTPUT_DIR]   # default build/reference
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import stacks  # noqa: F401  (first: points jsii at the project's Node before cdktf starts it)

# isort: split

from tests.support.public_api import PACKAGE, REPO, doc_problems, internal_types_in_public_api

DEFAULT_OUTPUT = REPO / "build" / "reference"


def build(output: Path) -> list[str]:
    """Write the reference into ``output``; returns the problems that prevented it, if any."""
    problems = doc_problems() + internal_types_in_public_api()
    if problems:
        return problems
    # importing the constructs starts jsii's Node.js process, which pdoc blocks by default
    os.environ.setdefault("PDOC_ALLOW_EXEC", "1")
    import pdoc
    import pdoc.render

    from constructs_lib import __version__

    pdoc.render.configure(
        docformat="google",
        footer_text=f"attic-iac-constructs {__version__}",
        search=True,
        show_source=True,
    )
    pdoc.pdoc(PACKAGE, output_directory=output)
    return []


def main(argv: list[str]) -> int:
    output = Path(argv[0]) if argv else DEFAULT_OUTPUT
    problems = build(output)
    if problems:
        print("undocumented public API (fix these, then run make docs again):", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    pages = sum(1 for _ in output.rglob("*.html"))
    print(f"wrote {pages} pages to {output} (open {output / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
