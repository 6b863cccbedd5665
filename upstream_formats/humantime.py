"""Durations the way atticd reads them (the ``humantime`` crate's ``parse_duration``).

atticd rejects a bare number ("time unit needed") and treats ``m`` as minutes, ``M`` as months;
checking here turns a crash-looping pod into a synth-time error.
"""

from __future__ import annotations

import re

_UNITS: dict[str, float] = {
    name: seconds
    for names, seconds in (
        (("nsec", "ns"), 1e-9),
        (("usec", "us"), 1e-6),
        (("msec", "ms"), 1e-3),
        (("seconds", "second", "sec", "s"), 1),
        (("minutes", "minute", "min", "m"), 60),
        (("hours", "hour", "hr", "h"), 3600),
        (("days", "day", "d"), 86400),
        (("weeks", "week", "w"), 604800),
        (("months", "month", "M"), 2_630_016),
        (("years", "year", "y"), 31_557_600),
    )
    for name in names
}

_TERM = re.compile(r"\s*([0-9]+)\s*([A-Za-z]+)\s*")


def parse_duration(text: str) -> float:
    """Seconds in ``text`` such as ``"12 hours"`` or ``"1h 30m"``; ``ValueError`` if invalid."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a duration needs a number and a unit, e.g. '12 hours'")
    total = 0.0
    position = 0
    while position < len(text):
        match = _TERM.match(text, position)
        if match is None:
            raise ValueError(f"{text!r} is not a duration (e.g. '12 hours', '30 days', '0s')")
        unit = match.group(2)
        if unit not in _UNITS:
            raise ValueError(f"{text!r}: unknown unit {unit!r} (s, m, h, d, w, M, y, ...)")
        total += int(match.group(1)) * _UNITS[unit]
        position = match.end()
    return total
