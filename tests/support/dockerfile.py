"""Read a Dockerfile and a .dockerignore the way the builder does, for tests of what an image is
made of without a Docker daemon (none runs on the build machines)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Instruction:
    """One instruction. ``stage`` counts FROMs from 0; ``args`` is the text after the keyword
    with continuation lines joined."""

    stage: int
    keyword: str
    args: str

    def words(self) -> list[str]:
        """``args`` split as a shell would (shell-form instructions)."""
        return shlex.split(self.args)


def instructions(text: str) -> list[Instruction]:
    """Every instruction; comment and blank lines are dropped, also inside a continuation."""
    found: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical = (pending + line).strip()
        pending = ""
        keyword, _, args = logical.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        found.append(Instruction(stage=stage, keyword=keyword, args=" ".join(args.split())))
    assert not pending, "the Dockerfile ends inside a continuation line"
    return found


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex over slash-separated paths (Go filepath.Match plus
    ``**``, as moby's patternmatcher reads them)."""
    out = []
    i = 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


@dataclass(frozen=True, kw_only=True)
class DockerIgnore:
    """The rules of a .dockerignore: the last rule that matches a path or one of its parent
    directories decides; ``!`` re-includes."""

    rules: tuple[tuple[bool, re.Pattern[str]], ...]

    @classmethod
    def parse(cls, text: str) -> DockerIgnore:
        rules = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            rules.append((negated, _pattern_regex(line.lstrip("!").strip())))
        return cls(rules=tuple(rules))

    def sent(self, path: str) -> bool:
        """Whether the build context holds ``path`` (relative, slash-separated)."""
        parts = path.strip("/").split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for negated, regex in self.rules:
            if any(regex.fullmatch(candidate) for candidate in candidates):
                excluded = not negated
        return not excluded

    def sent_of(self, paths: Iterable[str]) -> set[str]:
        return {path for path in paths if self.sent(path)}
