"""Postgres settings a client sets for its own sessions, through libpq's ``options`` parameter.

The client sends ``options`` in its startup packet (sqlx: ``options`` in the URL,
sqlx-postgres 0.8.6 ``options/parse.rs`` and ``connection/establish.rs``). The server splits it
at unescaped whitespace, a backslash escaping the next character (``pg_split_opts``,
src/backend/utils/init/postinit.c), and applies each ``-c name=value`` to that session only, over
postgresql.conf. So one client can get a limit that other clients of the same cluster do not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# A Postgres time setting such as statement_timeout: a positive integer and a unit.
TIME_SETTING = r"^[1-9][0-9]*(ms|s|min|h|d)$"
_ESCAPED = re.compile(r"([\\\s])")


def startup_options(settings: Mapping[str, str]) -> str:
    """The ``options`` value that sets every ``name`` to its value for the session."""
    return " ".join(f"-c {name}={_escape(value)}" for name, value in settings.items())


def _escape(value: str) -> str:
    return _ESCAPED.sub(r"\\\1", value)
