"""The settings a Postgres session of a pod ends up with, computed the way the programs do.

1. Kubernetes expands ``$(VAR)`` in an env value from variables defined earlier in the list.
2. atticd's sqlx (sqlx-postgres 0.8.6 ``options/parse.rs``) reads the URL's query pairs
   (form-urlencoded): ``options`` values are joined with a space, ``options[name]=value`` adds
   ``-c name=value``; the result goes into the startup packet.
3. The server splits that string at unescaped whitespace, backslash escaping the next character
   (``pg_split_opts``), and reads ``-c name=value`` / ``-cname=value`` / ``--name=value``
   switches; those override postgresql.conf (the Cluster's ``parameters``) for the session.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand_env(env: Sequence[Mapping[str, Any]], name: str, secrets: Mapping[str, str]) -> str:
    """Value of variable ``name``; ``secrets`` gives values of ``value_from`` variables
    (others read as '')."""
    known: dict[str, str] = {}
    for var in env:
        if "value" in var:
            value = _REFERENCE.sub(lambda m: known.get(m.group(1), m.group(0)), var["value"])
        else:
            value = secrets.get(var["name"], "")
        known[var["name"]] = value
    return known[name]


def sqlx_startup_options(url: str) -> str:
    """The ``options`` startup parameter sqlx sends for ``url`` ('' when none)."""
    parts: list[str] = []
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key == "options":
            parts.append(value)
        elif key.startswith("options[") and key.endswith("]"):
            parts.append(f"-c {key[len('options[') : -1]}={value}")
    return " ".join(parts)


def split_options(options: str) -> list[str]:
    """``pg_split_opts``: words at unescaped whitespace, backslashes removed."""
    words: list[str] = []
    current: list[str] | None = None
    escaped = False
    for char in options:
        if char.isspace() and not escaped:
            if current is not None:
                words.append("".join(current))
                current = None
            continue
        if current is None:
            current = []
        if not escaped and char == "\\":
            escaped = True
            continue
        escaped = False
        current.append(char)
    if current is not None:
        words.append("".join(current))
    return words


def session_settings(options: str) -> dict[str, str]:
    """Settings the server applies from a startup ``options`` string."""
    settings: dict[str, str] = {}
    words = split_options(options)
    index = 0
    while index < len(words):
        word = words[index]
        if word == "-c" and index + 1 < len(words):
            assignment, index = words[index + 1], index + 2
        elif word.startswith("-c") or word.startswith("--"):
            assignment, index = word[2:], index + 1
        else:
            raise ValueError(f"the server rejects the startup option {word!r}")
        name, _, value = assignment.partition("=")
        settings[name.replace("-", "_")] = value
    return settings


def effective_setting(
    url: str, parameters: Mapping[str, str], name: str, default: str = "0"
) -> str:
    """``name`` in a session opened with ``url`` on a cluster with ``parameters``."""
    session = session_settings(sqlx_startup_options(url))
    return session.get(name, parameters.get(name, default))
