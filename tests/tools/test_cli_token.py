"""``attic-iac token mint|inspect`` as users run it; PyJWT and upstream vectors are the oracle."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from iac_tools.cli import main
from tests.conftest import REPO, CliRun
from tests.support.token_vectors import (
    HS256_VECTOR_SECRET_BASE64,
    HS256_VECTOR_TOKEN,
    RS256_VECTOR_SECRET_BASE64,
    RS256_VECTOR_TOKEN,
    STRONG_SECRET,
    UPSTREAM_PERMISSIONS,
    forge,
    rs256_vector_private,
)

HS256_VAR = "ATTIC_SERVER_TOKEN_HS256_SECRET_BASE64"
RS256_VAR = "ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64"
PUBKEY_VAR = "ATTIC_SERVER_TOKEN_RS256_PUBKEY_BASE64"
NAMESPACE = "https://jwt.attic.rs/v1"
SEVEN = [
    "pull",
    "push",
    "delete",
    "create_cache",
    "configure_cache",
    "configure_cache_retention",
    "destroy_cache",
]


@pytest.fixture(autouse=True)
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (HS256_VAR, RS256_VAR, PUBKEY_VAR):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def strong_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HS256_VAR, base64.b64encode(STRONG_SECRET).decode())


def run(capsys: pytest.CaptureFixture[str], *args: str) -> CliRun:
    code = main(["token", *args])
    out, err = capsys.readouterr()
    return CliRun(code, out, err)


def only_line(stdout: str) -> str:
    assert stdout.endswith("\n")
    assert stdout.count("\n") == 1
    return stdout.strip()


# --- mint -----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("strong_env")
def test_mint_prints_one_token_that_pyjwt_verifies(capsys: pytest.CaptureFixture[str]) -> None:
    before = int(time.time())
    result = run(
        capsys,
        "mint",
        "--sub",
        "ci",
        "--validity",
        "12 hours",
        "--push",
        "team-*",
        "--pull",
        "team-x",
        "--pull",
        "team-*",
    )
    assert (result.code, result.stderr) == (0, "")
    token = only_line(result.stdout)
    claims = jwt.decode(token, STRONG_SECRET, algorithms=["HS256"])
    assert list(claims) == ["exp", "nbf", "sub", NAMESPACE]
    assert claims["sub"] == "ci"
    assert before + 12 * 3600 <= claims["exp"] <= int(time.time()) + 12 * 3600
    assert claims["nbf"] < before
    assert list(claims[NAMESPACE]["caches"].items()) == [
        ("team-x", {"r": 1}),
        ("team-*", {"r": 1, "w": 1}),
    ]


def test_mint_rs256_from_env_with_issuer_and_audience(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RS256_VAR, RS256_VECTOR_SECRET_BASE64)
    result = run(
        capsys,
        *("mint", "--sub", "a", "--validity", "1h", "--pull", "x"),
        *("--issuer", "https://attic.example", "--audience", "nix", "--audience", "ci"),
    )
    assert result.code == 0, result.stderr
    token = only_line(result.stdout)
    public = rs256_vector_private().public_key()
    claims = jwt.decode(
        token, public, algorithms=["RS256"], issuer="https://attic.example", audience="ci"
    )
    assert claims["aud"] == ["nix", "ci"]
    assert jwt.get_unverified_header(token) == {"typ": "JWT", "alg": "RS256"}


def test_mint_key_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(base64.b64encode(STRONG_SECRET).decode() + "\n")
    result = run(
        capsys, "mint", "--sub", "s", "--validity", "5m", "--pull", "c", "--key-file", str(key_file)
    )
    assert result.code == 0, result.stderr
    jwt.decode(only_line(result.stdout), STRONG_SECRET, algorithms=["HS256"])


@pytest.mark.usefixtures("strong_env")
def test_mint_every_permission_flag(capsys: pytest.CaptureFixture[str]) -> None:
    flags = [arg for name in reversed(SEVEN) for arg in ("--" + name.replace("_", "-"), "*")]
    result = run(capsys, "mint", "--sub", "root", "--validity", "1 month", *flags)
    assert result.code == 0, result.stderr
    claims = jwt.decode(only_line(result.stdout), STRONG_SECRET, algorithms=["HS256"])
    assert list(claims[NAMESPACE]["caches"]["*"].items()) == [
        (key, 1) for key in ("r", "w", "d", "cc", "cr", "cq", "cd")
    ]


@pytest.mark.parametrize("validity", ["12", "soon", "0s", "500ms"])
@pytest.mark.usefixtures("strong_env")
def test_mint_bad_validity(capsys: pytest.CaptureFixture[str], validity: str) -> None:
    result = run(capsys, "mint", "--sub", "s", "--validity", validity, "--pull", "c")
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.startswith("error: --validity: ")
    assert "Traceback" not in result.stderr


@pytest.mark.usefixtures("strong_env")
def test_mint_bad_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "mint", "--sub", "s", "--validity", "1d", "--create-cache", "bad?")
    assert (result.code, result.stdout) == (2, "")
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: --create-cache: ")
    assert "'bad?'" in first
    assert "allowed: " in first


def test_mint_without_key(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "mint", "--sub", "s", "--validity", "1d", "--pull", "c")
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.startswith("error: ")
    assert HS256_VAR in result.stderr
    assert "--key-file" in result.stderr


def test_mint_with_empty_key_env_is_without_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUBKEY_VAR, "")
    monkeypatch.setenv(HS256_VAR, "")
    result = run(capsys, "mint", "--sub", "s", "--validity", "1d", "--pull", "c")
    assert (result.code, result.stdout) == (2, "")
    assert "none of" in result.stderr


def test_mint_bad_base64_env_names_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HS256_VAR, HS256_VECTOR_SECRET_BASE64 + "\n")
    result = run(capsys, "mint", "--sub", "s", "--validity", "1d", "--pull", "c")
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"error: {HS256_VAR}: ")
    assert "atticd would refuse it too" in result.stderr


def test_mint_refuses_pubkey_only(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pub = (
        rs256_vector_private()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    monkeypatch.setenv(PUBKEY_VAR, base64.b64encode(pub).decode())
    monkeypatch.setenv(RS256_VAR, RS256_VECTOR_SECRET_BASE64)  # ignored, like atticd does
    result = run(capsys, "mint", "--sub", "s", "--validity", "1d", "--pull", "c")
    assert (result.code, result.stdout) == (2, "")
    assert "Pubkey-only JWT authentication cannot create signed JWTs" in result.stderr


def test_mint_reports_every_problem_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "mint", "--sub", "s", "--validity", "soon", "--push", "no?")
    assert (result.code, result.stdout) == (2, "")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert [line.split(":")[1].strip() for line in errors] == [
        "--validity",
        "--push",
        "no token key",
    ]


def test_mint_dump_claims_needs_no_key(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "mint", "--sub", "s", "--validity", "1d", "--pull", "a", "--dump-claims")
    assert (result.code, result.stderr) == (0, "")
    claims = json.loads(only_line(result.stdout))
    assert list(claims) == ["exp", "nbf", "sub", NAMESPACE]
    assert claims[NAMESPACE] == {"caches": {"a": {"r": 1}}}


@pytest.mark.usefixtures("strong_env")
def test_mint_without_grants_warns_but_mints(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "mint", "--sub", "s", "--validity", "1d")
    assert result.code == 0
    assert result.stderr.startswith("warning: ")
    claims = jwt.decode(only_line(result.stdout), STRONG_SECRET, algorithms=["HS256"])
    assert claims[NAMESPACE] == {"caches": {}}


# --- inspect ------------------------------------------------------------------------------------


def inspect_json(result: CliRun) -> dict[str, Any]:
    assert result.stdout.startswith("{\n  ")  # indent 2
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@pytest.mark.parametrize("cache", sorted(UPSTREAM_PERMISSIONS))
def test_inspect_vector_with_cache(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cache: str
) -> None:
    monkeypatch.setenv(HS256_VAR, HS256_VECTOR_SECRET_BASE64)
    result = run(capsys, "inspect", HS256_VECTOR_TOKEN, "--cache", cache)
    assert (result.code, result.stderr) == (0, "")
    report = inspect_json(result)
    expected, via = UPSTREAM_PERMISSIONS[cache]
    assert report["valid"] is True
    assert "reason" not in report
    assert report["header"] == {"typ": "JWT", "alg": "HS256"}
    assert report["claims"]["sub"] == "meow"
    assert set(report["permissions"]) == set(SEVEN)
    assert {k: report["permissions"][k] for k in expected} == expected
    assert report["via_pattern"] == via
    assert report["can_discover"] is True


def test_inspect_forbidden_cache(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RS256_VAR, RS256_VECTOR_SECRET_BASE64)
    result = run(capsys, "inspect", RS256_VECTOR_TOKEN, "--cache", "forbidden-cache")
    report = inspect_json(result)
    assert result.code == 0
    assert report["can_discover"] is False
    assert report["via_pattern"] is None
    assert not any(report["permissions"].values())


@pytest.mark.usefixtures("strong_env")
def test_inspect_expired_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    token = jwt.encode(
        {"exp": int(time.time()) - 10, NAMESPACE: {"caches": {"c": {"r": 1}}}},
        STRONG_SECRET,
        algorithm="HS256",
    )
    result = run(capsys, "inspect", token, "--cache", "c")
    assert result.code == 1
    report = inspect_json(result)
    assert report["valid"] is False
    assert report["reason"].startswith("expired: ")
    assert report["claims"][NAMESPACE] == {"caches": {"c": {"r": 1}}}
    assert report["permissions"]["pull"] is False


@pytest.mark.usefixtures("strong_env")
def test_inspect_reads_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    minted = run(capsys, "mint", "--sub", "s", "--validity", "1h", "--push", "c")
    monkeypatch.setattr(sys, "stdin", io.StringIO(minted.stdout))
    result = run(capsys, "inspect", "-", "--cache", "c")
    assert result.code == 0, result.stdout
    report = inspect_json(result)
    assert report["valid"] is True
    assert report["permissions"]["push"] is True
    assert report["claims"]["sub"] == "s"


@pytest.mark.usefixtures("strong_env")
def test_inspect_bound_issuer_and_audience(capsys: pytest.CaptureFixture[str]) -> None:
    token = forge({"iss": "https://a", "aud": "x", NAMESPACE: {"caches": {}}})
    assert run(capsys, "inspect", token, "--issuer", "https://a", "--audience", "x").code == 0
    wrong = run(capsys, "inspect", token, "--issuer", "https://b")
    assert wrong.code == 1
    assert inspect_json(wrong)["reason"].startswith("issuer mismatch: ")
    wrong = run(capsys, "inspect", token, "--audience", "y", "--audience", "z")
    assert inspect_json(wrong)["reason"].startswith("audience mismatch: ")


@pytest.mark.usefixtures("strong_env")
def test_inspect_garbage_is_invalid_not_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "inspect", "not-a-jwt")
    assert result.code == 1
    assert inspect_json(result)["reason"].startswith("malformed token: ")


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["inspect", HS256_VECTOR_TOKEN, "--cache", "team-*"], "", "error: --cache: "),
        (["inspect", "-"], "\n", "error: TOKEN: "),
        (
            ["inspect", HS256_VECTOR_TOKEN, "--key-file", "/nonexistent/key"],
            "",
            "error: --key-file",
        ),
    ],
)
@pytest.mark.usefixtures("strong_env")
def test_inspect_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    stdin: str,
    expected: str,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    result = run(capsys, *args)
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.startswith(expected)


def test_inspect_without_key_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "inspect", HS256_VECTOR_TOKEN)
    assert (result.code, result.stdout) == (2, "")
    assert PUBKEY_VAR in result.stderr


def test_token_commands_load_no_cdktf_and_no_config(tmp_path: Path) -> None:
    script = (
        "import sys; from iac_tools.cli import main\n"
        "code = main(['token', 'mint', '--sub', 's', '--validity', '1d', '--pull', 'c'])\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('cdktf', 'jsii', 'constructs')]\n"
        "print(code, heavy, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            HS256_VAR: HS256_VECTOR_SECRET_BASE64,
            "ATTIC_IAC_CONFIG": str(tmp_path / "missing.yaml"),
        },
    )
    assert done.stderr.strip().splitlines()[-1] == "0 []", done.stderr
    assert done.stdout.count(".") == 2
