"""The nix runner's setup.sh, run for real in dash, bash (also in POSIX mode, as nixos/nix's
/bin/sh) and busybox sh against an in-process fake atticd: the keys it trusts, the netrc it
writes, and how it copes with an unreachable or missing server or HTTP client."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from constructs_lib.runners.attic_flywheel import TOKEN_DIR, flywheel_job_settings
from tests.support.flywheel_shells import SETUP, SHELLS, TOKEN, config_lines, shell_path, token_file
from tests.support.shell_stubs import link_tools

KEYS = {
    "main": "main:7cV2dPbp0Kzq2Jm6bP2D0c3tZr0Gd1zKc6Q7QpS9rGk=",
    "ci": "ci:Q2FjaGUtY2ktcHVibGljLWtleS1mb3ItdGVzdHMtb25seQ==",
    "pub": "pub:cHVibGljLWNhY2hlLWtleS1mb3ItdGVzdHMtb25seS4=",
}
BASE_NIX_CONFIG = "fallback = true"


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------------------------
# A fake atticd: GET /_api/v1/cache-config/<cache>


class FakeAttic:
    """``main`` and ``ci`` need the token, ``pub`` is public, anything else is 404."""

    def __init__(self) -> None:
        self.auth: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:
                cache = self.path.removeprefix("/_api/v1/cache-config/")
                auth = self.headers.get("Authorization")
                with fake.lock:
                    fake.auth.append((cache, auth))
                status, body = fake.answer(cache, auth)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,))
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def answer(self, cache: str, auth: str | None) -> tuple[int, str]:
        if cache not in KEYS:
            return 404, '{"code":404,"error":"NoSuchCache","message":"no such cache"}'
        if cache != "pub" and auth != f"Bearer {TOKEN}":
            return 401, '{"code":401,"error":"Unauthorized","message":"Unauthorized."}'
        config = {
            "substituter_endpoint": self.url,
            "api_endpoint": self.url,
            "keypair": None,
            "public_key": KEYS[cache],
            "is_public": cache == "pub",
            "store_dir": "/nix/store",
            "priority": 41,
            "upstream_cache_key_names": ["cache.nixos.org-1"],
        }
        # atticd answers compact JSON; the pretty form proves the parser copes with whitespace.
        if cache == "ci":
            return 200, json.dumps(config, separators=(",", ":"))
        return 200, json.dumps(config, indent=2)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def attic() -> Iterator[FakeAttic]:
    server = FakeAttic()
    yield server
    server.close()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _settings_env(endpoint: str, caches: list[str], token_file: Path | None) -> dict[str, str]:
    """The runner's environment for these caches, as flywheel_job_settings renders it."""
    settings = flywheel_job_settings(
        endpoint=endpoint,
        caches=caches,
        push_cache=caches[0] if token_file else None,
        token_secret="attic-ci-token" if token_file else None,
        config_map="attic-flywheel",
    )
    env = dict(item.split("=", 1) for item in settings.environment)
    if token_file is not None:
        # The Secret's mount point, whatever the variable is called, moved into tmp_path.
        [name] = [name for name, value in env.items() if value == f"{TOKEN_DIR}/token"]
        env[name] = str(token_file)
    return env


@dataclass
class SetupRun:
    code: int
    output: str
    seconds: float
    nix_config: str | None
    flags_before: str
    flags_after: str
    leaked: list[str] = field(default_factory=list)


def _run_setup(
    tmp_path: Path,
    shell: list[str],
    env: dict[str, str],
    *,
    flags: str = "-eu",
    path: str | None = None,
) -> SetupRun:
    """Source setup.sh in ``shell`` after ``set <flags>``, as the runner's job shell does."""
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    pipefail = "set -o pipefail" if shell[0] == "bash" and "e" in flags else ""
    driver = f"""
set {flags or "+e"}
{pipefail}
before=$-
. "{SETUP}"
after=$-
printf '%s\\n' "$before" > "{out}/before"
printf '%s\\n' "$after" > "{out}/after"
printf '%s' "${{NIX_CONFIG-}}" > "{out}/nix_config"
set > "{out}/set"
for name in _af_main _af_get _af_say _af_public_key _af_add_config _af_endpoint_host; do
    if command -v "$name" >/dev/null 2>&1; then echo "$name" >> "{out}/functions"; fi
done
echo alive > "{out}/alive"
"""
    full_env = {
        "PATH": path if path is not None else os.environ["PATH"],
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path / "tmp"),
        "NIX_CONFIG": BASE_NIX_CONFIG,
        **env,
    }
    started = time.monotonic()
    result = subprocess.run(
        [shell_path(shell), *shell[1:], "-c", driver],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    seconds = time.monotonic() - started
    assert (out / "alive").exists(), f"the job shell died:\n{result.stdout}\n{result.stderr}"
    leaked = [
        line.split("=", 1)[0].split()[0]
        for line in (out / "set").read_text().splitlines()
        if line.startswith("_af_")
    ]
    functions = out / "functions"
    leaked += functions.read_text().split() if functions.exists() else []
    return SetupRun(
        code=result.returncode,
        output=result.stdout + result.stderr,
        seconds=seconds,
        nix_config=(out / "nix_config").read_text(),
        flags_before=(out / "before").read_text().strip(),
        flags_after=(out / "after").read_text().strip(),
        leaked=leaked,
    )


# --------------------------------------------------------------------------------------------
# setup.sh


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("flags", ["-eu", ""], ids=["set-eu", "no-flags"])
def test_setup_trusts_reachable_caches_in_order_and_writes_a_netrc(
    tmp_path: Path, attic: FakeAttic, shell: list[str], flags: str
) -> None:
    env = _settings_env(attic.url, ["ci", "missing", "main"], token_file(tmp_path))
    run = _run_setup(tmp_path, shell, env, flags=flags)

    assert run.code == 0
    lines = config_lines(run.nix_config)
    # The runner's static settings stay first, the keys follow the configured cache order.
    assert run.nix_config is not None
    assert run.nix_config.startswith(env["NIX_CONFIG"] + "\n")
    assert lines["extra-trusted-public-keys"] == f"{KEYS['ci']} {KEYS['main']}"
    netrc = Path(lines["netrc-file"])
    assert netrc.is_relative_to(tmp_path / "tmp")
    assert netrc.read_text() == f"machine 127.0.0.1 password {TOKEN}\n"
    assert stat.S_IMODE(netrc.stat().st_mode) == 0o600
    assert stat.S_IMODE(netrc.parent.stat().st_mode) == 0o700
    assert [auth for _, auth in attic.auth] == [f"Bearer {TOKEN}"] * 3
    assert [cache for cache, _ in attic.auth] == ["ci", "missing", "main"]
    assert TOKEN not in run.output
    assert "missing" in run.output
    assert run.flags_before == run.flags_after
    assert run.leaked == []


@pytest.mark.parametrize("shell", SHELLS)
def test_setup_without_a_token_reads_public_caches_only(
    tmp_path: Path, attic: FakeAttic, shell: list[str]
) -> None:
    env = _settings_env(attic.url, ["main", "pub"], token_file=None)
    run = _run_setup(tmp_path, shell, env)

    lines = config_lines(run.nix_config)
    assert lines["extra-trusted-public-keys"] == KEYS["pub"]
    assert "netrc-file" not in lines
    assert [auth for _, auth in attic.auth] == [None, None]
    assert "main" in run.output


@pytest.mark.parametrize("shell", SHELLS)
def test_setup_before_attic_wrote_the_token_says_so_and_pulls_anonymously(
    tmp_path: Path, attic: FakeAttic, shell: list[str]
) -> None:
    """The optional token volume is an empty directory until attic-<env> writes the Secret."""
    mount = tmp_path / "attic-token"
    mount.mkdir()
    env = _settings_env(attic.url, ["main", "pub"], mount / "token")
    run = _run_setup(tmp_path, shell, env)

    lines = config_lines(run.nix_config)
    assert lines["extra-trusted-public-keys"] == KEYS["pub"]
    assert "netrc-file" not in lines
    assert [auth for _, auth in attic.auth] == [None, None]
    assert f"no CI token at {mount / 'token'} yet" in run.output
    assert "nothing will be pushed" in run.output
    assert run.leaked == []


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("content", ["", "not a token\n", "-rf\n"], ids=["empty", "spaces", "dash"])
def test_setup_ignores_a_token_file_that_is_not_a_jwt(
    tmp_path: Path, attic: FakeAttic, shell: list[str], content: str
) -> None:
    env = _settings_env(attic.url, ["pub"], token_file(tmp_path, content))
    run = _run_setup(tmp_path, shell, env)

    lines = config_lines(run.nix_config)
    assert lines["extra-trusted-public-keys"] == KEYS["pub"]
    assert "netrc-file" not in lines
    assert attic.auth == [("pub", None)]


@pytest.mark.parametrize("shell", SHELLS)
def test_setup_with_attic_down_warns_once_and_keeps_the_shell(
    tmp_path: Path, shell: list[str]
) -> None:
    env = _settings_env(_closed_port_url(), ["main", "ci", "pub"], token_file(tmp_path))
    run = _run_setup(tmp_path, shell, env)

    assert run.code == 0
    assert run.seconds < 5
    lines = config_lines(run.nix_config)
    assert "extra-trusted-public-keys" not in lines
    # The static substituters stay: Nix skips a failing one and falls back.
    assert lines["extra-substituters"].count("?priority=30") == 3
    assert "netrc-file" in lines
    warnings = [line for line in run.output.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "main ci pub" in warnings[0]
    assert run.flags_before == run.flags_after
    assert run.leaked == []


class DroppingServer:
    """Accepts connections and closes them at once, like a server that is not up yet."""

    def __init__(self) -> None:
        self.connections = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.mark.parametrize("shell", SHELLS)
def test_setup_stops_asking_a_server_that_cannot_answer(tmp_path: Path, shell: list[str]) -> None:
    server = DroppingServer()
    try:
        env = _settings_env(server.url, ["main", "ci", "pub"], token_file(tmp_path))
        run = _run_setup(tmp_path, shell, env)
    finally:
        server.close()

    # One failed connection is enough: the other caches would only add their timeouts.
    assert server.connections == 1
    assert "extra-trusted-public-keys" not in config_lines(run.nix_config)
    assert "main ci pub" in run.output


@pytest.mark.parametrize("shell", SHELLS)
def test_setup_never_traces_the_token_and_restores_xtrace(
    tmp_path: Path, attic: FakeAttic, shell: list[str]
) -> None:
    env = _settings_env(attic.url, ["main"], token_file(tmp_path))
    run = _run_setup(tmp_path, shell, env, flags="-eux")

    assert config_lines(run.nix_config)["extra-trusted-public-keys"] == KEYS["main"]
    assert "x" in run.flags_after
    assert "after=" in run.output  # the job's own commands are still traced
    assert TOKEN not in run.output


@pytest.mark.parametrize("shell", [s for s in SHELLS if s.id in ("dash", "busybox")])
@pytest.mark.parametrize("wget", ["gnu", "busybox"])
def test_setup_uses_wget_when_curl_is_absent(
    tmp_path: Path, attic: FakeAttic, shell: list[str], wget: str
) -> None:
    bin_dir = link_tools(tmp_path / "bin", ("mktemp",))
    if wget == "gnu":
        found = shutil.which("wget")
        if found is None:
            pytest.skip("GNU wget is not installed")
        (bin_dir / "wget").symlink_to(found)
    else:
        found = shutil.which("busybox")
        if found is None:
            pytest.skip("busybox is not installed")
        (bin_dir / "wget").symlink_to(found)
        (bin_dir / "timeout").symlink_to(found)
    env = _settings_env(attic.url, ["main", "missing", "pub"], token_file(tmp_path))
    run = _run_setup(tmp_path, shell, env, path=str(bin_dir))

    lines = config_lines(run.nix_config)
    assert lines["extra-trusted-public-keys"] == f"{KEYS['main']} {KEYS['pub']}"
    assert Path(lines["netrc-file"]).read_text() == f"machine 127.0.0.1 password {TOKEN}\n"
    assert [cache for cache, _ in attic.auth] == ["main", "missing", "pub"]
    assert TOKEN not in run.output


@pytest.mark.parametrize("shell", SHELLS)
def test_setup_without_any_http_client_only_warns(
    tmp_path: Path, attic: FakeAttic, shell: list[str]
) -> None:
    bin_dir = link_tools(tmp_path / "bin", ("mktemp",))
    env = _settings_env(attic.url, ["main"], token_file(tmp_path))
    run = _run_setup(tmp_path, shell, env, path=str(bin_dir))

    assert "extra-trusted-public-keys" not in config_lines(run.nix_config)
    assert attic.auth == []
    assert "warning" in run.output
    assert run.leaked == []


def test_setup_does_nothing_without_endpoint(tmp_path: Path) -> None:
    run = _run_setup(tmp_path, ["dash"], {"ATTIC_CACHES": "main"})

    assert run.nix_config == BASE_NIX_CONFIG
    assert "ATTIC_ENDPOINT" in run.output
