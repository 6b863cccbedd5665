"""``attic-iac health`` against a real local HTTP server playing atticd and GitLab's API."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from config_model.loader import EXAMPLE_CONFIG, load_config
from iac_tools.cli import main
from iac_tools.health import attic_target, runners_path

TOKEN = "glpat-health-check-secret-0123456789"
CACHE_INFO = b"StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 41\n"
PUBLIC = ("main", "nixpkgs+mirror")
LINE = re.compile(r"^(ok   |warn |skip )(\S+) (.+)$")


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is expected here


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        pass

    def do_GET(self) -> None:
        fake = self.server.fake
        with fake.lock:
            fake.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
        answer = fake.answers.get(self.path) or fake.answers.get(urlsplit(self.path).path)
        if answer is None:
            answer = Answer(404, b'{"message":"404 Not Found"}')
        if answer.delay:
            fake.release.wait(answer.delay)
        try:
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:
            pass


class FakeServer:
    """Answers per path (exact path with query first, then the path alone); 404 otherwise."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.lock = threading.Lock()
        self.answers: dict[str, Answer] = {}
        self.requests: list[Seen] = []
        self.release = threading.Event()
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.fake = self
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def on(self, path: str, status: int = 200, body: Any = b"", **kwargs: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers[path] = Answer(status, data, **kwargs)

    def attic(self, prefix: str = "") -> None:
        """A healthy atticd: the root page and every public cache's nix-cache-info."""
        self.on(f"{prefix}/", body=b"<html>attic</html>")
        for cache in PUBLIC:
            self.on(f"{prefix}/{cache}/nix-cache-info", body=CACHE_INFO)

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]


@pytest.fixture(autouse=True)
def _no_proxy_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "https_proxy", "all_proxy", "GITLAB_TOKEN", "ATTIC_IAC_CONFIG"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)


@contextlib.contextmanager
def serving(server: FakeServer) -> Iterator[FakeServer]:
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(5)


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with serving(FakeServer()) as server:
        yield server


def write_config(tmp_path: Path, **overrides: Any) -> Path:
    """The example with two public caches and a private one, and two runner types (nix with
    two managers); ``overrides`` replace top-level sections' keys."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["attic"]["caches"] = [
        {"name": "main", "public": True},
        {"name": "secret", "public": False},
        {"name": "nixpkgs+mirror", "public": True},
    ]
    types = data["runners"]["types"]
    for name in ("dind", "rocky8", "rocky9"):
        types[name] = {"enabled": False}
    types["nix"]["replicas"] = 2
    for section, values in overrides.items():
        data[section] = {**data[section], **values}
    path = tmp_path / "organization.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    code = main(["health", "--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ")]


def ms(line: str) -> int:
    found = re.search(r" (\d+) ms", line)
    assert found, line
    return int(found.group(1))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


# --------------------------------------------------------------------------------------------
# Attic


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


# --------------------------------------------------------------------------------------------
# GitLab runners

GROUP_RUNNERS = "/api/v4/groups/1234/runners"


def _runner(runner_id: int, description: str, *, paused: bool = False) -> dict[str, Any]:
    return {
        "id": runner_id,
        "description": description,
        "paused": paused,
        "active": not paused,
        "runner_type": "group_type",
        "status": "online",
    }


def _managers(*statuses: str) -> list[dict[str, Any]]:
    return [
        {"id": n, "system_id": f"r_{n}", "status": status, "contacted_at": "2026-01-01T00:00:00Z"}
        for n, status in enumerate(statuses, 1)
    ]


@pytest.fixture
def gitlab(fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    """A healthy Attic and a group whose dev runners are all up (nix: 2 managers)."""
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    fake.attic()
    fake.on(
        GROUP_RUNNERS,
        body=[
            _runner(7, "acme prod docker"),
            _runner(11, "acme dev docker"),
            _runner(12, "acme dev nix"),
            _runner(13, "someone else's runner", paused=True),
        ],
    )
    fake.on("/api/v4/runners/11/managers", body=_managers("online"))
    fake.on("/api/v4/runners/12/managers", body=_managers("online", "online", "offline"))
    return fake


def run_dev(capsys: pytest.CaptureFixture[str], config: Path, fake: FakeServer, *args: str):
    return run(
        capsys, config, "--env", "dev", "--attic-url", fake.url, "--gitlab-url", fake.url, *args
    )


def test_runners_with_online_managers_pass(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 0, err
    assert re.search(
        r"^ok   dev runner docker #11 'acme dev docker': 1 manager\(s\) online of 1 known, "
        r"1 replica\(s\) configured, \d+ ms$",
        out,
        re.M,
    ), out
    assert (
        "ok   dev runner nix #12 'acme dev nix': 2 manager(s) online of 3 known, 2 replica(s)"
        in out
    )
    api = [seen for seen in gitlab.requests if seen.path.startswith("/api/")]
    assert [urlsplit(seen.path).path for seen in api] == [
        GROUP_RUNNERS,
        "/api/v4/runners/11/managers",
        "/api/v4/runners/12/managers",
    ]
    assert parse_qs(urlsplit(api[0].path).query) == {
        "type": ["group_type"],
        "per_page": ["100"],
        "page": ["1"],
    }
    assert all(seen.headers["private-token"] == TOKEN for seen in api)
    assert all("private-token" not in seen.headers for seen in gitlab.requests[:3])
    assert TOKEN not in out + err


def test_a_runner_without_online_managers_fails(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    gitlab.on("/api/v4/runners/11/managers", body=_managers("offline", "stale"))
    gitlab.on("/api/v4/runners/12/managers", body=[])
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 1
    lines = errors(err)
    assert len(lines) == 2
    assert lines[0].startswith(
        "error: dev runner docker #11 'acme dev docker': 0 manager(s) online of 2 known"
    )
    assert lines[1].startswith(
        "error: dev runner nix #12 'acme dev nix': 0 manager(s) online of 0 known"
    )
    assert all(
        "are the gitlab-runner-" in line and " pods in gitlab-runners running" in line
        for line in lines
    )
    assert "ok   dev attic GET" in out


def test_fewer_online_managers_than_replicas_is_a_warning(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    gitlab.on("/api/v4/runners/12/managers", body=_managers("online", "offline"))
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 0, err
    assert (
        "warn dev runner nix #12 'acme dev nix': 1 manager(s) online of 2 known, 2 replica(s)"
        in out
    )
    assert "fewer online than replicas" in out
    assert out.splitlines()[-1] == "health: 4 ok, 1 warning(s), 0 failed, 1 skipped"


def test_a_paused_runner_fails(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    gitlab.on(
        GROUP_RUNNERS,
        body=[_runner(11, "acme dev docker", paused=True), _runner(12, "acme dev nix")],
    )
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 1
    (line,) = errors(err)
    assert line.startswith("error: dev runner docker #11 'acme dev docker' is paused in GitLab")
    # its managers are still reported
    assert "ok   dev runner docker #11 'acme dev docker': 1 manager(s) online" in out


def test_older_gitlab_reports_paused_as_inactive(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    inactive = {"id": 11, "description": "acme dev docker", "active": False}
    gitlab.on(GROUP_RUNNERS, body=[inactive, _runner(12, "acme dev nix")])
    code, _, err = run_dev(capsys, config, gitlab)
    assert code == 1
    assert "is paused in GitLab" in err


def test_a_runner_paused_by_the_config_is_skipped(
    gitlab: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    runners = yaml.safe_load(EXAMPLE_CONFIG.read_text())["runners"]
    runners["types"] = {
        "docker": {"gitlab": {"paused": True, "description": "docker runner of dev"}},
        **{name: {"enabled": False} for name in ("dind", "nix", "rocky8", "rocky9")},
    }
    runners["attic"] = {"enabled": False}
    config = write_config(tmp_path, runners=runners)
    gitlab.on(GROUP_RUNNERS, body=[_runner(21, "docker runner of dev", paused=True)])
    gitlab.on("/api/v4/runners/21/managers", body=[])
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 0, err
    assert re.search(
        r"^skip dev runner docker #21 'docker runner of dev': 0 manager\(s\) online of 0 known, "
        r"1 replica\(s\) configured, \d+ ms; paused as configured$",
        out,
        re.MULTILINE,
    ), out


@pytest.mark.parametrize("count", [0, 2])
def test_a_runner_must_be_listed_exactly_once(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str], count: int
):
    body = [_runner(12, "acme dev nix")] + [
        _runner(30 + n, "acme dev docker") for n in range(count)
    ]
    gitlab.on(GROUP_RUNNERS, body=body)
    code, _, err = run_dev(capsys, config, gitlab)
    assert code == 1
    (line,) = errors(err)
    assert line.startswith(f"error: dev runner docker {count} runners described 'acme dev docker'")
    if count:
        assert "(#30, #31)" in line


def test_runner_listing_is_paged(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    query = f"{GROUP_RUNNERS}?type=group_type&per_page=100"
    gitlab.on(
        f"{query}&page=1", body=[_runner(11, "acme dev docker")], headers={"X-Next-Page": "2"}
    )
    gitlab.on(f"{query}&page=2", body=[_runner(12, "acme dev nix")], headers={"X-Next-Page": ""})
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 0, err
    assert "ok   dev runner docker #11" in out
    assert "ok   dev runner nix #12" in out


def test_a_failing_managers_call_fails_that_runner_only(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    gitlab.on("/api/v4/runners/12/managers", 403, {"message": "403 Forbidden"})
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 1
    assert errors(err) == [
        f"error: dev runner nix #12 GET {gitlab.url}/api/v4/runners/12/managers "
        f'403 {ms(err)} ms: expected 200; body: {{"message": "403 Forbidden"}}'
    ]
    assert "ok   dev runner docker #11" in out


def test_a_listing_that_is_not_a_list_fails(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    gitlab.on(GROUP_RUNNERS, body={"message": "maintenance"})
    code, _, err = run_dev(capsys, config, gitlab)
    assert code == 1
    (line,) = errors(err)
    assert line.endswith(" ms: not a JSON list of runners")


def test_a_rejected_token_is_one_error_and_never_printed(
    gitlab: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    # a server echoing the credential back must not get it into the output either
    gitlab.on(GROUP_RUNNERS, 401, {"message": f"401 Unauthorized {TOKEN}"})
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 1
    (line,) = errors(err)
    assert line.startswith(f"error: dev runners GET {gitlab.url}{GROUP_RUNNERS}?type=group_type")
    assert "401" in line
    assert "GITLAB_TOKEN rejected" in line
    assert "***" in line
    assert TOKEN not in out + err
    assert not any("/managers" in path for path in gitlab.paths())


def test_without_a_token_the_runner_check_is_skipped(
    fake: FakeServer, config: Path, capsys: pytest.CaptureFixture[str]
):
    fake.attic()
    code, out, err = run_dev(capsys, config, fake)
    assert code == 0, err
    assert out.count("runners") == 1
    assert "skip dev runners not checked: $GITLAB_TOKEN is not set" in out
    assert not any(path.startswith("/api/") for path in fake.paths())


def test_runners_from_existing_secrets_are_skipped(
    gitlab: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    config = write_config(tmp_path, runners={"token_source": "existing_secret", "gitlab_api": {}})
    data = yaml.safe_load(config.read_text())
    for spec in data["runners"]["types"].values():
        spec.pop("gitlab", None)
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    code, out, err = run_dev(capsys, config, gitlab)
    assert code == 0, err
    assert "skip dev runners token_source is existing_secret" in out
    assert not any(path.startswith("/api/") for path in gitlab.paths())


@pytest.mark.parametrize(
    ("attic", "expected"),
    [
        ({}, ("https://attic.dev.example.com/", "attic.dev.example.com")),
        (
            {"ingress": {"host": "cache.example.org"}},
            ("https://cache.example.org/", "cache.example.org"),
        ),
        (
            {"api": {"endpoint": "https://nix.example.net/attic/"}},
            ("https://nix.example.net/attic/", "attic.dev.example.com"),
        ),
    ],
)
def test_the_public_url_is_derived_like_the_attic_stack(
    tmp_path: Path, attic: dict[str, Any], expected: tuple[str, str]
):
    base = yaml.safe_load(EXAMPLE_CONFIG.read_text())["attic"]
    config = load_config(write_config(tmp_path, attic={**base, **attic}))
    assert attic_target(config.environments["dev"], None) == expected


@pytest.mark.parametrize(
    ("gitlab_api", "path"),
    [
        ({"runner_type": "group_type", "group_id": "77"}, "/groups/77/runners?type=group_type"),
        (
            {"runner_type": "project_type", "project_id": "88"},
            "/projects/88/runners?type=project_type",
        ),
        ({"runner_type": "instance_type"}, "/runners/all?type=instance_type"),
    ],
)
def test_runners_are_listed_in_the_scope_they_are_created_in(
    tmp_path: Path, gitlab_api: dict[str, str], path: str
):
    config = load_config(write_config(tmp_path, runners={"gitlab_api": gitlab_api}))
    assert runners_path(config.environments["dev"]) == f"{path}&per_page=100"


# --------------------------------------------------------------------------------------------
# Bad input: exit 2, nothing sent


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--env", "qa"], "--env: unknown environment (got 'qa'; allowed: dev, staging, prod)"),
        (["--attic-url", "URL"], "--attic-url: give --env too"),
        (["--env", "dev", "--attic-url", "ftp://x"], "--attic-url: must be an http(s):// URL"),
        (["--gitlab-url", "gitlab.com"], "--gitlab-url: must be an http(s):// URL"),
        (["--timeout", "0"], "--timeout: must be more than 0 seconds"),
        (["--timeout", "nan"], "--timeout: must be more than 0 seconds"),
    ],
)
def test_bad_input_exits_2_before_any_request(
    fake: FakeServer,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    problem: str,
):
    fake.attic()
    args = [fake.url if a == "URL" else a for a in args]
    code, out, err = run(capsys, config, *args)
    assert code == 2
    assert out == ""
    assert errors(err)[0].startswith(f"error: {problem}")
    assert fake.requests == []
