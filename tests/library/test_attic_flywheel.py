"""The nix runner's Attic wiring: setup.sh and flywheel.sh run for real in dash, bash (also in
POSIX mode, as nixos/nix's /bin/sh) and busybox sh against an in-process fake atticd and stub
``attic``/``nix`` commands; the runner settings; the ConfigMap construct."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cdktf import TerraformStack, Testing as CdktfTesting

from constructs_lib.runners.attic_flywheel import (
    FLYWHEEL_DIR,
    TOKEN_DIR,
    FlywheelJobSettings,
    flywheel_job_settings,
)
from constructs_lib.runners.flywheel_scripts import (
    AtticFlywheelScripts,
    AtticFlywheelScriptsProps,
    flywheel_scripts,
)
from constructs_lib.validation import PropsError
from tests.conftest import REPO
from tests.support.synth_output import resources

OPS = REPO / "constructs_lib" / "runners" / "ops"
SETUP = OPS / "setup.sh"
FLYWHEEL = OPS / "flywheel.sh"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.FLYWHEEL-TOKEN-SENTINEL.c2ln"
KEYS = {
    "main": "main:7cV2dPbp0Kzq2Jm6bP2D0c3tZr0Gd1zKc6Q7QpS9rGk=",
    "ci": "ci:Q2FjaGUtY2ktcHVibGljLWtleS1mb3ItdGVzdHMtb25seQ==",
    "pub": "pub:cHVibGljLWNhY2hlLWtleS1mb3ItdGVzdHMtb25seS4=",
}
BASE_NIX_CONFIG = "fallback = true"
# What a POSIX shell needs besides its builtins, linked into a PATH of its own per test.
TOOLS = ("mkdir", "chmod", "rm", "tail", "sleep", "mktemp")


def _shells() -> list[Any]:
    found = [
        pytest.param(["dash"], id="dash"),
        pytest.param(["bash"], id="bash"),
        # nixos/nix has no /bin/bash: gitlab-runner falls back to /bin/sh, bash in POSIX mode.
        pytest.param(["bash", "--posix"], id="bash-posix"),
    ]
    if shutil.which("busybox"):
        found.append(pytest.param(["busybox", "sh"], id="busybox"))
    return found


SHELLS = _shells()


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


# --------------------------------------------------------------------------------------------
# Helpers


def _tools(directory: Path, names: tuple[str, ...]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        found = shutil.which(name)
        assert found, f"{name} is needed by the test"
        (directory / name).symlink_to(found)
    return directory


def _shell_path(shell: list[str]) -> str:
    found = shutil.which(shell[0])
    assert found
    return found


def _token_file(tmp_path: Path, content: str = f"{TOKEN}\n") -> Path:
    path = tmp_path / "token"
    path.write_text(content)
    return path


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
        [_shell_path(shell), *shell[1:], "-c", driver],
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


def _config_lines(nix_config: str | None) -> dict[str, str]:
    assert nix_config is not None
    lines = {}
    for line in nix_config.splitlines():
        key, _, value = line.partition(" = ")
        lines[key] = value
    return lines


# --------------------------------------------------------------------------------------------
# setup.sh


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("flags", ["-eu", ""], ids=["set-eu", "no-flags"])
def test_setup_trusts_reachable_caches_in_order_and_writes_a_netrc(
    tmp_path: Path, attic: FakeAttic, shell: list[str], flags: str
) -> None:
    env = _settings_env(attic.url, ["ci", "missing", "main"], _token_file(tmp_path))
    run = _run_setup(tmp_path, shell, env, flags=flags)

    assert run.code == 0
    lines = _config_lines(run.nix_config)
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

    lines = _config_lines(run.nix_config)
    assert lines["extra-trusted-public-keys"] == KEYS["pub"]
    assert "netrc-file" not in lines
    assert [auth for _, auth in attic.auth] == [None, None]
    assert "main" in run.output


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("content", ["", "not a token\n", "-rf\n"], ids=["empty", "spaces", "dash"])
def test_setup_ignores_a_token_file_that_is_not_a_jwt(
    tmp_path: Path, attic: FakeAttic, shell: list[str], content: str
) -> None:
    env = _settings_env(attic.url, ["pub"], _token_file(tmp_path, content))
    run = _run_setup(tmp_path, shell, env)

    lines = _config_lines(run.nix_config)
    assert lines["extra-trusted-public-keys"] == KEYS["pub"]
    assert "netrc-file" not in lines
    assert attic.auth == [("pub", None)]


@pytest.mark.parametrize("shell", SHELLS)
def test_setup_with_attic_down_warns_once_and_keeps_the_shell(
    tmp_path: Path, shell: list[str]
) -> None:
    env = _settings_env(_closed_port_url(), ["main", "ci", "pub"], _token_file(tmp_path))
    run = _run_setup(tmp_path, shell, env)

    assert run.code == 0
    assert run.seconds < 5
    lines = _config_lines(run.nix_config)
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
        env = _settings_env(server.url, ["main", "ci", "pub"], _token_file(tmp_path))
        run = _run_setup(tmp_path, shell, env)
    finally:
        server.close()

    # One failed connection is enough: the other caches would only add their timeouts.
    assert server.connections == 1
    assert "extra-trusted-public-keys" not in _config_lines(run.nix_config)
    assert "main ci pub" in run.output


@pytest.mark.parametrize("shell", SHELLS)
def test_setup_never_traces_the_token_and_restores_xtrace(
    tmp_path: Path, attic: FakeAttic, shell: list[str]
) -> None:
    env = _settings_env(attic.url, ["main"], _token_file(tmp_path))
    run = _run_setup(tmp_path, shell, env, flags="-eux")

    assert _config_lines(run.nix_config)["extra-trusted-public-keys"] == KEYS["main"]
    assert "x" in run.flags_after
    assert "after=" in run.output  # the job's own commands are still traced
    assert TOKEN not in run.output


@pytest.mark.parametrize("shell", [s for s in SHELLS if s.id in ("dash", "busybox")])
@pytest.mark.parametrize("wget", ["gnu", "busybox"])
def test_setup_uses_wget_when_curl_is_absent(
    tmp_path: Path, attic: FakeAttic, shell: list[str], wget: str
) -> None:
    bin_dir = _tools(tmp_path / "bin", ("mktemp",))
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
    env = _settings_env(attic.url, ["main", "missing", "pub"], _token_file(tmp_path))
    run = _run_setup(tmp_path, shell, env, path=str(bin_dir))

    lines = _config_lines(run.nix_config)
    assert lines["extra-trusted-public-keys"] == f"{KEYS['main']} {KEYS['pub']}"
    assert Path(lines["netrc-file"]).read_text() == f"machine 127.0.0.1 password {TOKEN}\n"
    assert [cache for cache, _ in attic.auth] == ["main", "missing", "pub"]
    assert TOKEN not in run.output


@pytest.mark.parametrize("shell", SHELLS)
def test_setup_without_any_http_client_only_warns(
    tmp_path: Path, attic: FakeAttic, shell: list[str]
) -> None:
    bin_dir = _tools(tmp_path / "bin", ("mktemp",))
    env = _settings_env(attic.url, ["main"], _token_file(tmp_path))
    run = _run_setup(tmp_path, shell, env, path=str(bin_dir))

    assert "extra-trusted-public-keys" not in _config_lines(run.nix_config)
    assert attic.auth == []
    assert "warning" in run.output
    assert run.leaked == []


def test_setup_does_nothing_without_endpoint(tmp_path: Path) -> None:
    run = _run_setup(tmp_path, ["dash"], {"ATTIC_CACHES": "main"})

    assert run.nix_config == BASE_NIX_CONFIG
    assert "ATTIC_ENDPOINT" in run.output


# --------------------------------------------------------------------------------------------
# flywheel.sh with stub attic and nix

ATTIC_STUB = """#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/attic.calls"
case $1 in
    watch-store)
        echo $$ > "$RECORD/watch-store.pid"
        echo "watching for $2"
        if [ -n "${FAKE_IGNORE_TERM:-}" ]; then
            trap '' TERM
        else
            trap 'echo "watch-store: TERM"; exit 0' TERM
        fi
        while :; do sleep 1; done
        ;;
    push)
        waited=0
        while [ "$waited" -lt "${FAKE_PUSH_SECONDS:-0}" ]; do sleep 1; waited=$((waited + 1)); done
        echo "pushed $*"
        exit "${FAKE_PUSH_EXIT:-0}"
        ;;
esac
"""

NIX_STUB = """#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/nix.calls"
[ -n "${FAKE_NIX_FAIL:-}" ] && { echo "error: unable to start any build" >&2; exit 1; }
echo "$FAKE_CLIENT"
"""


@dataclass
class Job:
    """A job's working directory, stubs and environment for flywheel.sh."""

    tmp_path: Path
    shell: list[str]
    env: dict[str, str]
    record: Path
    work: Path

    def run(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_shell_path(self.shell), *self.shell[1:], str(FLYWHEEL), *args],
            env={**self.env, **extra_env},
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def calls(self, program: str) -> list[str]:
        path = self.record / f"{program}.calls"
        return path.read_text().splitlines() if path.exists() else []

    def watch_store_pid(self) -> int:
        return int((self.record / "watch-store.pid").read_text())


def _running(pid: int) -> bool:
    """Alive and not a zombie (the stub is orphaned, its reaper may be slow)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return not text.rsplit(") ", 1)[1].startswith("Z")


def _stub(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def _job(
    tmp_path: Path, shell: list[str], *, attic_on_path: bool, nix_on_path: bool, **env: str
) -> Job:
    record = tmp_path / "record"
    record.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "tmp").mkdir()
    bin_dir = _tools(tmp_path / "bin", TOOLS)
    client = tmp_path / "store" / "attic-client"
    _stub(client / "bin" / "attic", ATTIC_STUB)
    if attic_on_path:
        _stub(bin_dir / "attic", ATTIC_STUB)
    if nix_on_path:
        _stub(bin_dir / "nix", NIX_STUB)
    base = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path / "tmp"),
        "RECORD": str(record),
        "FAKE_CLIENT": str(client),
        "ATTIC_ENDPOINT": "http://attic.example:8080/",
        "ATTIC_PUSH_CACHE": "ci",
        "ATTIC_TOKEN_FILE": str(_token_file(tmp_path)),
    }
    return Job(tmp_path, shell, {**base, **env}, record, work)


@pytest.fixture
def cleanup() -> Iterator[list[Job]]:
    """Kill watch-store stubs a failing test left behind (only ours, by their recorded pid)."""
    jobs: list[Job] = []
    yield jobs
    for job in jobs:
        pid_file = job.record / "watch-store.pid"
        if pid_file.exists() and _running(pid := int(pid_file.read_text())):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("shell", SHELLS)
def test_flywheel_round_trip(tmp_path: Path, shell: list[str], cleanup: list[Job]) -> None:
    job = _job(tmp_path, shell, attic_on_path=True, nix_on_path=False)
    cleanup.append(job)

    started = time.monotonic()
    start = job.run("start")
    # watch-store keeps running, yet the step returns: it holds none of the job's pipes.
    assert time.monotonic() - started < 10
    assert start.returncode == 0, start.stdout + start.stderr
    pid = job.watch_store_pid()
    assert _running(pid)
    assert job.calls("attic") == [
        f"login attic-flywheel http://attic.example:8080/ {TOKEN}",
        "watch-store attic-flywheel:ci",
    ]
    (job.work / "result").symlink_to(tmp_path / "store")
    (job.work / "result-dev").symlink_to(tmp_path / "store")
    (job.work / "result-gone").symlink_to(tmp_path / "nowhere")
    (job.work / "results.json").write_text("{}")

    stop = job.run("stop")

    assert stop.returncode == 0
    assert job.calls("attic")[2:] == ["push attic-flywheel:ci result result-dev"]
    assert not _running(pid)
    assert "pushed 2 path(s)" in stop.stdout
    assert "watch-store stopped" in stop.stdout
    assert "watch-store: TERM" in stop.stdout  # the log tail
    assert TOKEN not in start.stdout + start.stderr + stop.stdout + stop.stderr
    # A second stop (after_script, once the script already stopped) does nothing.
    again = job.run("stop")
    assert again.returncode == 0
    assert "not started" in again.stdout
    assert len(job.calls("attic")) == 3


def test_stop_pushes_the_given_paths(tmp_path: Path, cleanup: list[Job]) -> None:
    job = _job(tmp_path, ["dash"], attic_on_path=True, nix_on_path=False)
    cleanup.append(job)
    (job.work / "result").symlink_to(tmp_path / "store")
    assert job.run("start").returncode == 0

    stop = job.run("stop", "/nix/store/aaaa-hello", "/nix/store/bbbb-world")

    assert stop.returncode == 0
    assert job.calls("attic")[-1] == (
        "push attic-flywheel:ci /nix/store/aaaa-hello /nix/store/bbbb-world"
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_stop_kills_a_watch_store_that_ignores_term_within_the_bound(
    tmp_path: Path, shell: list[str], cleanup: list[Job]
) -> None:
    job = _job(
        tmp_path,
        shell,
        attic_on_path=True,
        nix_on_path=False,
        FAKE_IGNORE_TERM="1",
        ATTIC_FLYWHEEL_STOP_WAIT="2",
    )
    cleanup.append(job)
    assert job.run("start").returncode == 0
    pid = job.watch_store_pid()

    started = time.monotonic()
    stop = job.run("stop")
    seconds = time.monotonic() - started

    assert stop.returncode == 0
    assert 2 <= seconds < 8
    assert not _running(pid)
    assert "ignored TERM for 2s and was killed" in stop.stdout


ZOMBIE_PARENT = """
import ctypes, subprocess, sys
# Orphans become our children and are never reaped, as under a job container's PID 1 that
# does not reap: a stopped watch-store then stays a zombie, which still answers kill -0.
assert ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
for step in ("start", "stop"):
    done = subprocess.run(sys.argv[1:] + [step], capture_output=True, text=True, timeout=60)
    print(done.returncode, done.stdout)
"""


def test_stop_counts_an_unreaped_watch_store_as_stopped(tmp_path: Path, cleanup: list[Job]) -> None:
    job = _job(tmp_path, ["dash"], attic_on_path=True, nix_on_path=False)
    cleanup.append(job)

    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", ZOMBIE_PARENT, _shell_path(job.shell), str(FLYWHEEL)],
        env=job.env,
        cwd=job.work,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    # Without the zombie check, stop would wait the full 15 s and then report a kill.
    assert time.monotonic() - started < 10
    assert "summary: nothing to push" in result.stdout
    assert "watch-store stopped" in result.stdout


@pytest.mark.parametrize(
    ("extra", "bound"),
    [
        ({"FAKE_PUSH_EXIT": "1"}, 5),
        ({"FAKE_PUSH_SECONDS": "30", "ATTIC_FLYWHEEL_PUSH_TIMEOUT": "2"}, 10),
    ],
    ids=["push-fails", "push-hangs"],
)
def test_a_failed_or_hanging_push_never_fails_the_job(
    tmp_path: Path, cleanup: list[Job], extra: dict[str, str], bound: int
) -> None:
    job = _job(tmp_path, ["dash"], attic_on_path=True, nix_on_path=False, **extra)
    cleanup.append(job)
    assert job.run("start").returncode == 0
    pid = job.watch_store_pid()

    started = time.monotonic()
    stop = job.run("stop", "/nix/store/aaaa-hello")

    assert time.monotonic() - started < bound
    assert stop.returncode == 0
    assert "push FAILED" in stop.stdout
    assert not _running(pid)


@pytest.mark.parametrize("shell", SHELLS)
def test_client_is_substituted_never_built(
    tmp_path: Path, shell: list[str], cleanup: list[Job]
) -> None:
    job = _job(tmp_path, shell, attic_on_path=False, nix_on_path=True)
    cleanup.append(job)

    start = job.run("start")

    assert start.returncode == 0
    [call] = job.calls("nix")
    assert call.split() == [
        "build",
        "--max-jobs",
        "0",
        "--no-link",
        "--print-out-paths",
        "nixpkgs#attic-client",
    ]
    # The substituted client did the login and runs watch-store.
    assert job.calls("attic")[1] == "watch-store attic-flywheel:ci"
    assert _running(job.watch_store_pid())
    assert job.run("stop").returncode == 0


def test_client_installable_can_be_pinned(tmp_path: Path, cleanup: list[Job]) -> None:
    job = _job(
        tmp_path,
        ["dash"],
        attic_on_path=False,
        nix_on_path=True,
        ATTIC_CLIENT="github:zhaofengli/attic/abc123#attic-client",
    )
    cleanup.append(job)
    assert job.run("start").returncode == 0
    assert job.calls("nix")[0].endswith(" github:zhaofengli/attic/abc123#attic-client")
    assert job.run("stop").returncode == 0


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("nix_on_path", "extra", "said"),
    [
        (False, {}, "no attic client and no nix"),
        (True, {"FAKE_NIX_FAIL": "1"}, "unable to start any build"),
    ],
    ids=["no-attic-no-nix", "client-not-in-any-cache"],
)
def test_without_a_client_start_and_stop_exit_0(
    tmp_path: Path, shell: list[str], nix_on_path: bool, extra: dict[str, str], said: str
) -> None:
    job = _job(tmp_path, shell, attic_on_path=False, nix_on_path=nix_on_path, **extra)

    start = job.run("start")
    stop = job.run("stop")

    assert (start.returncode, stop.returncode) == (0, 0)
    assert said in start.stdout
    assert "not started" in stop.stdout
    assert not (job.record / "watch-store.pid").exists()


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"ATTIC_PUSH_CACHE": ""}, "only pulls"),
        ({"ATTIC_TOKEN_FILE": "/nonexistent/token"}, "no readable push token"),
        ({"ATTIC_TOKEN_FILE": ""}, "no readable push token"),
    ],
    ids=["no-push-cache", "token-missing", "token-unset"],
)
def test_without_push_settings_start_and_stop_explain_and_do_nothing(
    tmp_path: Path, env: dict[str, str], said: str
) -> None:
    job = _job(tmp_path, ["dash"], attic_on_path=True, nix_on_path=True, **env)

    start = job.run("start")
    stop = job.run("stop")

    assert (start.returncode, stop.returncode) == (0, 0)
    assert said in start.stdout
    assert said in stop.stdout
    assert job.calls("attic") == []
    assert job.calls("nix") == []


def test_usage_error_is_not_silent(tmp_path: Path) -> None:
    job = _job(tmp_path, ["dash"], attic_on_path=True, nix_on_path=False)
    result = job.run("push")
    assert result.returncode == 2
    assert "usage" in result.stdout


# --------------------------------------------------------------------------------------------
# flywheel_job_settings


def _settings(**overrides: Any) -> FlywheelJobSettings:
    args: dict[str, Any] = {
        "endpoint": "https://attic.example.com/",
        "caches": ["main", "ci"],
        "push_cache": "ci",
        "token_secret": "attic-ci-token",
        "config_map": "attic-flywheel",
    }
    args.update(overrides)
    return flywheel_job_settings(**args)


def test_settings_environment_order_and_static_nix_config() -> None:
    settings = _settings(priority=25)

    names = [item.split("=", 1)[0] for item in settings.environment]
    assert names == [
        "ATTIC_ENDPOINT",
        "ATTIC_CACHES",
        "ATTIC_PUSH_CACHE",
        "ATTIC_TOKEN_FILE",
        "NIX_CONFIG",
    ]
    env = dict(item.split("=", 1) for item in settings.environment)
    assert env["ATTIC_CACHES"] == "main ci"
    assert env["ATTIC_PUSH_CACHE"] == "ci"
    assert env["ATTIC_TOKEN_FILE"] == f"{TOKEN_DIR}/token"
    lines = _config_lines(env["NIX_CONFIG"])
    assert lines["extra-substituters"] == (
        "https://attic.example.com/main?priority=25 https://attic.example.com/ci?priority=25"
    )
    assert lines["fallback"] == "true"
    assert lines["connect-timeout"] == "5"
    assert lines["extra-experimental-features"] == "nix-command flakes"
    assert settings.pre_build_script == (
        f"if [ -r {FLYWHEEL_DIR}/setup.sh ]; then . {FLYWHEEL_DIR}/setup.sh; fi"
    )


def test_settings_pull_only_without_token() -> None:
    settings = _settings(push_cache=None, token_secret=None)

    names = [item.split("=", 1)[0] for item in settings.environment]
    assert names == ["ATTIC_ENDPOINT", "ATTIC_CACHES", "NIX_CONFIG"]
    assert set(settings.volumes) == {"config_map"}


# gitlab-runner common/config.go, KubernetesConfigMap / KubernetesSecret toml tags.
VOLUME_KEYS = {"name", "mount_path", "sub_path", "read_only", "items"}


def test_settings_volumes_are_runner_toml() -> None:
    settings = _settings()

    assert set(settings.volumes) == {"config_map", "secret"}
    for entries in settings.volumes.values():
        for entry in entries:
            assert set(entry) <= VOLUME_KEYS
            assert entry["read_only"] is True
    [scripts] = settings.volumes["config_map"]
    assert (scripts["name"], scripts["mount_path"]) == ("attic-flywheel", FLYWHEEL_DIR)
    [token] = settings.volumes["secret"]
    assert token == {
        "name": "attic-ci-token",
        "mount_path": TOKEN_DIR,
        "read_only": True,
        "items": {"token": "token"},
    }
    # Round trip through TOML the way the runner's config is written and read.
    runner = {
        "runners": [
            {
                "environment": list(settings.environment),
                "pre_build_script": settings.pre_build_script,
                "kubernetes": {"volumes": settings.volumes},
            }
        ]
    }
    [back] = tomllib.loads(tomli_w.dumps(runner))["runners"]
    assert back["environment"] == list(settings.environment)
    assert back["kubernetes"]["volumes"]["secret"] == [token]
    assert back["kubernetes"]["volumes"]["config_map"] == [scripts]


def test_pre_build_script_does_not_end_the_job_when_the_scripts_are_absent() -> None:
    script = _settings().pre_build_script
    result = subprocess.run(
        ["dash", "-ec", f"{script}\necho still-here"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"]},
    )
    assert Path(FLYWHEEL_DIR).exists() or result.stdout == "still-here\n"


def test_settings_validation_lists_every_problem() -> None:
    with pytest.raises(PropsError) as caught:
        flywheel_job_settings(
            endpoint="https://attic.example.com",
            caches=["main", "bad name", "main"],
            push_cache="other",
            token_secret=None,
            config_map="Attic_Flywheel",
            priority=40,
        )
    problems = "\n".join(caught.value.problems)
    for expected in (
        "endpoint: 'https://attic.example.com'",
        "caches: 'bad name' is not a cache name",
        "caches: 'main' is listed twice",
        "config_map: 'Attic_Flywheel'",
        "priority: 40",
        "push_cache: 'other' is not one of caches",
        "push_cache: pushing to 'other' needs a token_secret",
    ):
        assert expected in problems
    assert len(caught.value.problems) == 7


def test_settings_reject_empty_caches_and_clashing_volume_names() -> None:
    with pytest.raises(PropsError) as caught:
        _settings(caches=[], push_cache=None, token_secret="same", config_map="same")
    assert caught.value.problems == [
        "caches: at least one cache is needed",
        "token_secret: 'same' is also config_map; gitlab-runner names each volume after its "
        "object, so the two must differ",
    ]


# --------------------------------------------------------------------------------------------
# AtticFlywheelScripts


def test_scripts_config_map_holds_both_scripts() -> None:
    stack = TerraformStack(CdktfTesting.app(), "test")
    scripts = AtticFlywheelScripts(
        stack, "Flywheel", AtticFlywheelScriptsProps(namespace="gitlab-runner-jobs")
    )
    doc = json.loads(CdktfTesting.synth(stack))

    [config_map] = resources(doc, "kubernetes_config_map_v1").values()
    metadata = config_map["metadata"]
    assert (metadata["name"], metadata["namespace"]) == ("attic-flywheel", "gitlab-runner-jobs")
    assert metadata["labels"]["app.kubernetes.io/part-of"] == "gitlab-runners"
    # Terraform reads '${' and '%{' as templates: the data carries them escaped, and the
    # object gets the scripts exactly as written.
    data = {
        key: text.replace("$${", "${").replace("%%{", "%{")
        for key, text in config_map["data"].items()
    }
    assert data == {"setup.sh": SETUP.read_text(), "flywheel.sh": FLYWHEEL.read_text()}
    assert flywheel_scripts() == data
    assert "${" in SETUP.read_text()
    assert re.search(r"(?<!\$)\$\{", config_map["data"]["setup.sh"]) is None
    assert scripts.name == "attic-flywheel"
    assert TOKEN_DIR not in config_map["data"]["setup.sh"]  # the token path comes from env


def test_scripts_config_map_validation() -> None:
    stack = TerraformStack(CdktfTesting.app(), "test")
    with pytest.raises(PropsError) as caught:
        AtticFlywheelScripts(
            stack, "Flywheel", AtticFlywheelScriptsProps(namespace="Jobs", name="a.b")
        )
    assert len(caught.value.problems) == 2
