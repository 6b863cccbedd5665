"""HTTP and Kubernetes API client of the ops scripts that run inside pods.

JSON over urllib: redirects are never followed, an HTTP error status comes back as a
:class:`Response`, no answer at all raises :class:`TransportError`. :class:`KubeApi` adds the
pod's service account (token and CA from ``/var/run/secrets/kubernetes.io/serviceaccount``, the
API server from ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT``) and retries connection
failures.

The scripts import this module by its package name; when a construct writes a script's
ConfigMap, :func:`constructs_lib.kubernetes.ops.bundle.shipped_script` inlines this file in place
of that import, so a pod runs one self-contained file. Hence: standard library only, Python 3.11
or newer; top-level definitions only (they become the script's globals, and a clash with one of
the script's own fails the synth); nothing printed except through :func:`log`/:func:`log_error`.
No message built here contains a token or an Authorization header; response bodies appear only
through :meth:`Response.describe`, whitespace-collapsed and truncated to :data:`MAX_BODY_CHARS`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_SA_TOKEN_FILE = SA_DIR / "token"
DEFAULT_CA_FILE = SA_DIR / "ca.crt"
#: Error bodies are printed up to this many characters.
MAX_BODY_CHARS = 300

Sleep = Callable[[float], None]
Clock = Callable[[], float]
Log = Callable[[str], None]


def log(line: str) -> None:
    print(line, flush=True)


def log_error(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class OpsError(Exception):
    """An operation failed; the message says which and why (never contains a credential)."""


class TransportError(OpsError):
    """No HTTP response at all: connection refused, reset, timed out, TLS failure."""


class SpecError(Exception):
    """The command line, a spec or a credential file is unusable; the message lists every
    problem (the scripts exit 2)."""


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SpecError(f"{path}: cannot read: {err.strerror or err}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SpecError(f"{path}: not valid JSON: {err}") from None


def read_secret_file(path: Path, what: str) -> str:
    """The stripped content of a credential file; ``SpecError`` never shows the content."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise SpecError(f"{what} {path}: cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise SpecError(f"{what} {path}: not UTF-8 text") from None
    if not value:
        raise SpecError(f"{what} {path} is empty")
    return value


def parse_time(value: object) -> float | None:
    """An RFC 3339 timestamp with a UTC offset or ``Z`` as epoch seconds, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None if it is empty or not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None

    def describe(self) -> str:
        """``HTTP <status>: <body>`` for error messages: a Kubernetes ``Status`` object's
        message, any other body as it is; on one line, truncated."""
        payload = self.json()
        if (
            isinstance(payload, dict)
            and payload.get("kind") == "Status"
            and isinstance(payload.get("message"), str)
        ):
            text = str(payload["message"])
        else:
            text = self.body.decode("utf-8", errors="replace")
        text = " ".join(text.split())
        if len(text) > MAX_BODY_CHARS:
            text = text[:MAX_BODY_CHARS] + "..."
        return f"HTTP {self.status}: {text}" if text else f"HTTP {self.status}"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow redirects: the Authorization header must not travel to another host. A
    3xx comes back as an ``HTTPError`` (a :class:`Response` from :class:`HttpClient`)."""

    def redirect_request(  # noqa: PLR0917 (urllib's signature)
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> None:
        return None


def opener(context: ssl.SSLContext | None = None) -> urllib.request.OpenerDirector:
    """A urllib opener that never follows redirects; ``context`` verifies HTTPS servers
    (default: the system's CAs)."""
    handlers: list[urllib.request.BaseHandler] = [NoRedirect()]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


class HttpClient:
    """JSON over HTTP(S) with a timeout; an HTTP error status comes back as a ``Response``."""

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        context: ssl.SSLContext | None = None,
        user_agent: str = "attic-iac-ops",
    ) -> None:
        self._timeout = timeout
        self._user_agent = user_agent
        self._opener = opener(context)

    def request(
        self, method: str, url: str, *, bearer: str | None = None, body: Any = None
    ) -> Response:
        """One request; ``body`` is sent as JSON; ``TransportError`` if nothing answered."""
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=self._timeout) as resp:
                return Response(resp.status, resp.read())
        except urllib.error.HTTPError as err:
            try:
                return Response(err.code, err.read())
            finally:
                err.close()
        except urllib.error.URLError as err:
            raise TransportError(f"{method} {url}: {err.reason}") from None
        except (OSError, http.client.HTTPException) as err:
            raise TransportError(f"{method} {url}: {type(err).__name__}: {err}") from None


class KubeApi:
    """Kubernetes API calls with the pod's service-account token; connection failures are
    retried, an HTTP error status comes back as a ``Response``."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        client: HttpClient | None = None,
        sleep: Sleep = time.sleep,
        retries: int = 2,
        retry_delay: float = 1.0,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._client = client or HttpClient()
        self._sleep = sleep
        self._retries = retries
        self._retry_delay = retry_delay

    @classmethod
    def from_environment(
        cls,
        api_server: str | None,
        sa_token_file: Path,
        ca_file: Path,
        environ: Mapping[str, str] = os.environ,
        *,
        user_agent: str = "attic-iac-ops",
    ) -> KubeApi:
        """The in-cluster API server (or ``api_server``) with the service account's token;
        ``SpecError`` if the environment or the credential files are unusable."""
        if api_server is None:
            host = environ.get("KUBERNETES_SERVICE_HOST")
            port = environ.get("KUBERNETES_SERVICE_PORT", "443")
            if not host:
                raise SpecError(
                    "KUBERNETES_SERVICE_HOST is not set (not in a pod?); pass --api-server"
                )
            if ":" in host and not host.startswith("["):
                host = f"[{host}]"
            api_server = f"https://{host}:{port}"
        token = read_secret_file(sa_token_file, "service-account token")
        context = None
        if api_server.startswith("https://"):
            if not ca_file.is_file():
                raise SpecError(f"CA file {ca_file} not found; pass --ca-file")
            try:
                context = ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as err:
                raise SpecError(f"CA file {ca_file}: {err}") from None
        elif not api_server.startswith("http://"):
            raise SpecError(f"--api-server {api_server!r} must be an http(s) URL")
        client = HttpClient(context=context, user_agent=user_agent)
        return cls(api_server, token, client=client)

    @classmethod
    def from_arguments(
        cls,
        args: argparse.Namespace,
        environ: Mapping[str, str] | None = None,
        *,
        user_agent: str = "attic-iac-ops",
    ) -> KubeApi:
        """:meth:`from_environment` with the options :func:`add_kube_arguments` added
        (``environ`` defaults to ``os.environ``)."""
        return cls.from_environment(
            args.api_server,
            args.sa_token_file,
            args.ca_file,
            os.environ if environ is None else environ,
            user_agent=user_agent,
        )

    def request(self, method: str, path: str, body: object = None) -> Response:
        """One call to ``<base URL><path>``; ``TransportError`` once every retry got no
        answer."""
        for attempt in range(self._retries + 1):
            try:
                return self._client.request(
                    method, self._base + path, bearer=self._token, body=body
                )
            except TransportError as err:
                if attempt == self._retries:
                    raise TransportError(f"Kubernetes API unreachable: {err}") from None
                self._sleep(self._retry_delay)
        raise AssertionError("unreachable")


def add_kube_arguments(parser: argparse.ArgumentParser) -> None:
    """``--api-server``, ``--sa-token-file`` and ``--ca-file``, for
    :meth:`KubeApi.from_arguments`."""
    parser.add_argument(
        "--api-server",
        help="Kubernetes API base URL (default https://$KUBERNETES_SERVICE_HOST:"
        "$KUBERNETES_SERVICE_PORT)",
    )
    parser.add_argument("--sa-token-file", type=Path, default=DEFAULT_SA_TOKEN_FILE)
    parser.add_argument("--ca-file", type=Path, default=DEFAULT_CA_FILE)
