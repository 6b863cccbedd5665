"""Dashboard fixtures shared by every dashboard test: the example config's dev environment,
the demo fleet in the fakes, and the fakes served on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from config_model.loader import EXAMPLE_CONFIG, LoadedConfig
from config_model.organization import OrganizationConfig
from dashboard.fakes.demo_data import Demo, build_demo
from dashboard.fakes.serve import serve_in_thread

DEMO_PUBLIC_URL = "http://127.0.0.1:8080"
LOCAL_NAMES = {"localhost", "testserver"}


def _local(host: Any) -> bool:
    if host in (None, "") or str(host) in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dashboard tests talk to fakes in-process or on loopback only: a connection or a name
    lookup for anything else fails the test."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def checked(address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if not isinstance(address, str | bytes) and not _local(host):
            raise AssertionError(f"a dashboard test tried to reach the network: {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        checked(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        checked(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        checked((host.decode() if isinstance(host, bytes) else host, 0))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def dev_config(example_config: LoadedConfig) -> OrganizationConfig:
    """The example config's ``dev`` environment, resolved."""
    return example_config.environments["dev"].config


@pytest.fixture
def demo(dev_config: OrganizationConfig) -> Demo:
    """A fresh demo fleet (not served): change it freely."""
    return build_demo(
        dev_config,
        "dev",
        public_url=DEMO_PUBLIC_URL,
        config_text=EXAMPLE_CONFIG.read_text(),
        now=time.time(),
    )


@dataclass(frozen=True)
class ServedDemo:
    demo: Demo
    gitlab_url: str
    kubernetes_url: str
    prometheus_url: str


@pytest.fixture
def served_demo(demo: Demo) -> Iterator[ServedDemo]:
    """The demo fleet's three fakes, each on its own 127.0.0.1 port."""
    gitlab_url, stop_gitlab = serve_in_thread(demo.gitlab.build_app())
    kubernetes_url, stop_kubernetes = serve_in_thread(demo.kubernetes.build_app())
    prometheus_url, stop_prometheus = serve_in_thread(demo.prometheus.build_app())
    try:
        yield ServedDemo(demo, gitlab_url, kubernetes_url, prometheus_url)
    finally:
        demo.kubernetes.close_watches()
        for stop in (stop_gitlab, stop_kubernetes, stop_prometheus):
            stop()
