"""A local HTTP server that plays atticd and GitLab's API for ``attic-iac health``, and the
helpers its tests share: a config with public and private caches, running the command."""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from config_model.loader import EXAMPLE_CONFIG
from iac_tools.cli import main

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
    for name in ("dind", "nix_protected", "rocky8", "rocky9"):
        types[name] = {"enabled": False}
    types["nix"]["replicas"] = 2
    data["runners"]["attic"]["push_token"] = None  # only nix_protected jobs would mount it
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
