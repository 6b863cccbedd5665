"""Kubernetes resource quantities as exact fractions, valued the way the API server values them.

Accepted: an unsigned decimal number (``2``, ``0.1``, ``.5``, ``1.``) with a decimal SI suffix
(``n u m k M G T P E`` or none) or a binary one (``Ki Mi Gi Ti Pi Ei``), at most 2^63-1.
Kubernetes also takes signs and exponents (``-1``, ``1e3``); they are rejected here, because no
budget is negative and ``1E3`` (1000) beside ``1E`` (10^18) is a misreading waiting to happen.
Like the API server (apimachinery ``resource.ParseQuantity``), a value finer than one nano unit
is rounded up to the next nano unit, so ``0.1n`` is ``1n``.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_SUFFIXES: dict[str, Fraction] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}
FORMS = (
    "an unsigned decimal number (e.g. 2, 0.5, .5) with an optional suffix "
    "n, u, m, k, M, G, T, P, E (powers of 1000) or Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024)"
)
_QUANTITY = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>[A-Za-z]*)")
_EXPONENT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][+-]?[0-9]+")
_NANO = 10**9
_MAX = 2**63 - 1


def parse_quantity(text: str) -> Fraction:
    """The exact value of ``text``; ``ValueError`` naming it and the accepted forms otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a quantity string; use {FORMS}")
    match = _QUANTITY.fullmatch(text)
    if match is None or match["suffix"] not in _SUFFIXES:
        if _EXPONENT.fullmatch(text):
            why = "exponents are not accepted here (write 1k, not 1e3)"
        elif text[:1] in ("-", "+"):
            why = "signed quantities are not accepted (resources are never negative)"
        else:
            why = "not a quantity"
        raise ValueError(f"{text!r}: {why}; use {FORMS}")
    value = Fraction(match["number"]) * _SUFFIXES[match["suffix"]]
    value = Fraction(math.ceil(value * _NANO), _NANO)
    if value > _MAX:
        raise ValueError(f"{text!r}: larger than Kubernetes' maximum 2^63-1; use {FORMS}")
    return value


def cpu_cores(text: str) -> Fraction:
    """CPU in cores: ``"500m"`` is 1/2."""
    return parse_quantity(text)


def bytes_of(text: str) -> int:
    """Memory or storage in bytes; a fraction of a byte (``"512m"`` is 0.512 B) is an error."""
    value = parse_quantity(text)
    if value.denominator != 1:
        raise ValueError(
            f"{text!r} is {value} bytes, not a whole number (m means milli: write 512Mi, not 512m)"
        )
    return value.numerator
