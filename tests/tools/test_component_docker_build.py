"""The docker-build component (templates/docker-build): its job run for real against stub
docker, nix and skopeo, in both modes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.component_sandbox import PASSWORD, Sandbox
from tests.support.component_templates import jobs_of
from tests.support.gitlab_ci import resolve_extends
from tests.support.shell_stubs import stub

DIGEST = "sha256:" + "0123456789abcdef" * 4
# `docker image inspect --format ...RepoDigests...`: the pushed repository's digest, beside the
# entry of an image it happens to share content with.
DOCKER_STUB = f"""#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/docker.calls"
case $1 in
    info) [ -z "${{FAKE_NO_DAEMON:-}}" ] ;;
    login) cat > "$RECORD/docker.stdin" ;;
    image) echo "${{FAKE_REPO_DIGESTS-docker.io/library/alpine@sha256:{"f" * 64} \
${{IMAGE_NAME#docker.io/}}@{DIGEST}}}" ;;
esac
"""

SKOPEO_STUB = f"""#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/skopeo.calls"
case " $* " in
    *" login "*) cat > "$RECORD/skopeo.login" ;;
    *" docker-archive:/dev/stdin "*) cat > "$RECORD/skopeo.stdin" ;;
esac
while [ $# -gt 0 ]; do
    if [ "$1" = --digestfile ]; then printf '%s' "{DIGEST}" > "$2"; fi
    shift
done
"""

IMAGE_NIX_STUB = """#!/bin/sh
printf '%s\\n' "$*" >> "$RECORD/nix.calls"
case " $* " in
    *" --max-jobs 0 "*) printf '%s\\n' "$FAKE_SKOPEO_MAN" "$FAKE_SKOPEO" ;;
    *) echo "$FAKE_ARCHIVE" ;;
esac
"""


_INSPECT = "image inspect --format {{{{range .RepoDigests}}}}{{{{.}}}} {{{{end}}}} {ref}"


def _docker_job(**inputs: Any) -> dict[str, Any]:
    return resolve_extends(jobs_of("docker-build", **inputs), "docker-build")


@pytest.mark.parametrize(
    ("branch", "latest"),
    [("main", True), ("feature", False), (None, False)],
    ids=["default-branch", "other-branch", "merge-request"],
)
def test_docker_build_builds_pushes_and_tags_latest_on_the_default_branch(
    sandbox: Sandbox, branch: str | None, latest: bool
) -> None:
    stub(sandbox.bin / "docker", DOCKER_STUB)
    job = _docker_job(build_args="--build-arg VERSION=1 --target runtime", context="app")
    env = {} if branch is None else {"CI_COMMIT_BRANCH": branch}

    step = sandbox.run(job, ("script",), env=env)

    assert step.code == 0, step.output
    image = "registry.example.com/group/app"
    calls = sandbox.calls("docker")
    assert calls[:2] == [
        "info",
        "login --username gitlab-ci-token --password-stdin registry.example.com",
    ]
    assert calls[2].split() == [
        "build",
        "--pull",
        "--file",
        "Dockerfile",
        "--tag",
        f"{image}:01234567",
        "--label",
        "org.opencontainers.image.source=https://gitlab.example.com/group/app",
        "--label",
        "org.opencontainers.image.revision=0123456789abcdef0123456789abcdef01234567",
        "--build-arg",
        "VERSION=1",
        "--target",
        "runtime",
        "app",
    ]
    pushed = [f"push {image}:01234567", _INSPECT.format(ref=f"{image}:01234567")]
    if latest:
        pushed += [f"tag {image}:01234567 {image}:latest", f"push {image}:latest"]
    assert calls[3:] == pushed
    # The pushed digest, for later jobs: the dotenv report the job declares.
    assert job["artifacts"]["reports"]["dotenv"] == "docker-build.env"
    assert (sandbox.work / "docker-build.env").read_text() == (
        f"DOCKER_BUILD_IMAGE={image}@{DIGEST}\n"
    )
    assert (sandbox.record / "docker.stdin").read_text() == f"{PASSWORD}\n"
    assert PASSWORD not in "\n".join(calls) + step.output
    assert job["variables"]["DOCKER_HOST"] == "tcp://docker:2376"


def test_docker_build_latest_can_be_turned_off(sandbox: Sandbox) -> None:
    stub(sandbox.bin / "docker", DOCKER_STUB)
    job = _docker_job(latest=False, image="registry.example.com/other", tag="v1")

    step = sandbox.run(job, ("script",), env={"CI_COMMIT_BRANCH": "main"})

    assert step.code == 0, step.output
    assert sandbox.calls("docker")[3:] == [
        "push registry.example.com/other:v1",
        _INSPECT.format(ref="registry.example.com/other:v1"),
    ]


@pytest.mark.parametrize(
    ("image", "digests", "written"),
    [
        ("docker.io/library/app", f"app@{DIGEST}", f"docker.io/library/app@{DIGEST}"),
        ("docker.io/acme/app", f"acme/app@{DIGEST}", f"docker.io/acme/app@{DIGEST}"),
        ("registry.example.com/app", "", None),
        ("registry.example.com/app", f"registry.example.com/other@{DIGEST}", None),
    ],
    ids=["docker-hub-library", "docker-hub", "no-digest", "only-another-repository"],
)
def test_docker_build_reports_the_pushed_digest_or_fails(
    sandbox: Sandbox, image: str, digests: str, written: str | None
) -> None:
    """Docker shortens Docker Hub names in RepoDigests; a push without a digest of its own
    repository fails the job instead of reporting another image."""
    stub(sandbox.bin / "docker", DOCKER_STUB)
    job = _docker_job(image=image, digest_variable="TF_VAR_app_image")

    step = sandbox.run(job, ("script",), env={"FAKE_REPO_DIGESTS": digests})

    report = sandbox.work / "docker-build.env"
    if written is None:
        assert step.code == 1
        assert f"the registry gave {image}:01234567 no digest" in step.output
        assert not report.exists()
    else:
        assert step.code == 0, step.output
        assert report.read_text() == f"TF_VAR_app_image={written}\n"


def test_docker_build_gives_up_on_a_missing_daemon_within_the_bound(sandbox: Sandbox) -> None:
    stub(sandbox.bin / "docker", DOCKER_STUB)

    step = sandbox.run(_docker_job(daemon_wait=2), ("script",), env={"FAKE_NO_DAEMON": "1"})

    assert step.code == 1
    assert step.seconds < 10
    assert "no Docker daemon at tcp://docker:2376 after 2s" in step.output
    assert set(sandbox.calls("docker")) == {"info"}


@pytest.mark.parametrize("kind", ["layered", "stream"])
def test_docker_build_pushes_a_nix_built_image_with_skopeo(sandbox: Sandbox, kind: str) -> None:
    stub(sandbox.bin / "nix", IMAGE_NIX_STUB)
    skopeo = sandbox.root / "store" / "skopeo"
    stub(skopeo / "bin" / "skopeo", SKOPEO_STUB)
    archive = sandbox.root / "store" / "image.tar.gz"
    if kind == "stream":
        stub(archive, "#!/bin/sh\necho IMAGE-TAR-STREAM\n")
    else:
        archive.write_text("IMAGE-TAR")
        archive.chmod(0o444)
    job = _docker_job(mode="nix", installable=".#image", nix_args="--impure")
    env = {
        "FAKE_ARCHIVE": str(archive),
        "FAKE_SKOPEO": str(skopeo),
        "FAKE_SKOPEO_MAN": str(sandbox.root / "store" / "skopeo-man"),
        "CI_COMMIT_BRANCH": "main",
    }

    step = sandbox.run(job, ("script",), env=env)

    assert step.code == 0, step.output
    assert sandbox.calls("nix") == [
        "build --print-build-logs --print-out-paths --impure .#image",
        "build --max-jobs 0 --no-link --print-out-paths nixpkgs#skopeo",
    ]
    image = "registry.example.com/group/app"
    source = "docker-archive:/dev/stdin" if kind == "stream" else f"docker-archive:{archive}"
    calls = sandbox.calls("skopeo")
    assert calls[0] == "login --username gitlab-ci-token --password-stdin registry.example.com"
    assert calls[1].split() == [
        "--insecure-policy",
        "copy",
        "--digestfile",
        calls[1].split()[3],
        source,
        f"docker://{image}:01234567",
    ]
    assert calls[2:] == [
        f"--insecure-policy copy docker://{image}:01234567 docker://{image}:latest",
    ]
    assert (sandbox.work / "docker-build.env").read_text() == (
        f"DOCKER_BUILD_IMAGE={image}@{DIGEST}\n"
    )
    assert (sandbox.record / "skopeo.login").read_text() == f"{PASSWORD}\n"
    if kind == "stream":
        assert (sandbox.record / "skopeo.stdin").read_text() == "IMAGE-TAR-STREAM\n"
    assert PASSWORD not in step.output


def test_docker_build_nix_mode_fails_without_skopeo_in_any_cache(sandbox: Sandbox) -> None:
    stub(sandbox.bin / "nix", IMAGE_NIX_STUB)
    archive = sandbox.root / "image.tar.gz"
    archive.write_text("IMAGE-TAR")
    env = {"FAKE_ARCHIVE": str(archive), "FAKE_SKOPEO": "", "FAKE_SKOPEO_MAN": "/nowhere"}

    step = sandbox.run(_docker_job(mode="nix"), ("script",), env=env)

    assert step.code == 1
    assert "no skopeo" in step.output
