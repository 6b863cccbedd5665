"""attic_ops.py against in-process fakes of atticd and the Kubernetes Secret API.

Long because it drives both commands of the script end to end (caches against a fake atticd,
tokens against a fake Secret API), each through its success, conflict, retry and failure paths,
the command line and the shipped file; the shared HTTP client has its own tests in
test_incluster.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from constructs_lib.attic.ops import attic_ops
from constructs_lib.attic.ops.attic_ops import (
    CachesSpec,
    TokenSpec,
    parse_caches_spec,
    run_caches,
    run_tokens,
)
from constructs_lib.attic.ops_pod import ops_script
from constructs_lib.kubernetes.ops.incluster import KubeApi
from tests.support.fake_http import (
    FakeServer,
    Recorded,
    no_proxies,  # noqa: F401 (autouse fixture)
    serving,
)
from tests.support.fake_kube import SA_TOKEN, FakeKube
from tests.support.ops_scripts import run_shipped

ATTIC_TOKEN = "eyJhbGciOiJIUzI1NiJ9.ATTIC-ADMIN-TOKEN-SENTINEL.c2ln"
NOW = 1_800_000_000  # 2027-01-15T08:00:00Z
DAY = 86_400


# --------------------------------------------------------------------------------------------
# In-process fakes of atticd and the Secret API


def _attic_error(code: int, error: str, message: str) -> tuple[int, Any]:
    return code, {"code": code, "error": error, "message": message}


class FakeAttic(FakeServer):
    """atticd's ``/`` and ``/_api/v1/cache-config/<name>`` with its status codes and bodies."""

    def __init__(self) -> None:
        super().__init__()
        self.caches: dict[str, dict[str, Any]] = {}
        self.soft_deleted: set[str] = set()
        self.race_on_post: set[str] = set()  # someone else creates it just before our POST
        self.root_statuses: list[int] = []  # answers for GET / before the first 200
        self.unauthorized: int = 0  # how many API requests get 401 (token not valid yet)
        self.forbidden: dict[str, str] = {}  # cache name -> 403 message

    def api(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith("/_api/")]

    def calls(self, method: str) -> list[Recorded]:
        return [r for r in self.api() if r.method == method]

    def add(self, name: str, **settings: Any) -> None:
        self.caches[name] = {
            "is_public": False,
            "store_dir": "/nix/store",
            "priority": 41,
            "upstream_cache_key_names": ["cache.nixos.org-1"],
            "retention_period": None,
            "public_key": f"{name}:{base64.b64encode(name.encode() * 4).decode()}",
            **settings,
        }

    def _config(self, name: str) -> dict[str, Any]:
        cache = self.caches[name]
        retention = cache["retention_period"]
        return {
            "substituter_endpoint": self.url,
            "api_endpoint": self.url,
            "public_key": cache["public_key"],
            "is_public": cache["is_public"],
            "store_dir": cache["store_dir"],
            "priority": cache["priority"],
            "upstream_cache_key_names": cache["upstream_cache_key_names"],
            "retention_period": "Global" if retention is None else {"Period": retention},
        }

    def respond(self, request: Recorded) -> tuple[int, Any]:
        if request.path == "/" and request.method == "GET":
            if self.root_statuses:
                status = self.root_statuses.pop(0)
                return status, b"upstream not ready"
            return 200, b"<!DOCTYPE html><p>attic</p>"
        prefix = "/_api/v1/cache-config/"
        if not request.path.startswith(prefix):
            return _attic_error(404, "NotFound", "no route")
        if request.headers.get("Authorization") != f"Bearer {ATTIC_TOKEN}" or self.unauthorized:
            self.unauthorized = max(0, self.unauthorized - 1)
            return _attic_error(401, "Unauthorized", "Unauthorized.")
        name = request.path[len(prefix) :]
        if name in self.forbidden:
            return _attic_error(403, "PermissionDenied", self.forbidden[name])
        handler = getattr(self, f"_{request.method.lower()}")
        result: tuple[int, Any] = handler(name, request.body)
        return result

    def _get(self, name: str, _body: Any) -> tuple[int, Any]:
        if name not in self.caches:
            return _attic_error(404, "NoSuchCache", "The requested cache does not exist.")
        return 200, self._config(name)

    def _post(self, name: str, body: Any) -> tuple[int, Any]:
        required = {"keypair", "is_public", "store_dir", "priority", "upstream_cache_key_names"}
        if not isinstance(body, dict) or set(body) != required:
            return 422, b"Failed to deserialize the JSON body"
        if name in self.race_on_post:
            self.race_on_post.discard(name)
            self.add(name, **{k: body[k] for k in required - {"keypair"}})
        if name in self.caches or name in self.soft_deleted:
            return _attic_error(
                400, "CacheAlreadyExists", "A cache with the same name already exists."
            )
        self.add(name, **{k: body[k] for k in required - {"keypair"}})
        return 200, b""

    def _patch(self, name: str, body: Any) -> tuple[int, Any]:
        if name not in self.caches:
            return _attic_error(404, "NoSuchCache", "The requested cache does not exist.")
        if not body:
            return _attic_error(400, "RequestError", "No modifiable fields were set.")
        for key, value in body.items():
            if key == "retention_period":
                self.caches[name][key] = None if value == "Global" else value["Period"]
            else:
                self.caches[name][key] = value
        return 200, b""


@pytest.fixture
def attic() -> Iterator[FakeAttic]:
    with serving(FakeAttic()) as server:
        yield server


class FakeTime:
    """Injected sleep/monotonic: sleeping advances the clock instantly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


# --------------------------------------------------------------------------------------------
# caches


def _cache(name: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": name,
        "is_public": False,
        "priority": 41,
        "upstream_cache_key_names": ["cache.nixos.org-1"],
        "retention_period": "Global",
        **overrides,
    }


def _caches_spec(endpoint: str, *caches: dict[str, Any]) -> CachesSpec:
    return parse_caches_spec({"endpoint": endpoint, "caches": list(caches)})


def _run(spec: CachesSpec, clock: FakeTime | None = None, **kwargs: Any) -> int:
    clock = clock or FakeTime()
    return run_caches(
        spec, ATTIC_TOKEN, sleep=clock.sleep, monotonic=clock.monotonic, timeout=60, **kwargs
    )


TWO_CACHES = (
    _cache("main", is_public=True, priority=40),
    _cache("ci", retention_period={"Period": 1209600}, upstream_cache_key_names=[]),
)


def test_first_run_creates_caches(attic: FakeAttic, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(_caches_spec(attic.url, *TWO_CACHES)) == 0

    posts = attic.calls("POST")
    assert [p.path for p in posts] == ["/_api/v1/cache-config/main", "/_api/v1/cache-config/ci"]
    assert posts[0].body == {
        "keypair": "Generate",
        "is_public": True,
        "store_dir": "/nix/store",
        "priority": 40,
        "upstream_cache_key_names": ["cache.nixos.org-1"],
    }
    assert posts[1].body == {
        "keypair": "Generate",
        "is_public": False,
        "store_dir": "/nix/store",
        "priority": 41,
        "upstream_cache_key_names": [],
    }
    # Retention is PATCHed only where it is not Global.
    patches = attic.calls("PATCH")
    assert [(p.path, p.body) for p in patches] == [
        ("/_api/v1/cache-config/ci", {"retention_period": {"Period": 1209600}})
    ]
    assert attic.caches["ci"]["retention_period"] == 1209600
    out = capsys.readouterr().out
    assert "cache main: created" in out
    assert "cache ci: created" in out
    assert f"cache main: public key {attic.caches['main']['public_key']}" in out
    assert f"cache ci: public key {attic.caches['ci']['public_key']}" in out


def test_second_run_is_idempotent(attic: FakeAttic, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _caches_spec(attic.url, *TWO_CACHES)
    assert _run(spec) == 0
    attic.requests.clear()
    capsys.readouterr()

    assert _run(spec) == 0

    assert [r.method for r in attic.api()] == ["GET", "GET"]
    out = capsys.readouterr().out
    assert "cache main: unchanged" in out
    assert "cache ci: unchanged" in out
    assert "cache ci: public key ci:" in out


def test_changed_setting_patches_only_that_field(
    attic: FakeAttic, capsys: pytest.CaptureFixture[str]
) -> None:
    attic.add("main", priority=40, is_public=True)

    assert _run(_caches_spec(attic.url, _cache("main", is_public=True, priority=41))) == 0

    assert [(p.path, p.body) for p in attic.calls("PATCH")] == [
        ("/_api/v1/cache-config/main", {"priority": 41})
    ]
    assert not attic.calls("POST")
    assert "cache main: updated priority" in capsys.readouterr().out


def test_several_changes_and_retention_back_to_global(
    attic: FakeAttic, capsys: pytest.CaptureFixture[str]
) -> None:
    attic.add("ci", retention_period=0, upstream_cache_key_names=[])

    spec = _caches_spec(attic.url, _cache("ci", is_public=True))
    assert _run(spec) == 0

    (patch,) = attic.calls("PATCH")
    assert patch.body == {
        "is_public": True,
        "upstream_cache_key_names": ["cache.nixos.org-1"],
        "retention_period": "Global",
    }
    out = capsys.readouterr().out
    assert "cache ci: updated is_public, upstream_cache_key_names, retention_period" in out


def test_period_zero_is_kept_forever_and_not_global(attic: FakeAttic) -> None:
    spec = _caches_spec(attic.url, _cache("keep", retention_period={"Period": 0}))
    assert _run(spec) == 0
    assert attic.calls("PATCH")[0].body == {"retention_period": {"Period": 0}}
    attic.requests.clear()
    assert _run(spec) == 0
    assert not attic.calls("PATCH")


def test_concurrently_created_cache_is_not_a_failure(
    attic: FakeAttic, capsys: pytest.CaptureFixture[str]
) -> None:
    attic.race_on_post.add("main")

    assert _run(_caches_spec(attic.url, _cache("main"))) == 0

    assert [r.method for r in attic.api()] == ["GET", "POST", "GET"]
    captured = capsys.readouterr()
    assert "FAILED" not in captured.err
    assert "cache main: unchanged" in captured.out
    assert "cache main: public key main:" in captured.out


def test_concurrently_created_with_other_settings_is_reconciled(attic: FakeAttic) -> None:
    attic.race_on_post.add("ci")
    spec = _caches_spec(attic.url, _cache("ci", retention_period={"Period": 3600}))

    assert _run(spec) == 0

    # The racing creator did not set retention (a POST cannot), so this run PATCHes it.
    assert [p.body for p in attic.calls("PATCH")] == [{"retention_period": {"Period": 3600}}]


def test_soft_deleted_name_fails_clearly_and_others_still_processed(
    attic: FakeAttic, capsys: pytest.CaptureFixture[str]
) -> None:
    attic.soft_deleted.add("old")

    spec = _caches_spec(attic.url, _cache("old"), _cache("main"))
    assert _run(spec) == 1

    assert "main" in attic.caches
    captured = capsys.readouterr()
    assert "cache main: created" in captured.out
    assert "cache old: FAILED" in captured.err
    assert "reserved by a soft-deleted cache" in captured.err
    assert "soft-delete-caches" in captured.err
    assert "1 of 2 caches failed: old" in captured.err


def test_401_is_retried_until_the_token_becomes_valid(
    attic: FakeAttic, capsys: pytest.CaptureFixture[str]
) -> None:
    attic.add("main")
    attic.unauthorized = 2
    clock = FakeTime()

    assert _run(_caches_spec(attic.url, _cache("main")), clock) == 0

    assert [r.method for r in attic.api()] == ["GET", "GET", "GET"]
    assert clock.sleeps == [2.0, 2.0]
    assert "cache main: unchanged" in capsys.readouterr().out


def test_persistent_401_fails_with_a_hint(
    attic: FakeAttic, capsys: pytest.CaptureFixture[str]
) -> None:
    attic.unauthorized = 1000

    assert _run(_caches_spec(attic.url, _cache("main"), _cache("ci")), auth_retries=3) == 1

    err = capsys.readouterr().err
    assert "cache main: FAILED" in err
    assert "cache ci: FAILED" in err
    assert "token rejected (check the signing key / clocks)" in err
    assert '"error": "Unauthorized"' in err or '"error":"Unauthorized"' in err


def test_api_not_listening_yet_then_ready(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = FakeAttic()  # not started: connection refused
    clock = FakeTime()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 2:
            server.start()

    try:
        code = run_caches(
            _caches_spec(server.url, _cache("main")),
            ATTIC_TOKEN,
            sleep=sleep,
            monotonic=clock.monotonic,
            timeout=60,
        )
    finally:
        server.stop()
    assert code == 0
    assert clock.sleeps == [3.0, 3.0]
    out = capsys.readouterr().out
    assert "waiting for atticd" in out
    assert "is ready" in out
    assert "cache main: created" in out


def test_api_answering_503_then_ready(attic: FakeAttic) -> None:
    attic.root_statuses = [503, 502]
    clock = FakeTime()

    assert _run(_caches_spec(attic.url, _cache("main")), clock) == 0

    assert [r.path for r in attic.requests[:3]] == ["/", "/", "/"]
    assert "main" in attic.caches


def test_api_never_ready_times_out(attic: FakeAttic, capsys: pytest.CaptureFixture[str]) -> None:
    attic.root_statuses = [503] * 100
    clock = FakeTime()

    assert _run(_caches_spec(attic.url, _cache("main")), clock) == 1

    assert clock.now >= 60
    assert not attic.api()
    assert "not ready after 60s: HTTP 503" in capsys.readouterr().err


def test_api_answering_400_on_root_fails_fast(
    attic: FakeAttic, capsys: pytest.CaptureFixture[str]
) -> None:
    attic.root_statuses = [400]
    clock = FakeTime()

    assert _run(_caches_spec(attic.url, _cache("main")), clock) == 1

    assert clock.sleeps == []
    assert "allowed-hosts" in capsys.readouterr().err


def test_forbidden_cache_prints_truncated_error_body(
    attic: FakeAttic, capsys: pytest.CaptureFixture[str]
) -> None:
    attic.forbidden["main"] = "x" * 5000

    assert _run(_caches_spec(attic.url, _cache("main"), _cache("ci"))) == 1

    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if line.startswith("cache main: FAILED"))
    assert "HTTP 403" in line
    assert "PermissionDenied" in line
    assert len(line) < 600
    assert "ci" in attic.caches


def test_cli_sends_bearer_token_and_never_prints_it(
    attic: FakeAttic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    attic.add("main", priority=1)
    attic.unauthorized = 1
    attic.soft_deleted.add("gone")
    spec = {"endpoint": attic.url, "caches": [_cache("main"), _cache("ci"), _cache("gone")]}
    (tmp_path / "caches.json").write_text(json.dumps(spec))
    (tmp_path / "token").write_text(ATTIC_TOKEN + "\n")
    clock = FakeTime()

    code = attic_ops.main(
        [
            "caches",
            "--spec",
            str(tmp_path / "caches.json"),
            "--token-file",
            str(tmp_path / "token"),
        ],
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )

    assert code == 1  # "gone" is soft-deleted
    api = attic.api()
    assert api
    assert all(r.headers["Authorization"] == f"Bearer {ATTIC_TOKEN}" for r in api)
    root = [r for r in attic.requests if r.path == "/"]
    assert all("Authorization" not in r.headers for r in root)
    captured = capsys.readouterr()
    for text in (captured.out, captured.err):
        assert ATTIC_TOKEN not in text
        assert "ATTIC-ADMIN-TOKEN-SENTINEL" not in text
        assert "Bearer" not in text


def test_shipped_script_runs_alone_on_a_bare_interpreter(attic: FakeAttic, tmp_path: Path) -> None:
    """As in the pod: ``python3 attic_ops.py`` as the ConfigMap ships it, on its own."""
    (tmp_path / "caches.json").write_text(
        json.dumps({"endpoint": attic.url, "caches": [_cache("main")]})
    )
    (tmp_path / "token").write_text(ATTIC_TOKEN)
    args = ["caches", "--spec", "caches.json", "--token-file", "token"]

    result = run_shipped(ops_script(), "attic_ops.py", args, tmp_path)

    assert result.returncode == 0, result.stderr
    assert "cache main: created" in result.stdout
    assert "1 caches in place" in result.stdout
    assert ATTIC_TOKEN not in result.stdout + result.stderr
    assert attic.calls("POST")[0].headers["User-Agent"] == "attic-iac-ops"


@pytest.mark.parametrize(
    ("spec", "problems"),
    [
        (
            {
                "endpoint": "attic.svc",
                "caches": [
                    {"name": "-bad", "is_public": "no", "priority": 1.5},
                    _cache("dup"),
                    _cache("dup", retention_period={"Period": -1}),
                    _cache("x", retention_period="forever", extra=1),
                ],
            },
            [
                "endpoint must be an http(s) URL",
                "caches[0]: missing 'upstream_cache_key_names'",
                "caches[0]: name must match",
                "is_public must be true or false",
                "priority must be an integer",
                "duplicate cache name 'dup'",
                "retention_period seconds must be 0..2147483647",
                'retention_period must be "Global" or {"Period": <seconds>}',
                "unknown key 'extra'",
            ],
        ),
        ({"caches": "main"}, ["missing 'endpoint'", "caches must be a list"]),
    ],
)
def test_invalid_caches_spec_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: Any, problems: list[str]
) -> None:
    (tmp_path / "caches.json").write_text(json.dumps(spec))
    (tmp_path / "token").write_text(ATTIC_TOKEN)

    code = attic_ops.main(
        ["caches", "--spec", str(tmp_path / "caches.json"), "--token-file", str(tmp_path / "token")]
    )

    assert code == 2
    err = capsys.readouterr().err
    for problem in problems:
        assert problem in err


def test_empty_token_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "caches.json").write_text(json.dumps({"endpoint": "http://a/", "caches": []}))
    (tmp_path / "token").write_text("\n")

    code = attic_ops.main(
        ["caches", "--spec", str(tmp_path / "caches.json"), "--token-file", str(tmp_path / "token")]
    )

    assert code == 2
    assert "is empty" in capsys.readouterr().err


def test_endpoint_gets_a_trailing_slash() -> None:
    spec = parse_caches_spec({"endpoint": "http://attic.attic.svc", "caches": []})
    assert spec.endpoint == "http://attic.attic.svc/"


# --------------------------------------------------------------------------------------------
# tokens


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(exp: int | None, marker: str = "MINTED-SENTINEL") -> str:
    header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
    claims: dict[str, Any] = {"sub": marker, "nbf": NOW - 60}
    if exp is not None:
        claims["exp"] = exp
    claims["https://jwt.attic.rs/v1"] = {"caches": {"main": {"r": 1, "w": 1}}}
    return f"{header}.{_b64url(json.dumps(claims).encode())}.{_b64url(b'signature-bytes')}"


def _token_spec(name: str = "ci", **overrides: Any) -> TokenSpec:
    values: dict[str, Any] = {
        "name": name,
        "namespace": "gitlab-runners",
        "secret_name": f"attic-{name}-token",
        "validity_seconds": 90 * DAY,
        "rotate_before_seconds": 14 * DAY,
        "spec_hash": "abc123",
        **overrides,
    }
    return TokenSpec(**values)


def _mint(directory: Path, spec: TokenSpec, exp: int | None = None, **kwargs: Any) -> str:
    jwt = make_jwt(NOW + spec.validity_seconds if exp is None else exp, **kwargs)
    (directory / f"{spec.name}.jwt").write_text(jwt + "\n")
    return jwt


def _kube_api(kube: FakeKube) -> KubeApi:
    return KubeApi(kube.url, SA_TOKEN, sleep=lambda _s: None)


def _run_tokens(kube: FakeKube, directory: Path, *specs: TokenSpec, now: float = NOW) -> int:
    return run_tokens(specs, directory, _kube_api(kube), now=lambda: now)


def _iso(epoch: int) -> str:
    return attic_ops._timestamp(epoch)


def _managed_secret(
    spec: TokenSpec, *, expires_at: str | None, spec_hash: str | None = None, token: bool = True
) -> dict[str, Any]:
    annotations = {"attic-iac.io/spec-hash": spec_hash or spec.spec_hash}
    if expires_at is not None:
        annotations["attic-iac.io/expires-at"] = expires_at
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "labels": {
                "app.kubernetes.io/managed-by": "attic-iac",
                "app.kubernetes.io/component": "attic-token",
                "attic-iac.io/token": spec.name,
            },
            "annotations": annotations,
        },
        "data": {"token": base64.b64encode(b"old.token.value").decode()} if token else {},
    }


def _assert_secret_content(secret: dict[str, Any], spec: TokenSpec, jwt: str, exp: int) -> None:
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "attic-iac",
        "app.kubernetes.io/component": "attic-token",
        "attic-iac.io/token": spec.name,
    }
    assert secret["metadata"]["annotations"] == {
        "attic-iac.io/expires-at": _iso(exp),
        "attic-iac.io/minted-at": _iso(NOW),
        "attic-iac.io/spec-hash": spec.spec_hash,
    }
    assert secret["data"] == {"token": base64.b64encode(jwt.encode()).decode()}
    assert set(secret) == {"apiVersion", "kind", "type", "metadata", "data"}


def test_token_secret_created(
    kube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _token_spec()
    jwt = _mint(tmp_path, spec)
    exp = NOW + 90 * DAY

    assert _run_tokens(kube, tmp_path, spec) == 0

    (post,) = kube.writes()
    assert post.method == "POST"
    assert post.path == "/api/v1/namespaces/gitlab-runners/secrets"
    assert post.body["metadata"]["name"] == "attic-ci-token"
    assert post.body["metadata"]["namespace"] == "gitlab-runners"
    assert "resourceVersion" not in post.body["metadata"]
    _assert_secret_content(post.body, spec, jwt, exp)
    assert post.body["metadata"]["annotations"]["attic-iac.io/expires-at"] == (
        "2027-04-15T08:00:00Z"
    )
    out = capsys.readouterr().out
    assert out.strip() == (
        "token ci -> gitlab-runners/attic-ci-token: created "
        f"(expires {_iso(exp)}, rotates after {_iso(exp - 14 * DAY)})"
    )


def test_token_secret_kept_when_far_from_expiry(
    kube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _token_spec()
    _mint(tmp_path, spec)
    expires = NOW + 30 * DAY
    kube.put_secret(
        "gitlab-runners", "attic-ci-token", _managed_secret(spec, expires_at=_iso(expires))
    )

    assert _run_tokens(kube, tmp_path, spec) == 0

    assert kube.writes() == []
    out = capsys.readouterr().out
    assert out.strip() == (
        "token ci -> gitlab-runners/attic-ci-token: kept "
        f"(expires {_iso(expires)}, rotates after {_iso(expires - 14 * DAY)})"
    )


@pytest.mark.parametrize(
    ("secret_kwargs", "reason"),
    [
        ({"expires_at": _iso(NOW + 13 * DAY)}, "expires within the rotation window"),
        ({"expires_at": _iso(NOW - DAY)}, "expires within the rotation window"),
        ({"expires_at": _iso(NOW + 60 * DAY), "spec_hash": "old"}, "token spec changed"),
        ({"expires_at": None}, "annotation attic-iac.io/expires-at missing or unparseable"),
        (
            {"expires_at": "next tuesday"},
            "annotation attic-iac.io/expires-at missing or unparseable",
        ),
        ({"expires_at": _iso(NOW + 60 * DAY), "token": False}, "data key 'token' missing"),
    ],
)
def test_token_secret_rotated(
    kube: FakeKube,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    secret_kwargs: dict[str, Any],
    reason: str,
) -> None:
    spec = _token_spec()
    jwt = _mint(tmp_path, spec)
    kube.put_secret("gitlab-runners", "attic-ci-token", _managed_secret(spec, **secret_kwargs))
    version = kube.secrets[("gitlab-runners", "attic-ci-token")]["metadata"]["resourceVersion"]

    assert _run_tokens(kube, tmp_path, spec) == 0

    (put,) = kube.writes()
    assert put.method == "PUT"
    assert put.path == "/api/v1/namespaces/gitlab-runners/secrets/attic-ci-token"
    assert put.body["metadata"]["resourceVersion"] == version
    _assert_secret_content(put.body, spec, jwt, NOW + 90 * DAY)
    stored = kube.secrets[("gitlab-runners", "attic-ci-token")]
    assert stored["data"]["token"] == base64.b64encode(jwt.encode()).decode()
    out = capsys.readouterr().out
    assert "token ci -> gitlab-runners/attic-ci-token: rotated (expires" in out
    assert f"reason: {reason}" in out


def test_unmanaged_secret_is_never_overwritten(
    kube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _token_spec()
    _mint(tmp_path, spec)
    original = {"type": "Opaque", "metadata": {"labels": {"app": "mine"}}, "data": {"x": "eQ=="}}
    kube.put_secret("gitlab-runners", "attic-ci-token", original)
    before = json.dumps(kube.secrets[("gitlab-runners", "attic-ci-token")], sort_keys=True)

    assert _run_tokens(kube, tmp_path, spec) == 1

    assert kube.writes() == []
    assert json.dumps(kube.secrets[("gitlab-runners", "attic-ci-token")], sort_keys=True) == before
    err = capsys.readouterr().err
    assert "token ci -> gitlab-runners/attic-ci-token: FAILED:" in err
    assert "exists and is not managed by attic-iac; refusing to overwrite" in err


def test_conflict_on_put_is_not_a_failure(
    kube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _token_spec()
    _mint(tmp_path, spec)
    kube.put_secret("gitlab-runners", "attic-ci-token", _managed_secret(spec, expires_at=None))
    kube.concurrent_writes.add(("gitlab-runners", "attic-ci-token"))

    assert _run_tokens(kube, tmp_path, spec) == 0

    assert [w.method for w in kube.writes()] == ["PUT"]
    captured = capsys.readouterr()
    assert "changed by another run" in captured.out
    assert "FAILED" not in captured.err


def test_missing_namespace_fails_with_a_clear_message(
    kube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = _token_spec("ops", namespace="ops-tools")
    present = _token_spec("ci")
    _mint(tmp_path, missing)
    _mint(tmp_path, present)

    assert _run_tokens(kube, tmp_path, missing, present) == 1

    assert ("gitlab-runners", "attic-ci-token") in kube.secrets
    captured = capsys.readouterr()
    assert (
        "token ops -> ops-tools/attic-ops-token: FAILED: namespace ops-tools does not exist; "
        "create it before applying attic-<env>"
    ) in captured.err
    assert "token ci -> gitlab-runners/attic-ci-token: created" in captured.out
    assert "1 of 2 token entries failed: ops" in captured.err


def test_rbac_denial_fails_with_a_clear_message(
    kube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _token_spec()
    _mint(tmp_path, spec)
    kube.forbidden_namespaces.add("gitlab-runners")

    assert _run_tokens(kube, tmp_path, spec) == 1

    err = capsys.readouterr().err
    assert "forbidden by RBAC" in err
    assert "get, create and update on secrets in namespace gitlab-runners" in err


def _write_bad_minted(directory: Path, spec: TokenSpec, kind: str) -> None:
    path = directory / f"{spec.name}.jwt"
    if kind == "two segments":
        path.write_text("aaa.bbb\n")
    elif kind == "no exp":
        path.write_text(make_jwt(None))
    elif kind == "exp far off":
        path.write_text(make_jwt(NOW + 365 * DAY))
    elif kind == "exp absurd":
        path.write_text(make_jwt(10**30))
    elif kind == "payload not json":
        path.write_text("aaa.%%%%.ccc")
    elif kind == "empty":
        path.write_text("")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "cannot read"),
        ("empty", "is empty"),
        ("two segments", "not a JWT"),
        ("no exp", "no numeric exp claim"),
        ("exp far off", "is not now + validity"),
        ("exp absurd", "is not now + validity"),
        ("payload not json", "payload is not base64url JSON"),
    ],
)
def test_bad_minted_token_fails_only_that_entry(
    kube: FakeKube,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    message: str,
) -> None:
    bad = _token_spec("bad")
    good = _token_spec("good")
    _write_bad_minted(tmp_path, bad, kind)
    _mint(tmp_path, good)

    assert _run_tokens(kube, tmp_path, bad, good) == 1

    assert ("gitlab-runners", "attic-bad-token") not in kube.secrets
    assert ("gitlab-runners", "attic-good-token") in kube.secrets
    err = capsys.readouterr().err
    assert "token bad -> gitlab-runners/attic-bad-token: FAILED: minted token" in err
    assert message in err


def test_exp_within_ten_minutes_is_accepted(kube: FakeKube, tmp_path: Path) -> None:
    spec = _token_spec()
    _mint(tmp_path, spec, exp=NOW + spec.validity_seconds - 590)
    assert _run_tokens(kube, tmp_path, spec) == 0


def test_tokens_cli_uses_the_service_account_and_never_prints_tokens(
    kube: FakeKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    minted = tmp_path / "minted"
    minted.mkdir()
    specs = [_token_spec("ci"), _token_spec("push", spec_hash="def456")]
    jwts = [_mint(minted, spec, marker=f"SECRET-{spec.name}") for spec in specs]
    kube.put_secret(
        "gitlab-runners", "attic-push-token", _managed_secret(specs[1], expires_at=None)
    )
    spec_file = tmp_path / "tokens.json"
    spec_file.write_text(
        json.dumps(
            {
                "tokens": [
                    {
                        "name": s.name,
                        "namespace": s.namespace,
                        "secret_name": s.secret_name,
                        "validity_seconds": s.validity_seconds,
                        "rotate_before_seconds": s.rotate_before_seconds,
                        "spec_hash": s.spec_hash,
                    }
                    for s in specs
                ]
            }
        )
    )
    (tmp_path / "sa-token").write_text(SA_TOKEN + "\n")

    code = attic_ops.main(
        [
            "tokens",
            "--spec",
            str(spec_file),
            "--minted-dir",
            str(minted),
            "--api-server",
            kube.url,
            "--sa-token-file",
            str(tmp_path / "sa-token"),
        ],
        now=lambda: NOW,
    )

    assert code == 0
    assert all(r.headers["Authorization"] == f"Bearer {SA_TOKEN}" for r in kube.requests)
    captured = capsys.readouterr()
    assert "token ci -> gitlab-runners/attic-ci-token: created" in captured.out
    assert "token push -> gitlab-runners/attic-push-token: rotated" in captured.out
    for text in (captured.out, captured.err):
        for secret in (*jwts, SA_TOKEN, "SECRET-ci", "SECRET-push", "Bearer"):
            assert secret not in text
        for jwt in jwts:
            assert base64.b64encode(jwt.encode()).decode() not in text


def test_tokens_outside_a_pod_needs_api_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    (tmp_path / "tokens.json").write_text('{"tokens": []}')

    code = attic_ops.main(
        ["tokens", "--spec", str(tmp_path / "tokens.json"), "--minted-dir", str(tmp_path)],
        environ={},
    )

    assert code == 2
    assert "pass --api-server" in capsys.readouterr().err


def test_invalid_tokens_spec_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = {
        "name": "ci",
        "namespace": "gitlab-runners",
        "secret_name": "attic-ci-token",
        "validity_seconds": 100,
        "rotate_before_seconds": 10,
        "spec_hash": "h",
    }
    spec = {
        "tokens": [
            good,
            good,
            {**good, "name": "x/y", "namespace": "Bad_NS", "validity_seconds": 0},
            {**good, "name": "z", "secret_name": "other", "rotate_before_seconds": 100},
            {"name": "w"},
        ]
    }
    (tmp_path / "tokens.json").write_text(json.dumps(spec))
    (tmp_path / "sa").write_text(SA_TOKEN)

    code = attic_ops.main(
        [
            "tokens",
            "--spec",
            str(tmp_path / "tokens.json"),
            "--minted-dir",
            str(tmp_path),
            "--api-server",
            "http://127.0.0.1:1",
            "--sa-token-file",
            str(tmp_path / "sa"),
        ]
    )

    assert code == 2
    err = capsys.readouterr().err
    for problem in (
        "tokens[1]: duplicate token name 'ci'",
        "tokens[1]: gitlab-runners/attic-ci-token is written by another entry",
        "tokens[2]: name must be a label value",
        "namespace must be a DNS label",
        "validity_seconds must be a positive integer",
        "tokens[3] (z): rotate_before_seconds must be less than validity_seconds",
        "tokens[4] (w): missing 'namespace'",
    ):
        assert problem in err
