"""The ``docker-build`` component: build and push an image, from a Dockerfile with a Docker
daemon (the dind runner), or built by Nix and pushed by skopeo without one (the nix runner).

One visible job extends one of two hidden jobs, picked by the ``mode`` input: the two need
different images and runner tags. Both modes end by writing the pushed image's digest as a
dotenv report (``<digest_variable>=<image>@sha256:...``), so a later job (through ``needs``)
can deploy exactly the image that was pushed, never a tag.
"""

from __future__ import annotations

from constructs_lib.versions import DOCKER_CLI_IMAGE, DOCKER_DIND_IMAGE, NIX_IMAGE
from iac_tools.ci_component_parts import (
    FLAKES,
    VARIABLE_NAME_REGEX,
    Component,
    append_nix_config,
    common_inputs,
    inp,
    input_spec,
    tags_input,
    timeout_input,
)

# The dind runner's daemon: a TLS service named docker, client certificates in /certs/client.
DIND_VARIABLES = {
    "DOCKER_HOST": "tcp://docker:2376",
    "DOCKER_TLS_CERTDIR": "/certs",
    "DOCKER_TLS_VERIFY": "1",
    "DOCKER_CERT_PATH": "/certs/client",
}

# The dotenv report of the pushed digest.
DIGEST_FILE = "docker-build.env"

LATEST_CONDITION = (
    '[ "$[[ inputs.latest ]]" = true ] && [ -n "${CI_COMMIT_BRANCH:-}" ] &&\n'
    '    [ "$CI_COMMIT_BRANCH" = "$CI_DEFAULT_BRANCH" ]'
)

DOCKER_WAIT = """\
# The daemon is a service container that starts with the job: wait for it, bounded.
_db_waited=0
until docker info >/dev/null 2>&1; do
    if [ "$_db_waited" -ge "$IMAGE_DAEMON_WAIT" ]; then
        echo "docker-build: no Docker daemon at $DOCKER_HOST after ${IMAGE_DAEMON_WAIT}s: run" \\
            "on a dind runner (runner tags) or set the services input" >&2
        exit 1
    fi
    sleep 1
    _db_waited=$((_db_waited + 1))
done
"""

DOCKER_LOGIN = """\
# The job's registry credentials go on stdin, never on a command line.
printf '%s\\n' "$CI_REGISTRY_PASSWORD" |
    docker login --username "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"
"""

DOCKER_BUILD = """\
set -f # build_args are split at blanks, never globbed
docker build --pull --file "$IMAGE_DOCKERFILE" --tag "$IMAGE_NAME:$IMAGE_TAG" \\
    --label "org.opencontainers.image.source=$CI_PROJECT_URL" \\
    --label "org.opencontainers.image.revision=$CI_COMMIT_SHA" \\
    $IMAGE_BUILD_ARGS "$IMAGE_CONTEXT"
set +f
docker push "$IMAGE_NAME:$IMAGE_TAG"
"""

DOCKER_DIGEST = f"""\
# The digest the registry gave the push, from the image's RepoDigests (Docker shortens Docker
# Hub names there), written as a dotenv report for jobs that deploy by digest.
_db_repo=${{IMAGE_NAME#docker.io/}}
_db_repo=${{_db_repo#library/}}
_db_digest=
_db_format='{{{{range .RepoDigests}}}}{{{{.}}}} {{{{end}}}}'
for _db_entry in $(docker image inspect --format "$_db_format" "$IMAGE_NAME:$IMAGE_TAG"); do
    case $_db_entry in
        "$_db_repo"@sha256:*) _db_digest=${{_db_entry#*@}} ;;
    esac
done
if [ -z "$_db_digest" ]; then
    echo "docker-build: the registry gave $IMAGE_NAME:$IMAGE_TAG no digest" >&2
    exit 1
fi
printf '%s=%s@%s\\n' "$IMAGE_DIGEST_VARIABLE" "$IMAGE_NAME" "$_db_digest" > {DIGEST_FILE}
"""

DOCKER_LATEST = f"""\
# latest follows the default branch only: never merge requests, other branches or tags.
if {LATEST_CONDITION}; then
    docker tag "$IMAGE_NAME:$IMAGE_TAG" "$IMAGE_NAME:latest"
    docker push "$IMAGE_NAME:latest"
fi
"""

NIX_IMAGE_BUILD = """\
# The image: dockerTools.buildLayeredImage (a docker-archive file) or streamLayeredImage (a
# script that writes one to stdout).
set -f # nix_args are split at blanks, never globbed
_db_paths=$(nix build --print-build-logs --print-out-paths $IMAGE_NIX_ARGS "$IMAGE_INSTALLABLE")
set -- $_db_paths
set +f
if [ $# -ne 1 ]; then
    echo "docker-build: $IMAGE_INSTALLABLE has $# outputs; one image archive is expected" >&2
    exit 1
fi
_db_archive=$1
"""

NIX_IMAGE_SKOPEO = """\
# skopeo pushes the archive without a Docker daemon (so no privileged pod): the image's own,
# else substituted from the caches and never built (--max-jobs 0).
_db_skopeo=$(command -v skopeo) || _db_skopeo=
if [ -z "$_db_skopeo" ]; then
    for _db_path in $(nix build --max-jobs 0 --no-link --print-out-paths "$IMAGE_SKOPEO"); do
        if [ -x "$_db_path/bin/skopeo" ]; then
            _db_skopeo=$_db_path/bin/skopeo
        fi
    done
fi
if [ -z "$_db_skopeo" ]; then
    echo "docker-build: no skopeo: $IMAGE_SKOPEO is in no cache (nix build --max-jobs 0)" >&2
    exit 1
fi
"""

NIX_IMAGE_PUSH = f"""\
# Credentials on stdin, into an auth file of this job only. --insecure-policy: there is no
# signature to check on an archive this job has just built.
export TMPDIR="${{TMPDIR:-/tmp}}"
_db_auth=$(mktemp -d)
export REGISTRY_AUTH_FILE="$_db_auth/auth.json"
printf '%s\\n' "$CI_REGISTRY_PASSWORD" |
    "$_db_skopeo" login --username "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"
_db_digestfile="$_db_auth/digest"
if [ -x "$_db_archive" ] && [ ! -d "$_db_archive" ]; then
    "$_db_archive" | "$_db_skopeo" --insecure-policy copy --digestfile "$_db_digestfile" \\
        docker-archive:/dev/stdin "docker://$IMAGE_NAME:$IMAGE_TAG"
else
    "$_db_skopeo" --insecure-policy copy --digestfile "$_db_digestfile" \\
        "docker-archive:$_db_archive" "docker://$IMAGE_NAME:$IMAGE_TAG"
fi
# The pushed digest as a dotenv report, for jobs that deploy by digest.
printf '%s=%s@%s\\n' "$IMAGE_DIGEST_VARIABLE" "$IMAGE_NAME" "$(cat "$_db_digestfile")" \\
    > {DIGEST_FILE}
# latest follows the default branch only: never merge requests, other branches or tags.
if {LATEST_CONDITION}; then
    "$_db_skopeo" --insecure-policy copy "docker://$IMAGE_NAME:$IMAGE_TAG" \\
        "docker://$IMAGE_NAME:latest"
fi
rm -rf "$_db_auth"
"""


def docker_build() -> Component:
    """Build and push an image: from a Dockerfile with a Docker daemon, or built by Nix."""
    inputs = {
        **common_inputs("docker-build", "build"),
        "mode": input_spec(
            "string",
            "dockerfile: docker build with a Docker-in-Docker daemon (dind runner); nix: nix "
            "build of a dockerTools image, pushed by skopeo without a daemon (nix runner).",
            "dockerfile",
            options=["dockerfile", "nix"],
        ),
        "image": input_spec("string", "Image repository to push to.", "$CI_REGISTRY_IMAGE"),
        "tag": input_spec("string", "Image tag to push.", "$CI_COMMIT_SHORT_SHA"),
        "latest": input_spec(
            "boolean", "Also push the tag latest, on the default branch only.", True
        ),
        "context": input_spec("string", "dockerfile mode: the build context.", "."),
        "dockerfile": input_spec("string", "dockerfile mode: the Dockerfile.", "Dockerfile"),
        "build_args": input_spec(
            "string",
            "dockerfile mode: extra docker build arguments, split at blanks (no quoting), "
            "e.g. --build-arg VERSION=1 --target runtime.",
            "",
        ),
        "services": input_spec(
            "array",
            "dockerfile mode: service containers. Keep it empty on the fleet's dind runner, "
            "which starts the daemon itself. Elsewhere: [{name: "
            f"{DOCKER_DIND_IMAGE.ref}, alias: docker}}] (and the runner must share "
            "/certs/client between the service and the job).",
            [],
        ),
        "daemon_wait": input_spec(
            "number", "dockerfile mode: seconds to wait for the Docker daemon.", 60
        ),
        "dind_runner_tags": tags_input("dind", "dockerfile mode"),
        "installable": input_spec(
            "string",
            "nix mode: the image, a dockerTools.buildLayeredImage or streamLayeredImage "
            "installable.",
            ".#dockerImage",
        ),
        "nix_args": input_spec(
            "string", "nix mode: extra arguments of nix build, split at blanks (no quoting).", ""
        ),
        "skopeo": input_spec(
            "string",
            "nix mode: installable of skopeo, substituted and never built (pin it, e.g. "
            "github:NixOS/nixpkgs/<rev>#skopeo).",
            "nixpkgs#skopeo",
        ),
        "nix_runner_tags": tags_input("nix", "nix mode"),
        "digest_variable": input_spec(
            "string",
            f"The job's dotenv report ({DIGEST_FILE}) sets this variable to "
            "<image>@sha256:<digest>, the image it pushed, for later jobs (needs) that deploy "
            "by digest.",
            "DOCKER_BUILD_IMAGE",
            regex=VARIABLE_NAME_REGEX,
        ),
        "timeout": timeout_input("1h"),
    }
    dockerfile = {
        "image": DOCKER_CLI_IMAGE.ref,
        "services": inp("services"),
        "tags": inp("dind_runner_tags"),
        "variables": {
            **DIND_VARIABLES,
            "IMAGE_CONTEXT": inp("context"),
            "IMAGE_DOCKERFILE": inp("dockerfile"),
            "IMAGE_BUILD_ARGS": inp("build_args"),
            "IMAGE_DAEMON_WAIT": inp("daemon_wait"),
        },
        "script": [DOCKER_WAIT, DOCKER_LOGIN, DOCKER_BUILD, DOCKER_DIGEST, DOCKER_LATEST],
    }
    nix = {
        "image": NIX_IMAGE.ref,
        "tags": inp("nix_runner_tags"),
        "variables": {
            "IMAGE_INSTALLABLE": inp("installable"),
            "IMAGE_NIX_ARGS": inp("nix_args"),
            "IMAGE_SKOPEO": inp("skopeo"),
        },
        "script": [
            append_nix_config("nix build of a flake.", [FLAKES]),
            NIX_IMAGE_BUILD,
            NIX_IMAGE_SKOPEO,
            NIX_IMAGE_PUSH,
        ],
    }
    # One job whose mode picks one of two hidden jobs: the two need different images and tags.
    hidden = f".{inp('job_name')}"
    job = {
        "extends": f"{hidden}-{inp('mode')}",
        "stage": inp("stage"),
        "interruptible": True,
        "timeout": inp("timeout"),
        "variables": {
            "IMAGE_NAME": inp("image"),
            "IMAGE_TAG": inp("tag"),
            "IMAGE_DIGEST_VARIABLE": inp("digest_variable"),
        },
        # Also a plain artifact: a later pipeline (a rollback) can look up what this one pushed.
        "artifacts": {"paths": [DIGEST_FILE], "reports": {"dotenv": DIGEST_FILE}},
    }
    return Component(
        name="docker-build",
        inputs=inputs,
        jobs={
            f"{hidden}-dockerfile": dockerfile,
            f"{hidden}-nix": nix,
            inp("job_name"): job,
        },
        module=__name__,
    )
