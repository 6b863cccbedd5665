"""Cache names and token patterns as atticd accepts them (``attic/src/cache.rs``).

A name is 1-50 characters, starting with a letter or digit; ``+`` separates namespaces
(``team+dev``). A pattern may also use ``*`` (any run of characters, none included); an
invalid pattern makes atticd ignore the whole token, so it is rejected before minting.
"""

from __future__ import annotations

import re

CACHE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_+]{0,49}$")
CACHE_PATTERN = re.compile(r"^[A-Za-z0-9*][A-Za-z0-9\-_+*]{0,49}$")
NAME_RULE = "1-50 of A-Z a-z 0-9 - _ +, starting with a letter or digit"
PATTERN_RULE = "1-50 of A-Z a-z 0-9 - _ + *, starting with a letter, digit or *"


def is_cache_name(value: str) -> bool:
    return CACHE_NAME.fullmatch(value) is not None


def is_cache_pattern(value: str) -> bool:
    return CACHE_PATTERN.fullmatch(value) is not None


def pattern_matches(pattern: str, cache: str) -> bool:
    """wildmatch semantics with ``*`` as the only wildcard (``?`` is not a valid character)."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, cache, flags=re.DOTALL) is not None
