"""Kubernetes quantities: exact values for the accepted forms, clear errors for the rest."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from upstream_formats.k8s_quantity import bytes_of, cpu_cores, parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500m", Fraction(1, 2)),
        ("1.5Gi", 1536 * 2**20),
        ("2", 2),
        ("0.1", Fraction(1, 10)),
        ("0", 0),
        ("007", 7),
        (".5", Fraction(1, 2)),
        ("1.", 1),
        ("100n", Fraction(1, 10**7)),
        ("250u", Fraction(1, 4000)),
        ("1k", 1000),
        ("1M", 10**6),
        ("2G", 2 * 10**9),
        ("1T", 10**12),
        ("1P", 10**15),
        ("1E", 10**18),
        ("1Ki", 1024),
        ("0.5Ki", 512),
        ("1Mi", 2**20),
        ("3Ti", 3 * 2**40),
        ("1Pi", 2**50),
        ("7Ei", 7 * 2**60),
        ("9223372036854775807", 2**63 - 1),
    ],
)
def test_accepted_forms_have_their_exact_value(text: str, expected: Fraction | int):
    value = parse_quantity(text)
    assert isinstance(value, Fraction)
    assert value == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Like the API server, anything finer than a nano unit rounds up, never to zero.
        ("0.1n", Fraction(1, 10**9)),
        ("1.0000000001", 1 + Fraction(1, 10**9)),
        ("0.0000000000001k", Fraction(1, 10**9)),
    ],
)
def test_values_round_up_to_a_nano_unit(text: str, expected: Fraction):
    assert parse_quantity(text) == expected


def test_decimal_and_binary_suffixes_differ():
    assert parse_quantity("1Gi") == parse_quantity("1024Mi") == 2**30
    assert parse_quantity("1G") == 10**9
    assert parse_quantity("1Gi") > parse_quantity("1G")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1GB", "not a quantity"),
        ("1Mb", "not a quantity"),
        ("1gi", "not a quantity"),
        ("1K", "not a quantity"),  # only k, or Ki
        ("Gi", "not a quantity"),
        ("", "not a quantity"),
        (".", "not a quantity"),
        (" 1", "not a quantity"),
        ("1 Gi", "not a quantity"),
        ("1.5.5", "not a quantity"),
        ("1e", "not a quantity"),
        ("1e3", "exponents are not accepted"),
        ("1E3", "exponents are not accepted"),
        ("2.5e-3", "exponents are not accepted"),
        ("-1", "signed quantities are not accepted"),
        ("+1", "signed quantities are not accepted"),
        ("-500m", "signed quantities are not accepted"),
        ("9223372036854775808", "larger than Kubernetes' maximum"),
        ("8Ei", "larger than Kubernetes' maximum"),
    ],
)
def test_rejected_forms_name_the_text_and_the_allowed_forms(text: str, reason: str):
    with pytest.raises(ValueError, match="use an unsigned decimal number") as info:
        parse_quantity(text)
    message = str(info.value)
    assert message.startswith(f"{text!r}: {reason}")
    assert "Ki, Mi, Gi" in message


@pytest.mark.parametrize("value", [2, 0.5, None])
def test_non_strings_are_rejected(value: Any):
    with pytest.raises(ValueError, match="not a quantity string"):
        parse_quantity(value)


def test_cpu_is_counted_in_cores():
    assert cpu_cores("500m") == Fraction(1, 2)
    assert cpu_cores("2") == 2
    assert cpu_cores("1.5") == cpu_cores("1500m")


def test_bytes_are_whole_numbers():
    assert bytes_of("1.5Gi") == 1_610_612_736
    assert type(bytes_of("1.5Gi")) is int
    assert bytes_of("128Mi") == 134_217_728
    assert bytes_of("1k") == 1000
    with pytest.raises(ValueError, match="not a whole number") as info:
        bytes_of("512m")
    assert "512Mi" in str(info.value)
    with pytest.raises(ValueError, match="not a quantity"):
        bytes_of("1GB")
