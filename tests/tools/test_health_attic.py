"""``attic-iac health`` on Attic: the root page and every public cache's nix-cache-info, against a
real local HTTP(S) server."""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import time
from pathlib import Path

import pytest
import yaml

from config_model.loader import EXAMPLE_CONFIG
from tests.support.health_server import (
    CACHE_INFO,
    LINE,
    FakeServer,
    errors,
    ms,
    run,
    serving,
    write_config,
)

pytestmark = pytest.mark.usefixtures("health_env")


def test_healthy_attic_one_ok_line_per_check_with_status_and_latency(
    fake: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    fake.attic()
    code, out, err = run(capsys, config, "--env", "dev", "--attic-url", fake.url)
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    ok = [line for line in lines if line.startswith("ok ")]
    assert [line.split(" 200 ")[0] for line in ok] == [
        f"ok   dev attic GET {fake.url}/",
        f"ok   dev attic GET {fake.url}/main/nix-cache-info",
        f"ok   dev attic GET {fake.url}/nixpkgs+mirror/nix-cache-info",
    ]
    assert all(re.search(r" 200 \d+ ms$", line) for line in ok), ok
    assert "skip dev attic cache secret is private" in out
    assert "skip dev runners not checked: $GITLAB_TOKEN is not set" in out
    assert all(LINE.match(line) for line in lines[:-1]), lines
    assert lines[-1] == "health: 3 ok, 0 warning(s), 0 failed, 2 skipped"
    assert fake.paths() == ["/", "/main/nix-cache-info", "/nixpkgs+mirror/nix-cache-info"]
    # a port-forward's Host would be refused by atticd's allowed-hosts: the public one is sent
    assert {seen.headers["host"] for seen in fake.requests} == {"attic.dev.example.com"}


def test_latency_is_measured(fake: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]):
    fake.attic()
    fake.on("/main/nix-cache-info", body=CACHE_INFO, delay=0.25)
    code, out, _ = run(capsys, config, "--env", "dev", "--attic-url", fake.url)
    assert code == 0
    (slow,) = [line for line in out.splitlines() if "/main/nix-cache-info" in line]
    (fast,) = [line for line in out.splitlines() if f"GET {fake.url}/ " in line]
    assert 250 <= ms(slow) < 2000
    assert ms(fast) < ms(slow)


def test_root_500_fails_with_one_error_line(
    fake: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    fake.attic()
    fake.on("/", 500, b"boom")
    code, out, err = run(capsys, config, "--env", "dev", "--attic-url", fake.url)
    assert code == 1
    assert errors(err) == [
        f"error: dev attic GET {fake.url}/ 500 {ms(err)} ms: expected 200; body: boom"
    ]
    # an HTTP answer means atticd is there: the caches are still probed
    assert out.count(" 200 ") == 2
    assert out.splitlines()[-1] == "health: 2 ok, 0 warning(s), 1 failed, 2 skipped"


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (401, "does not exist or is not public"),
        (404, "expected 200"),
        (500, "is its database reachable"),
    ],
)
def test_cache_info_errors_fail(
    fake: FakeServer,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    status: int,
    says: str,
):
    fake.attic()
    fake.on("/nixpkgs+mirror/nix-cache-info", status, {"code": status, "error": "X"})
    code, out, err = run(capsys, config, "--env", "dev", "--attic-url", fake.url)
    assert code == 1
    (line,) = errors(err)
    assert line.startswith(
        f"error: dev attic GET {fake.url}/nixpkgs+mirror/nix-cache-info {status} "
    )
    assert says in line
    assert f"ok   dev attic GET {fake.url}/main/nix-cache-info 200" in out


def test_a_redirect_is_reported_not_followed(
    fake: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    fake.attic()
    fake.on("/main/nix-cache-info", 302, headers={"Location": f"{fake.url}/elsewhere"})
    fake.on("/elsewhere", body=CACHE_INFO)
    code, _, err = run(capsys, config, "--env", "dev", "--attic-url", fake.url)
    assert code == 1
    (line,) = errors(err)
    assert "/main/nix-cache-info 302 " in line
    assert f"redirected to {fake.url}/elsewhere (not followed" in line
    assert "/elsewhere" not in fake.paths()


def test_a_200_that_is_not_a_nix_cache_info_fails(
    fake: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    fake.attic()
    fake.on("/main/nix-cache-info", body=b"<html>catch-all</html>")
    code, _, err = run(capsys, config, "--env", "dev", "--attic-url", fake.url)
    assert code == 1
    (line,) = errors(err)
    assert "/main/nix-cache-info 200 " in line
    assert "not a nix-cache-info" in line


def test_a_slow_answer_times_out(
    fake: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    fake.attic()
    fake.on("/", body=b"late", delay=5)
    started = time.monotonic()
    code, out, err = run(
        capsys, config, "--env", "dev", "--attic-url", fake.url, "--timeout", "0.2"
    )
    assert time.monotonic() - started < 2
    assert code == 1
    (line,) = errors(err)
    assert line.startswith(f"error: dev attic GET {fake.url}/ no answer (timed out after 0.2 s)")
    assert 200 <= ms(line) < 2000
    # one dead endpoint is one problem, not one per cache
    assert "skip dev attic caches main, nixpkgs+mirror not probed: GET / got no answer" in out
    assert fake.paths() == ["/"]


def test_connection_refused(config: Path, capsys: pytest.CaptureFixture[str]):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    code, out, err = run(capsys, config, "--env", "dev", "--attic-url", closed)
    assert code == 1
    assert [line.split(" after ")[0] for line in errors(err)] == [
        f"error: dev attic GET {closed}/ no answer (connection refused)"
    ]
    assert "not probed: GET / got no answer" in out


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 that no CA signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "server.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)
    return context


def test_an_untrusted_certificate_fails(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
):
    with serving(FakeServer(tls=_self_signed(tmp_path))) as server:
        server.attic()
        code, _, err = run(capsys, config, "--env", "dev", "--attic-url", server.url)
    assert code == 1
    (line,) = errors(err)
    assert line.startswith(
        f"error: dev attic GET {server.url}/ no answer (TLS certificate rejected"
    )
    assert server.requests == []


def test_every_environment_is_checked_at_its_own_endpoint(
    fake: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    config = write_config(tmp_path)
    data = yaml.safe_load(config.read_text())
    for env in ("dev", "staging", "prod"):
        overrides = data["environments"][env].setdefault("overrides", {})
        overrides.setdefault("attic", {})["api"] = {"endpoint": f"{fake.url}/{env}/"}
        fake.attic(f"/{env}")
    fake.on("/prod/main/nix-cache-info", 503)
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    code, out, err = run(capsys, config)
    assert code == 1
    for env in ("dev", "staging", "prod"):
        assert f"ok   {env} attic GET {fake.url}/{env}/ 200 " in out
    assert f"ok   staging attic GET {fake.url}/staging/main/nix-cache-info 200 " in out
    assert [line.split(" 503 ")[0] for line in errors(err)] == [
        f"error: prod attic GET {fake.url}/prod/main/nix-cache-info"
    ]
    assert len(fake.paths()) == 9
    # the configured URL is used as is: its own Host header
    assert {seen.headers["host"] for seen in fake.requests} == {fake.url.removeprefix("http://")}


def test_ingress_disabled_is_skipped_with_the_way_to_check_it(
    fake: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    attic = yaml.safe_load(EXAMPLE_CONFIG.read_text())["attic"]
    attic["ingress"] = {"enabled": False}
    attic["storage"]["clients_outside_cluster"] = False
    config = write_config(tmp_path, attic=attic)
    code, out, err = run(capsys, config, "--env", "dev")
    assert code == 0, err
    assert (
        "skip dev attic attic.ingress.enabled is false: not reachable from here; run "
        "'kubectl -n attic port-forward svc/attic 8080:80' and "
        "'attic-iac health --env dev --attic-url http://127.0.0.1:8080'"
    ) in out
    assert fake.requests == []
    # through the port-forward: atticd's allowed-hosts then holds only the Service names
    fake.attic()
    code, out, err = run(capsys, config, "--env", "dev", "--attic-url", fake.url)
    assert code == 0, err
    assert {seen.headers["host"] for seen in fake.requests} == {"attic.attic.svc"}


def test_without_public_caches_the_database_is_reported_unprobed(
    fake: FakeServer, capsys: pytest.CaptureFixture[str]
):
    fake.attic()
    code, out, _ = run(capsys, EXAMPLE_CONFIG, "--env", "prod", "--attic-url", fake.url)
    assert code == 0
    assert "skip prod attic database not probed: no public cache" in out
    assert fake.paths() == ["/"]
