"""Synthesize into a scratch folder and swap it in only when everything succeeded.

A failed synth (bad config, construct validation, any exception) leaves an existing output
folder byte for byte as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from config_model.loader import LoadedConfig


@dataclass(frozen=True, slots=True)
class StackSummary:
    stack: str
    resources: int


def default_outdir() -> Path:
    """``$CDKTF_OUTDIR`` as the cdktf CLI sets it, else ``cdktf.out``."""
    return Path(os.environ.get("CDKTF_OUTDIR") or "cdktf.out")


def synthesize(config: LoadedConfig, outdir: Path) -> list[StackSummary]:
    """Synthesize every stack of ``config`` into ``outdir`` (replaced only on success)."""
    from cdktf import App

    from stacks.app import build_app

    outdir = outdir.resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        app = App(outdir=str(scratch), stack_traces=False)
        build_app(app, config)
        app.synth()
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


def _swap_in(scratch: Path, outdir: Path) -> None:
    old = None
    if outdir.exists():
        old = outdir.with_name(f".{outdir.name}.old-{os.getpid()}")
        outdir.rename(old)
    scratch.rename(outdir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
