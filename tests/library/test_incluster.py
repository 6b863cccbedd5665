"""The in-cluster HTTP and Kubernetes client shared by the ops scripts, against local HTTP(S)
servers, and the synth-time step that inlines it into each shipped script."""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from constructs_lib.attic.ops import attic_ops
from constructs_lib.attic.ops_pod import ops_script
from constructs_lib.kubernetes.ops import incluster
from constructs_lib.kubernetes.ops.bundle import MODULE, BundleError, inline
from constructs_lib.kubernetes.ops.incluster import (
    DEFAULT_CA_FILE,
    DEFAULT_SA_TOKEN_FILE,
    MAX_BODY_CHARS,
    HttpClient,
    KubeApi,
    Response,
    SpecError,
    TransportError,
)
from constructs_lib.runners.job_cleanup import cleanup_script
from constructs_lib.runners.ops import runner_cleanup
from tests.support.fake_http import (
    FakeServer,
    Recorded,
    free_port,
    kube_status,
    make_ca,
    no_proxies,  # noqa: F401 (autouse fixture)
    serving,
)
from tests.support.ops_scripts import imported_modules, non_stdlib_imports

TOKEN = "KUBE-SA-TOKEN-SENTINEL"


class Echo(FakeServer):
    """Answers ``answers[path]`` (default 200 ``{"ok": true}``), with ``headers[path]``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answers: dict[str, tuple[int, Any]] = {}
        self.headers: dict[str, dict[str, str]] = {}

    def respond(self, request: Recorded) -> tuple[int, Any]:
        return self.answers.get(request.path, (200, {"ok": True}))

    def response_headers(self, request: Recorded) -> dict[str, str]:
        return self.headers.get(request.path, {})


@pytest.fixture
def server() -> Iterator[Echo]:
    with serving(Echo()) as echo:
        yield echo


def _closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


# --------------------------------------------------------------------------------------------
# HttpClient and Response


def test_json_requests_carry_the_body_and_the_bearer_only_when_given(server: Echo) -> None:
    client = HttpClient(user_agent="attic-iac-test")

    posted = client.request("POST", server.url + "things", bearer=TOKEN, body={"a": [1, 2]})
    fetched = client.request("GET", server.url + "things")

    assert (posted.status, posted.json()) == (200, {"ok": True})
    assert fetched.status == 200
    post, get = server.requests
    assert (post.method, post.path, post.body) == ("POST", "/things", {"a": [1, 2]})
    assert post.headers["Authorization"] == f"Bearer {TOKEN}"
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["Accept"] == "application/json"
    assert post.headers["User-Agent"] == "attic-iac-test"
    assert "Authorization" not in get.headers
    assert "Content-Type" not in get.headers
    assert get.body is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 500, 503])
def test_http_error_statuses_come_back_as_responses(server: Echo, status: int) -> None:
    server.answers["/x"] = kube_status(status, "Reason", f"failed with {status}")

    response = HttpClient().request("DELETE", server.url + "x", body={})

    assert response.status == status
    assert response.json()["message"] == f"failed with {status}"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed(server: Echo, status: int) -> None:
    with serving(Echo()) as elsewhere:
        server.answers["/moved"] = (status, b"")
        server.headers["/moved"] = {"Location": elsewhere.url + "stolen"}

        response = HttpClient().request("GET", server.url + "moved", bearer=TOKEN)

    assert response.status == status
    assert elsewhere.requests == []
    assert [r.path for r in server.requests] == ["/moved"]


def test_no_answer_is_a_transport_error_naming_the_request_not_the_token() -> None:
    url = _closed_url() + "/api"
    with pytest.raises(TransportError, match=r"^GET http://127\.0\.0\.1:\d+/api: ") as info:
        HttpClient().request("GET", url, bearer=TOKEN)
    assert TOKEN not in str(info.value)
    assert "Bearer" not in str(info.value)


def test_a_silent_server_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # connections complete in the backlog; nothing ever answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        with pytest.raises(TransportError, match="timed out"):
            HttpClient(timeout=0.2).request("GET", url)


@pytest.mark.parametrize(
    ("body", "described"),
    [
        (b"", "HTTP 503"),
        (b"  upstream\n\n  not   ready ", "HTTP 503: upstream not ready"),
        # A Kubernetes Status: its message only.
        (
            b'{"kind": "Status", "status": "Failure", "message": "pods \\"x\\" is forbidden"}',
            'HTTP 503: pods "x" is forbidden',
        ),
        # Any other JSON (atticd's errors): the body, so the error name stays visible.
        (
            b'{"code": 503, "error": "Busy", "message": "try later"}',
            'HTTP 503: {"code": 503, "error": "Busy", "message": "try later"}',
        ),
        (b'{"kind": "Status", "message": 7}', 'HTTP 503: {"kind": "Status", "message": 7}'),
        (b"\xff\xfe oops", "HTTP 503: \ufffd\ufffd oops"),
    ],
)
def test_describe_puts_the_error_on_one_line(body: bytes, described: str) -> None:
    assert Response(503, body).describe() == described


def test_describe_truncates_long_bodies() -> None:
    described = Response(500, b"x" * 5000).describe()
    assert described == "HTTP 500: " + "x" * MAX_BODY_CHARS + "..."
    status = json.dumps(kube_status(500, "InternalError", "y " * 1000)[1]).encode()
    assert Response(500, status).describe() == "HTTP 500: " + "y " * 150 + "..."


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff", b"{"])
def test_json_is_none_when_the_body_is_not_json(body: bytes) -> None:
    assert Response(200, body).json() is None


# --------------------------------------------------------------------------------------------
# KubeApi


class _Clock:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def test_kube_api_sends_the_token_to_base_url_plus_path(server: Echo) -> None:
    api = KubeApi(server.url, TOKEN)  # the trailing slash of the base URL is dropped

    response = api.request("POST", "/api/v1/namespaces/ci/secrets", {"kind": "Secret"})

    assert response.status == 200
    (seen,) = server.requests
    assert seen.path == "/api/v1/namespaces/ci/secrets"
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.body == {"kind": "Secret"}


def test_kube_api_retries_no_answer_then_gives_up() -> None:
    clock = _Clock()
    api = KubeApi(_closed_url(), TOKEN, sleep=clock.sleep, retries=3, retry_delay=0.5)

    with pytest.raises(TransportError, match=r"^Kubernetes API unreachable: GET ") as info:
        api.request("GET", "/api/v1/pods")

    assert clock.sleeps == [0.5, 0.5, 0.5]
    assert TOKEN not in str(info.value)


def test_kube_api_recovers_when_the_server_comes_up() -> None:
    late = Echo()
    clock = _Clock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        late.start()

    try:
        response = KubeApi(late.url, TOKEN, sleep=sleep).request("GET", "/api")
    finally:
        late.stop()
    assert response.status == 200
    assert clock.sleeps == [1.0]


def test_kube_api_does_not_retry_http_errors(server: Echo) -> None:
    server.answers["/api"] = kube_status(500, "InternalError", "etcd is down")
    clock = _Clock()

    response = KubeApi(server.url, TOKEN, sleep=clock.sleep).request("GET", "/api")

    assert response.describe() == "HTTP 500: etcd is down"
    assert len(server.requests) == 1
    assert clock.sleeps == []


# --------------------------------------------------------------------------------------------
# KubeApi.from_environment: the pod's service account and API server


def _in_pod(port: int | str, host: str = "127.0.0.1") -> dict[str, str]:
    return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": str(port)}


def test_in_cluster_api_over_tls_with_the_service_account(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    (tmp_path / "token").write_text(f"{TOKEN}\n")
    with serving(Echo(tls=ca.server)) as api_server:
        kube = KubeApi.from_environment(
            None, tmp_path / "token", ca.ca_file, _in_pod(api_server.port), user_agent="ua"
        )
        response = kube.request("GET", "/version")

    assert response.status == 200
    (seen,) = api_server.requests
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["User-Agent"] == "ua"


def test_a_server_the_ca_did_not_sign_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "other").mkdir()
    real, other = make_ca(tmp_path / "real"), make_ca(tmp_path / "other")
    (tmp_path / "token").write_text(TOKEN)
    with serving(Echo(tls=real.server)) as api_server:
        kube = KubeApi.from_environment(
            None, tmp_path / "token", other.ca_file, _in_pod(api_server.port)
        )
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            kube.request("GET", "/version")
        assert api_server.requests == []


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        (_in_pod(443, "10.96.0.1"), "https://10.96.0.1:443/api"),
        (_in_pod(6443, "fd00::1"), "https://[fd00::1]:6443/api"),
        (_in_pod(6443, "[fd00::1]"), "https://[fd00::1]:6443/api"),
        ({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, "https://10.96.0.1:443/api"),
    ],
)
def test_the_api_server_url_comes_from_the_service_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], url: str
) -> None:
    seen: list[str] = []

    def request(self: HttpClient, method: str, target: str, **kwargs: Any) -> Response:
        seen.append(target)
        return Response(200, b"")

    monkeypatch.setattr(HttpClient, "request", request)
    (tmp_path / "token").write_text(TOKEN)
    kube = KubeApi.from_environment(None, tmp_path / "token", make_ca(tmp_path).ca_file, environ)
    kube.request("GET", "/api")
    assert seen == [url]


def test_a_plain_http_api_server_from_the_command_line_needs_no_ca(
    server: Echo, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text(TOKEN)
    parser = argparse.ArgumentParser()
    incluster.add_kube_arguments(parser)
    args = parser.parse_args(
        ["--api-server", server.url, "--sa-token-file", str(tmp_path / "token")]
    )

    kube = KubeApi.from_arguments(args, {}, user_agent="cli")

    assert kube.request("GET", "/api").status == 200
    assert server.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert server.requests[0].headers["User-Agent"] == "cli"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("outside a pod", "KUBERNETES_SERVICE_HOST is not set (not in a pod?); pass --api-server"),
        ("no token file", "service-account token {tmp}/token: cannot read: "),
        ("empty token", "service-account token {tmp}/token is empty"),
        ("binary token", "service-account token {tmp}/token: not UTF-8 text"),
        ("no CA file", "CA file {tmp}/ca.crt not found; pass --ca-file"),
        ("bad CA file", "CA file {tmp}/ca.crt: "),
        ("not http", "--api-server 'ftp://10.0.0.1' must be an http(s) URL"),
    ],
)
def test_unusable_environment_or_credentials(tmp_path: Path, case: str, message: str) -> None:
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_bytes(
        {"empty token": b" \n", "binary token": b"\xff" + TOKEN.encode()}.get(case, TOKEN.encode())
    )
    if case == "no token file":
        token.unlink()
    if case == "bad CA file":
        ca.write_text(f"not a certificate {TOKEN}")
    environ = {} if case == "outside a pod" else _in_pod(443)
    api_server = "ftp://10.0.0.1" if case == "not http" else None

    with pytest.raises(SpecError) as info:
        KubeApi.from_environment(api_server, token, ca, environ)

    assert str(info.value).startswith(message.format(tmp=tmp_path))
    assert TOKEN not in str(info.value)


def test_the_command_line_options_default_to_the_service_account(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    incluster.add_kube_arguments(parser)

    defaults = parser.parse_args([])
    given = parser.parse_args(
        ["--api-server", "http://k:8080", "--sa-token-file", "t", "--ca-file", "c"]
    )

    assert (defaults.api_server, defaults.sa_token_file, defaults.ca_file) == (
        None,
        DEFAULT_SA_TOKEN_FILE,
        DEFAULT_CA_FILE,
    )
    assert str(DEFAULT_SA_TOKEN_FILE) == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert str(DEFAULT_CA_FILE) == "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    assert (given.api_server, given.sa_token_file, given.ca_file) == (
        "http://k:8080",
        Path("t"),
        Path("c"),
    )


# --------------------------------------------------------------------------------------------
# Small helpers


def test_read_json_says_why_a_file_is_unusable(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text('{"a": 1}')
    (tmp_path / "bad.json").write_text("{")
    assert incluster.read_json(tmp_path / "good.json") == {"a": 1}
    with pytest.raises(SpecError, match=r"bad\.json: not valid JSON"):
        incluster.read_json(tmp_path / "bad.json")
    with pytest.raises(SpecError, match=r"gone\.json: cannot read: No such file"):
        incluster.read_json(tmp_path / "gone.json")


def test_read_secret_file_strips_the_value(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(f"\n {TOKEN} \n")
    assert incluster.read_secret_file(tmp_path / "secret", "token") == TOKEN


@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        ("2027-01-15T08:00:00Z", 1_800_000_000),
        ("2027-01-15T10:00:00+02:00", 1_800_000_000),
        ("2027-01-15T08:00:00.5Z", 1_800_000_000.5),
        ("2027-01-15T08:00:00", None),  # no offset: ambiguous
        ("next tuesday", None),
        ("", None),
        (1_800_000_000, None),
        (None, None),
    ],
)
def test_parse_time(value: object, epoch: float | None) -> None:
    assert incluster.parse_time(value) == epoch


def test_log_lines_go_to_stdout_and_errors_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    incluster.log("fine")
    incluster.log_error("broken")
    assert capsys.readouterr() == ("fine\n", "broken\n")


def test_the_shared_module_imports_only_the_standard_library() -> None:
    assert non_stdlib_imports(Path(incluster.__file__).read_text(encoding="utf-8")) == set()


# --------------------------------------------------------------------------------------------
# Inlining at synth time

TOY_MODULE = '''"""A shared module."""

from __future__ import annotations

from datetime import datetime


def shout(text: str) -> str:
    return text.upper() + "!"


STAMP = datetime(2027, 1, 15).isoformat()
'''


def _toy_script(*middle: str, future: bool = True, imports: str = "shout") -> str:
    lines = ['"""A script."""', ""]
    if future:
        lines.append("from __future__ import annotations")
    lines += ["import sys", "", f"from {MODULE} import {imports}", "", *middle]
    lines += ["", "RESULT = shout('hi')"]
    return "\n".join(lines) + "\n"


def test_inline_replaces_the_import_with_the_module_code() -> None:
    shipped = inline(_toy_script(), TOY_MODULE)

    namespace: dict[str, Any] = {}
    exec(compile(shipped, "<shipped>", "exec"), namespace)
    assert namespace["RESULT"] == "HI!"
    assert namespace["STAMP"] == "2027-01-15T00:00:00"
    assert "A shared module" not in shipped
    assert shipped.count("from __future__") == 1
    assert non_stdlib_imports(shipped) == set()  # the import of MODULE is gone


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        ('"""No import."""\n', "expected exactly one top-level"),
        (_toy_script(f"from {MODULE} import STAMP"), "expected exactly one top-level"),
        (
            _toy_script(f"def f():\n    from {MODULE} import shout\n    return shout"),
            "expected exactly one top-level",
        ),
        (_toy_script(imports="shout as yell"), "no aliases"),
        (_toy_script(imports="shout, whisper"), "'whisper' is not defined"),
        (_toy_script("def shout(text):\n    return text"), "'shout' is bound by both"),
        (_toy_script("STAMP = 1"), "'STAMP' is bound by both"),
        (_toy_script("import datetime"), "'datetime' is bound by both"),
        (_toy_script(future=False), "lacks 'from __future__ import annotations'"),
        (_toy_script("import yaml"), "must import only the standard library, not yaml"),
    ],
)
def test_inline_refuses_what_would_break_the_shipped_script(script: str, problem: str) -> None:
    with pytest.raises(BundleError, match=problem.replace("(", r"\(")):
        inline(script, TOY_MODULE, where="toy.py")


def test_inline_allows_the_same_import_in_both() -> None:
    shipped = inline(_toy_script("from datetime import datetime"), TOY_MODULE)
    assert shipped.count("from datetime import datetime") == 2


@pytest.mark.parametrize(
    ("source", "shipped"),
    [(Path(attic_ops.__file__), ops_script), (Path(runner_cleanup.__file__), cleanup_script)],
    ids=["attic_ops", "runner_cleanup"],
)
def test_shipped_scripts_are_the_scripts_around_the_inlined_module(
    source: Path, shipped: Callable[[], str]
) -> None:
    original, text = source.read_text(encoding="utf-8"), shipped()
    start = original.index(f"from {MODULE} import (")
    end = original.index(")\n", start) + 2
    module = Path(incluster.__file__).read_text(encoding="utf-8")
    body = module[module.index("import argparse") :].strip()
    assert text.startswith(original[:start] + "# ---- Inlined at synth time from")
    assert text.endswith(original[end:])
    assert text.count(body) == 1
    # In the repository the script imports the shared client; in the pod, the stdlib only.
    assert non_stdlib_imports(original) == {MODULE}
    assert imported_modules(text), "no imports found"
    assert non_stdlib_imports(text) == set()
