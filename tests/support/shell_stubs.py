"""Stub commands and the tools a POSIX shell needs, for tests that run shell scripts for real
against stubs on a PATH of their own."""

from __future__ import annotations

import shutil
from pathlib import Path


def link_tools(directory: Path, names: tuple[str, ...]) -> Path:
    """``directory`` with a link to each of the host's ``names``, for a PATH of its own."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        found = shutil.which(name)
        assert found, f"{name} is needed by the test"
        (directory / name).symlink_to(found)
    return directory


def stub(path: Path, text: str) -> None:
    """An executable script at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def running(pid: int) -> bool:
    """Alive and not a zombie (a stub is orphaned, its reaper may be slow)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return not text.rsplit(") ", 1)[1].startswith("Z")


# A fake `attic` client: records its arguments; watch-store runs until TERM (or ignores it with
# FAKE_IGNORE_TERM), push takes FAKE_PUSH_SECONDS and exits FAKE_PUSH_EXIT.
ATTIC_STUB = """#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/attic.calls"
case $1 in
    watch-store)
        echo $$ > "$RECORD/watch-store.pid"
        echo "watching for $2"
        if [ -n "${FAKE_IGNORE_TERM:-}" ]; then
            trap '' TERM
        else
            trap 'echo "watch-store: TERM"; exit 0' TERM
        fi
        while :; do sleep 1; done
        ;;
    push)
        waited=0
        while [ "$waited" -lt "${FAKE_PUSH_SECONDS:-0}" ]; do sleep 1; waited=$((waited + 1)); done
        echo "pushed $*"
        exit "${FAKE_PUSH_EXIT:-0}"
        ;;
esac
"""
