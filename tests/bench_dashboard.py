"""``make bench-dashboard``: the dashboard's web tier with N concurrent SSE viewers, on loopback.

The server is its own process (tests/bench_dashboard_server.py): the real app of
:func:`dashboard.web.create_app` (pages, SSE hub, middleware, JSON access log to /dev/null) and
its two uvicorn listeners, on a store filled with a synthetic fleet larger than the demo's, and
one signed-in session. No collector runs: collection costs the same for one viewer or a
thousand, and what grows with viewers is what this measures. The driver (this process, asyncio
on raw sockets so that it stays light beside the server on a 2-core machine):

1. idle: the server's RSS, and its CPU over ``BENCH_IDLE_SECONDS``, with no client;
2. opens ``BENCH_SSE_CLIENTS`` streams and waits for each one's snapshot: memory per client is
   the RSS it added, divided by the clients;
3. idle again with every stream open (heartbeats only): the server's CPU;
4. fan-out, ``BENCH_ROUNDS`` times: the server flips a runner online/offline in the store and
   reports the monotonic time just before ``store.update``; each stream's read of that version's
   event id gives the delay from the change to the bytes in every viewer's socket;
5. pages, while every stream stays open: one keep-alive connection, then ``BENCH_WORKERS`` at
   once, GET the fleet page for ``BENCH_PAGE_SECONDS`` each (at most ``BENCH_MAX_REQUESTS``);
6. SIGTERM with every stream open: the time to a clean exit.

Every loop is bounded in count and time, and only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
CLIENTS = int(os.environ.get("BENCH_SSE_CLIENTS", "500"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "8"))
PAGE_SECONDS = float(os.environ.get("BENCH_PAGE_SECONDS", "10"))
MAX_REQUESTS = int(os.environ.get("BENCH_MAX_REQUESTS", "20000"))
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "20"))
ENVIRONMENT = "dev"
HOST = "127.0.0.1"
EVENT_ID = re.compile(rb"\nid: (\d+)-")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))


class Proc:
    """The server's RSS and CPU time from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.hz = os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.hz

    async def cpu_percent(self, seconds: float) -> float:
        before, started = self.cpu_seconds(), time.monotonic()
        await asyncio.sleep(seconds)
        return 100 * (self.cpu_seconds() - before) / (time.monotonic() - started)


class Stream:
    """One SSE viewer on a raw socket: when it first read each version's event id."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self.ended = False
        self.task: asyncio.Task[None] | None = None

    async def open(self, port: int, cookie: str) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(
            (
                f"GET /api/e/{ENVIRONMENT}/events HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                f"Accept: text/event-stream\r\nCookie: {cookie}\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"stream refused: {head.splitlines()[0]!r}")
        self.writer = writer
        self.task = asyncio.create_task(self._pump(reader))

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        tail = b""
        while data := await reader.read(65536):
            now = time.monotonic()
            text = tail + data
            for match in EVENT_ID.finditer(text):
                self.seen.setdefault(int(match.group(1)), now)
            tail = text[-64:]
        self.ended = True


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, cookie: str):
    """One keep-alive GET; (status, body bytes)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nCookie: {cookie}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    length = headers.get("content-length")
    if length is None:
        raise RuntimeError(f"{path}: no content-length")
    body = await reader.readexactly(int(length))
    return int(lines[0].split()[1]), body


async def _pages(port: int, cookie: str, workers: int) -> tuple[list[float], int]:
    """Latencies (s) of the fleet page from ``workers`` connections, and its size in bytes."""
    latencies: list[float] = []
    size = 0
    deadline = time.monotonic() + PAGE_SECONDS

    async def worker() -> None:
        nonlocal size
        reader, writer = await asyncio.open_connection(HOST, port)
        while time.monotonic() < deadline and len(latencies) < MAX_REQUESTS:
            started = time.perf_counter()
            status, body = await _get(reader, writer, f"/e/{ENVIRONMENT}/", cookie)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"fleet page: {status}")
            size = len(body)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(workers)))
    return latencies, size


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _metric(port: int, name: str) -> float:
    reader, writer = await asyncio.open_connection(HOST, port)
    _, body = await _get(reader, writer, "/metrics", "")
    writer.close()
    for line in body.decode().splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise RuntimeError(f"{name} not in /metrics")


async def _drive(server: subprocess.Popen[bytes], report: IO[str], ports: tuple[int, int]) -> dict:
    port, metrics_port = ports
    hello = json.loads(await asyncio.to_thread(report.readline))
    cookie = hello["cookie"]
    proc = Proc(server.pid)
    for _ in range(200):
        try:
            await _metric(metrics_port, "attic_iac_dashboard_sse_clients")
            break
        except OSError:
            await asyncio.sleep(0.05)
    out: dict[str, Any] = {}
    # 1. idle, no client (one page first, so templates are loaded)
    reader, writer = await asyncio.open_connection(HOST, port)
    await _get(reader, writer, f"/e/{ENVIRONMENT}/", cookie)
    writer.close()
    await asyncio.sleep(1)
    out["rss_idle_mib"] = proc.rss_kib() / 1024
    out["cpu_idle_0"] = await proc.cpu_percent(IDLE_SECONDS)
    # 2. open the streams, 50 at a time
    streams = [Stream() for _ in range(CLIENTS)]
    started = time.monotonic()
    for batch in range(0, CLIENTS, 50):
        await asyncio.gather(*(s.open(port, cookie) for s in streams[batch : batch + 50]))
    while not all(s.seen for s in streams) and time.monotonic() - started < 60:
        await asyncio.sleep(0.05)
    out["connect_seconds"] = time.monotonic() - started
    out["snapshots"] = sum(bool(s.seen) for s in streams)
    await asyncio.sleep(1)
    out["rss_streams_mib"] = proc.rss_kib() / 1024
    out["kib_per_client"] = (out["rss_streams_mib"] - out["rss_idle_mib"]) * 1024 / CLIENTS
    out["sse_clients_gauge"] = await _metric(metrics_port, "attic_iac_dashboard_sse_clients")
    # 3. idle with every stream open
    out["cpu_idle_n"] = await proc.cpu_percent(IDLE_SECONDS)
    # 4. fan-out
    delays: list[float] = []
    missed = 0
    for _ in range(ROUNDS):
        assert server.stdin is not None
        server.stdin.write(b"flip\n")
        server.stdin.flush()
        change = json.loads(await asyncio.to_thread(report.readline))
        version, at = change["version"], change["t"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(version in s.seen for s in streams):
            await asyncio.sleep(0.01)
        delays += [s.seen[version] - at for s in streams if version in s.seen]
        missed += sum(version not in s.seen for s in streams)
        await asyncio.sleep(0.3)
    out["fanout"], out["fanout_missed"] = delays, missed
    # 5. pages while the streams stay open: one connection, then WORKERS at once
    for workers in (1, WORKERS):
        page_started = time.monotonic()
        latencies, size = await _pages(port, cookie, workers)
        rate = len(latencies) / (time.monotonic() - page_started)
        out.setdefault("pages", {})[workers] = (latencies, rate)
        out["page_bytes"] = size
    out["dropped"] = await _metric(metrics_port, "attic_iac_dashboard_sse_dropped_total")
    out["streams_open"] = sum(not s.ended for s in streams)
    # 6. a graceful stop with every stream open
    stopping = time.monotonic()
    server.send_signal(signal.SIGTERM)
    await asyncio.to_thread(server.wait, 30)
    out["stop_seconds"] = time.monotonic() - stopping
    out["stop_code"] = server.returncode
    await asyncio.sleep(0.1)
    out["streams_ended"] = sum(s.ended for s in streams)
    return out


def _print(out: dict) -> None:
    ms = 1000
    fanout = out["fanout"]
    print(f"dashboard web tier, {CLIENTS} SSE clients on loopback ({os.cpu_count()} cores)")
    print(
        f"  streams: {out['snapshots']}/{CLIENTS} snapshots in {out['connect_seconds']:.2f} s; "
        f"gauge {out['sse_clients_gauge']:.0f}; dropped {out['dropped']:.0f}; "
        f"open after the page load {out['streams_open']}"
    )
    print(
        f"  memory: {out['rss_idle_mib']:.1f} MiB idle, {out['rss_streams_mib']:.1f} MiB with "
        f"the streams: {out['kib_per_client']:.1f} KiB per SSE client"
    )
    print(
        f"  CPU at idle: {out['cpu_idle_0']:.2f} % of a core without clients, "
        f"{out['cpu_idle_n']:.2f} % with {CLIENTS} streams (over {IDLE_SECONDS:.0f} s)"
    )
    print(
        f"  fan-out ({ROUNDS} changes x {CLIENTS} clients): p50 "
        f"{_percentile(fanout, 0.5) * ms:.1f} ms, p99 {_percentile(fanout, 0.99) * ms:.1f} ms, "
        f"max {max(fanout) * ms:.1f} ms; missed {out['fanout_missed']}"
    )
    for workers, (pages, rate) in out["pages"].items():
        print(
            f"  fleet page ({out['page_bytes'] / 1024:.0f} KiB) on {workers} connection(s), "
            f"streams open: p50 {_percentile(pages, 0.5) * ms:.1f} ms, "
            f"p99 {_percentile(pages, 0.99) * ms:.1f} ms, mean "
            f"{statistics.fmean(pages) * ms:.1f} ms ({len(pages)} requests, {rate:.0f}/s)"
        )
    print(
        f"  SIGTERM with {CLIENTS} streams open: exit {out['stop_code']} after "
        f"{out['stop_seconds']:.2f} s, {out['streams_ended']} streams ended by the server"
    )


def main() -> int:
    raise_fd_limit()
    from config_model.loader import EXAMPLE_CONFIG

    port, metrics_port, closed = _free_port(), _free_port(), _free_port()
    report_read, report_write = os.pipe()
    with tempfile.TemporaryDirectory() as tmp:
        secrets_dir = Path(tmp) / "secrets"
        secrets_dir.mkdir()
        for name in ("oauth-client-secret", "session-key", "gitlab-read-token"):
            (secrets_dir / name).write_text(os.urandom(24).hex() + "\n")
        loopback = f"http://{HOST}:{closed}"  # nothing listens: no collector runs anyway
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ATTIC_IAC_CONFIG": str(EXAMPLE_CONFIG),
            "DASHBOARD_ENVIRONMENT": ENVIRONMENT,
            "DASHBOARD_PUBLIC_URL": "https://dash.example.test",
            "DASHBOARD_GITLAB_URL": loopback,
            "DASHBOARD_GITLAB_GROUP": "acme/runners",
            "DASHBOARD_CONFIG_PROJECT": "acme/infra",
            "DASHBOARD_OAUTH_CLIENT_ID": "bench",
            "DASHBOARD_SECRETS_DIR": str(secrets_dir),
            "DASHBOARD_PROMETHEUS_URL": loopback,
            "DASHBOARD_KUBERNETES_URL": loopback,
            "DASHBOARD_HOST": HOST,
            "DASHBOARD_PORT": str(port),
            "DASHBOARD_METRICS_PORT": str(metrics_port),
            "DASHBOARD_ROLE_RECHECK": "12h",
            "DASHBOARD_SSE_MAX_CLIENTS": str(max(1000, CLIENTS + 10)),
        }
        with open(Path(tmp) / "server.err", "wb") as errors:
            server = subprocess.Popen(
                [sys.executable, "-m", "tests.bench_dashboard_server", str(report_write)],
                cwd=REPO,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                pass_fds=(report_write,),
            )
        os.close(report_write)
        try:
            with os.fdopen(report_read) as report:
                out = asyncio.run(_drive(server, report, (port, metrics_port)))
        finally:
            server.kill()
            server.wait()
        if out["stop_code"] != 0:
            print((Path(tmp) / "server.err").read_text(), file=sys.stderr)
    _print(out)
    ok = (
        out["snapshots"] == CLIENTS
        and out["fanout_missed"] == 0
        and out["dropped"] == 0
        and out["stop_code"] == 0
    )
    print("every client got every change, none dropped, clean stop" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
