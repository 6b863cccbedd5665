"""Synthesize into a scratch folder and swap it in only when everything succeeded.

A failed synth (bad config, construct validation, any exception) leaves an existing output
folder byte for byte as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from config_model.loader import LoadedConfig
from stacks.stack_kinds import STACK_KINDS, split_stack_id, stack_id


@dataclass(frozen=True, slots=True)
class StackSummary:
    stack: str
    resources: int


def default_outdir() -> Path:
    """``$CDKTF_OUTDIR`` as the cdktf CLI sets it, else ``cdktf.out``."""
    return Path(os.environ.get("CDKTF_OUTDIR") or "cdktf.out")


def synthesize(
    config: LoadedConfig, outdir: Path, only: Collection[str] | None = None
) -> list[StackSummary]:
    """Synthesize every stack of ``config`` (or only the stack ids in ``only``) into ``outdir``
    (replaced only on success).

    With ``only``, each stack folder is byte for byte what a full synth writes, and so is each
    stack's entry in ``manifest.json`` (its dependencies included, built or not).
    """
    from cdktf import App

    from stacks.app import build_app

    outdir = outdir.resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        app = App(outdir=str(scratch), stack_traces=False)
        build_app(app, config, only)
        app.synth()
        if only is not None:
            _declare_all_dependencies(scratch)
        summaries = summarize(scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    _swap_in(scratch, outdir)
    return summaries


def summarize(outdir: Path) -> list[StackSummary]:
    """Resource count per stack, in manifest order."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    summaries = []
    for name, stack in manifest["stacks"].items():
        doc = json.loads((outdir / stack["synthesizedStackPath"]).read_text())
        count = sum(len(items) for items in doc.get("resource", {}).values())
        summaries.append(StackSummary(stack=name, resources=count))
    return summaries


def _declare_all_dependencies(outdir: Path) -> None:
    """Give each stack of a partial synth the dependencies a full synth records for it.

    cdktf only records a dependency on a stack that was built; the manifest is rewritten the
    way cdktf writes it (keys sorted, two-space indent).
    """
    path = outdir / "manifest.json"
    manifest = json.loads(path.read_text())
    for name, stack in manifest["stacks"].items():
        split = split_stack_id(name)
        assert split is not None, name
        kind, env = split
        declared = next(k for k in STACK_KINDS if k.name == kind).depends_on
        stack["dependencies"] = [stack_id(d, env) for d in declared]
    path.write_text(_stable_stringify(manifest))


def _stable_stringify(value: object, indent: str = "") -> str:
    """JSON as cdktf's manifest writer (json-stable-stringify, ``space: 2``) lays it out."""
    inner = indent + "  "
    if isinstance(value, dict):
        items = [
            f"\n{inner}{json.dumps(k, ensure_ascii=False)}: {_stable_stringify(value[k], inner)}"
            for k in sorted(value)
        ]
        return "{" + ",".join(items) + f"\n{indent}}}"
    if isinstance(value, list):
        items = [f"\n{inner}{_stable_stringify(v, inner)}" for v in value]
        return "[" + ",".join(items) + f"\n{indent}]"
    return json.dumps(value, ensure_ascii=False)


def _swap_in(scratch: Path, outdir: Path) -> None:
    old = None
    if outdir.exists():
        old = outdir.with_name(f".{outdir.name}.old-{os.getpid()}")
        outdir.rename(old)
    scratch.rename(outdir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
