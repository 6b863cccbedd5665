"""Every chart version and container image the library deploys, pinned in one place.

Digests were copied from public manifests that pin the multi-arch index of the same tag (found
with code search; no registry is reachable from the build machines). Each pin's ``sources`` says
where its tag@digest pair was read; a test lists the pins that only one source corroborates.
Re-check them with ``crane digest <image>:<tag>`` when bumping. Where no public digest was found
the tag is kept and ``digest`` is ``None``; a test lists those so they stay visible.

A digest names content in its repository: a wrong one fails the pull, it cannot run other code.
So a pin with a single source risks availability, not integrity.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALL_IMAGES",
    "ALPINE_IMAGE",
    "ATTIC_IMAGE",
    "BARMAN_CLOUD_PLUGIN_CHART",
    "BARMAN_CLOUD_PLUGIN_IMAGE",
    "BARMAN_CLOUD_SIDECAR_IMAGE",
    "BAZEL_REMOTE_IMAGE",
    "CERT_MANAGER_CHART",
    "CERT_MANAGER_IMAGES",
    "CLOUDNATIVE_PG_CHART",
    "CLOUDNATIVE_PG_IMAGE",
    "DOCKER_CLI_IMAGE",
    "DOCKER_DIND_IMAGE",
    "GITLAB_RUNNER_CHART",
    "GITLAB_RUNNER_IMAGE",
    "MINIO_IMAGE",
    "MINIO_OPERATOR_CHART",
    "MINIO_OPERATOR_IMAGE",
    "NIX_IMAGE",
    "OPENSSL_IMAGE",
    "OPS_PYTHON_IMAGE",
    "POSTGRESQL_IMAGE",
    "ROCKY8_IMAGE",
    "ROCKY9_IMAGE",
    "SEAWEEDFS_CHART",
    "SEAWEEDFS_IMAGE",
    "ChartPin",
    "ImagePin",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class ChartPin:
    """A Helm chart at an exact version.

    Attributes:
        repository: Helm repository URL (``https://...``) or OCI registry (``oci://...``).
        chart: chart name inside the repository.
        version: exact chart version.
        app_version: the application version the chart ships (informational, for the README).
    """

    repository: str
    chart: str
    version: str
    app_version: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ImagePin:
    """A container image at an immutable reference.

    Attributes:
        repository: registry and repository, without tag.
        tag: the release tag.
        digest: ``sha256:...`` of the multi-arch index, or ``None`` when no public source gave one.
        sources: where the tag@digest pair was read (repository, path, commit or date), one
            entry per independent source. Default - none (a config override).
    """

    repository: str
    tag: str
    digest: str | None
    sources: tuple[str, ...] = ()

    @property
    def tag_ref(self) -> str:
        """The tag as Helm charts that join ``repository:tag`` expect it, digest included."""
        return f"{self.tag}@{self.digest}" if self.digest else self.tag

    @property
    def ref(self) -> str:
        """The full image reference."""
        return f"{self.repository}:{self.tag_ref}"


CLOUDNATIVE_PG_CHART = ChartPin(
    repository="https://cloudnative-pg.github.io/charts",
    chart="cloudnative-pg",
    version="0.29.0",
    app_version="1.30.0",
)
"""The CloudNativePG operator chart
(:class:`~constructs_lib.platform.cnpg_operator.CloudNativePgOperator`)."""
CLOUDNATIVE_PG_IMAGE = ImagePin(
    repository="ghcr.io/cloudnative-pg/cloudnative-pg",
    tag="1.30.0",
    digest="sha256:a2701eb97cdd2a34b1fdb2cb51987f544b706e40bec72ae7146cd8580efefebb",
    sources=(
        "a public cosign-verify runbook pinning cloudnative-pg@ this digest (code search, 2026-12)",
        "a public installer script, CNPG_OPERATOR_IMAGE=...:1.30.0@ this digest (same search)",
    ),
)
"""The CloudNativePG operator image."""

BARMAN_CLOUD_PLUGIN_CHART = ChartPin(
    repository="https://cloudnative-pg.github.io/charts",
    chart="plugin-barman-cloud",
    version="0.7.0",
    app_version="v0.13.0",
)
"""The CNPG Barman Cloud plugin chart
(:class:`~constructs_lib.platform.barman_cloud_plugin.BarmanCloudPlugin`)."""
BARMAN_CLOUD_PLUGIN_IMAGE = ImagePin(
    repository="ghcr.io/cloudnative-pg/plugin-barman-cloud",
    tag="v0.13.0",
    digest="sha256:71589dbac582333442812b07b31f7ea4d00324a8358aac7ca507dabf9f4b6c96",
    sources=(
        "a public nix dockerTools.pullImage of this digest (code search, 2026-12)",
        "a public e2e script expecting v0.13.0@ this digest (same search)",
    ),
)
"""The Barman Cloud plugin image."""
BARMAN_CLOUD_SIDECAR_IMAGE = ImagePin(
    repository="ghcr.io/cloudnative-pg/plugin-barman-cloud-sidecar",
    tag="v0.13.0",
    digest="sha256:990361af3319f9e23aafa0f6d7981f99bf1f69b4e6a85cf1bc7d71d6f09bb288",
    sources=(
        "a public nix dockerTools.pullImage of this digest (code search, 2026-12)",
        "a public e2e script expecting v0.13.0@ this digest (same search)",
    ),
)
"""The Barman Cloud sidecar the plugin injects into Postgres pods."""

CERT_MANAGER_CHART = ChartPin(
    repository="oci://quay.io/jetstack/charts",
    chart="cert-manager",
    version="v1.21.1",
    app_version="v1.21.1",
)
"""The cert-manager chart (:class:`~constructs_lib.platform.cert_manager.CertManager`)."""
CERT_MANAGER_IMAGES = {
    "controller": ImagePin(
        repository="quay.io/jetstack/cert-manager-controller",
        tag="v1.21.1",
        digest="sha256:416a2d76870d996460e62bd7f521bf14fa017be9e3e904aab92163a331fcb61a",
        sources=(
            "a public nix module pinning the five v1.21.1 components (code search, 2026-12)",
            "public digest tables and Go contract tests of cert-manager v1.21.1 (same search)",
        ),
    ),
    "webhook": ImagePin(
        repository="quay.io/jetstack/cert-manager-webhook",
        tag="v1.21.1",
        digest="sha256:d8b3961b51c8c7320633f8208dc46bf88aa13804d0f7cbe48a096b2c523cee42",
        sources=(
            "a public nix module pinning the five v1.21.1 components (code search, 2026-12)",
            "public digest tables and Go contract tests of cert-manager v1.21.1 (same search)",
        ),
    ),
    "cainjector": ImagePin(
        repository="quay.io/jetstack/cert-manager-cainjector",
        tag="v1.21.1",
        digest="sha256:ccf6b919ec0500745a47a910118f834f9636d0aac1ff221245cd2557ed8c7c98",
        sources=(
            "a public nix module pinning the five v1.21.1 components (code search, 2026-12)",
            "public digest tables and Go contract tests of cert-manager v1.21.1 (same search)",
        ),
    ),
    "acmesolver": ImagePin(
        repository="quay.io/jetstack/cert-manager-acmesolver",
        tag="v1.21.1",
        digest="sha256:dbc7cc1354f603918e7c5af7f55a0a620537394452c93a565bde75c6f48e8837",
        sources=(
            "a public nix module pinning the five v1.21.1 components (code search, 2026-12)",
            "public digest tables and Go contract tests of cert-manager v1.21.1 (same search)",
        ),
    ),
    "startupapicheck": ImagePin(
        repository="quay.io/jetstack/cert-manager-startupapicheck",
        tag="v1.21.1",
        digest="sha256:d8ab6416e6e7303a86fa0a8daa82c94a8001f21c9d78eb2e7db20534e5d07ae8",
        sources=(
            "a public nix module pinning the five v1.21.1 components (code search, 2026-12)",
            "public digest tables and Go contract tests of cert-manager v1.21.1 (same search)",
        ),
    ),
}
"""cert-manager's images by component: ``controller``, ``webhook``, ``cainjector``, ``acmesolver``,
``startupapicheck``."""

MINIO_OPERATOR_CHART = ChartPin(
    repository="https://operator.min.io/",
    chart="operator",
    version="7.1.1",
    app_version="v7.1.1",
)
"""The MinIO operator chart (:class:`~constructs_lib.platform.minio_operator.MinioOperator`)."""
# No public manifest pins this tag by digest; add it (``crane digest``) before production use.
MINIO_OPERATOR_IMAGE = ImagePin(
    repository="quay.io/minio/operator",
    tag="v7.1.1",
    digest=None,
)
"""The MinIO operator image."""

# Attic publishes no releases: CI tags each commit. Commit 12cbeca1 with its multi-arch index
# digest, as pinned side by side in shinzui/nagare ``nix/attic.nix``.
ATTIC_IMAGE = ImagePin(
    repository="ghcr.io/zhaofengli/attic",
    tag="12cbeca141f46e1ade76728bce8adc447f2166c6",
    digest="sha256:18574aba70fc89d2b695273fbe2e7b2f8ad7e8e786b4cc535124fbe14bada1d0",
    sources=(
        "shinzui/nagare nix/attic.nix (commit 12cbeca1 beside this index digest)",
        "code search 2026-12: six more public manifests pin :latest@ this digest",
    ),
)
"""atticd and atticadm (:class:`~constructs_lib.attic.attic_server.AtticServer` and the Attic
operations)."""

# PostgreSQL operand for CNPG clusters: PostgreSQL 18.6 from CNPG's official, cosign-signed image
# catalog. The "system" flavour on Debian trixie is what CNPG 1.30.0 itself defaults to
# (pkg/versions/versions.go: DefaultImageName 18.4-system-trixie). Timestamped tags are
# immutable, unlike ``18.6-system-trixie``, which public files show at several digests. Only
# the catalog gives this digest: no other public file pins it (code search, 2026-12), and
# third-party notes mention later 18.6 builds (e.g. 202610050823) whose digests could not be
# read. Before a first apply, compare with the current catalog
# (``image-catalogs/catalog-system-trixie.yaml``, ``spec.images[major=18]``).
POSTGRESQL_IMAGE = ImagePin(
    repository="ghcr.io/cloudnative-pg/postgresql",
    tag="18.6-202608170814-system-trixie",
    digest="sha256:14cfefd0db8bbc617a4882c74a2811af361fc8d0fc1733062c982c6e746a3875",
    sources=(
        "cloudnative-pg/artifacts image-catalogs/catalog-system-trixie.yaml at ce5057c5 "
        "(2026-08-17, images.cnpg.io/date 20260817; signed by catalog-system-trixie.yaml."
        "sigstore.json)",
    ),
)
"""The PostgreSQL operand of CNPG clusters
(:class:`~constructs_lib.postgres.cnpg_cluster.CnpgCluster`)."""

SEAWEEDFS_CHART = ChartPin(
    repository="https://seaweedfs.github.io/seaweedfs/helm",
    chart="seaweedfs",
    version="4.44.0",
    app_version="4.44",
)
"""The SeaweedFS chart (:class:`~constructs_lib.storage.seaweedfs.SeaweedFs`)."""
SEAWEEDFS_IMAGE = ImagePin(
    repository="chrislusf/seaweedfs",
    tag="4.44",
    digest="sha256:e67e8c385484120b78bff47ba5f4debbca47fbd27ed1a39f016f47e8baea615b",
    sources=(
        "a public compose README citing Docker Hub's 4.44 index digest (code search, 2026-12)",
        "a public Testcontainers test pinning 4.44@ this digest (same search)",
    ),
)
"""The SeaweedFS image (master, volume server, filer and S3 gateway)."""

# The tenant image the MinIO operator 7.1.1 tenant chart ships; MinIO stopped publishing
# community images in 2025, so this is the last one it points at.
MINIO_IMAGE = ImagePin(
    repository="quay.io/minio/minio",
    tag="RELEASE.2025-04-08T15-41-24Z",
    digest="sha256:8834ae47a2de3509b83e0e70da9369c24bbbc22de42f2a2eddc530eee88acd1b",
    sources=(
        "a public note reading this manifest list from quay.io's API (code search, 2026-12)",
        "public compose files and tests pinning this tag@digest (same search)",
    ),
)
"""The MinIO server image of a tenant
(:class:`~constructs_lib.storage.minio_tenant.MinioTenant`)."""


# bazel-remote v2.6.2 (newest release seen in public manifests; github.com/buchgr/bazel-remote
# releases/tag/v2.6.2). Digest as pinned in expbuild/expbuild
# ``docs/k8s-platform/engine-validation.md`` (tested there on linux/amd64 only: confirm with
# ``crane digest`` that it is the multi-arch index before running on arm64).
BAZEL_REMOTE_IMAGE = ImagePin(
    repository="buchgr/bazel-remote-cache",
    tag="v2.6.2",
    digest="sha256:8109f1f39eb17d898cf51e08b41e4eabaaaeb1f584c2f22c1be45b7568fcc512",
    sources=(
        "expbuild/expbuild docs/k8s-platform/engine-validation.md and its tests (one project)",
    ),
)
"""bazel-remote (:class:`~constructs_lib.bazel.bazel_remote.BazelRemote`)."""

# Nix 2.34.8; the same tag@digest pair is pinned in several public repositories (e.g. a
# forgejo-runner NixOS module's runner labels and Dockerfiles `FROM nixos/nix:2.34.8@sha256:...`).
NIX_IMAGE = ImagePin(
    repository="docker.io/nixos/nix",
    tag="2.34.8",
    digest="sha256:1a711b619c8a713eff32c3f8d8781b3b4d0130cb91c0a57f67e87abfeeb90b01",
    sources=(
        "a public forgejo-runner NixOS module's runner labels (nixos/nix:2.34.8@ this digest)",
        "public Dockerfiles FROM nixos/nix:2.34.8@ this digest (code search, 2026-12)",
    ),
)
"""Nix, for cache warming and the nix runner's jobs."""

# Runs the in-cluster operations script (standard library only): Python 3.13, user 65532,
# no shell. Pair seen in AI-Riksarkivet/htrflow-batch .docker/htrflow-campaigns.dockerfile
# (commit 0c633a64) and one other public Dockerfile.
OPS_PYTHON_IMAGE = ImagePin(
    repository="gcr.io/distroless/python3-debian13",
    tag="nonroot",
    digest="sha256:8ee214843129f43e2ebf5e0ca9f2e4e6d8292143d1b8a6787f169b5898578884",
    sources=(
        "AI-Riksarkivet/htrflow-batch .docker/htrflow-campaigns.dockerfile (commit 0c633a64)",
        "code search 2026-12: ten more public Dockerfiles pin nonroot@ this digest",
    ),
)
"""A standard-library Python that runs the in-cluster operations scripts."""

GITLAB_RUNNER_CHART = ChartPin(
    repository="https://charts.gitlab.io",
    chart="gitlab-runner",
    version="0.92.0",
    app_version="19.3.0",
)
"""The gitlab-runner chart (:class:`~constructs_lib.runners.gitlab_runner.GitLabRunner`)."""
# The helper image is not pinned here: the runner pulls the helper of its own version for each
# node's architecture (``<arch>-v19.3.0``), and one tag cannot serve mixed-arch nodes.

# GitLab Runner manager: 19.3.1, the patch release of chart 0.92.0's appVersion (19.3.0), from
# GitLab's Docker Hub repository (the same images as registry.gitlab.com). GitLab publishes no
# digests: not in the release notes, and the chart's values.yaml takes only a tag
# (``alpine-v{{ .Chart.AppVersion }}``). Re-checked 2026-12 by code search: this pair is the
# ``FROM`` of one public Dockerfile (it rebuilds the 19-3-stable runner at commit a16f5092) and
# no second public file pins it; nor does any public file pin alpine-v19.3.0 or alpine-v19.3.2
# by digest. So it stays single-sourced: confirm with ``crane digest
# docker.io/gitlab/gitlab-runner:alpine-v19.3.1`` (and ``crane manifest`` for arm64) before a
# first apply; a wrong digest only fails the pull.
GITLAB_RUNNER_IMAGE = ImagePin(
    repository="docker.io/gitlab/gitlab-runner",
    tag="alpine-v19.3.1",
    digest="sha256:af0325804248aee217e055e753add77ccaaba6c8f5e2143b01108fd401165ef3",
    sources=(
        "one public Dockerfile: FROM docker.io/gitlab/gitlab-runner:alpine-v19.3.1@ this digest "
        "(code search, 2026-12)",
    ),
)
"""The gitlab-runner manager image."""

# Alpine 3.23.6, the newest 3.23 patch seen, for small utility containers. Index digest of 16
# manifests (amd64, arm/v6, arm/v7, arm64/v8, 386, ppc64le, riscv64, s390x, with attestations) as
# listed in docker-library/repo-info ``repos/alpine/remote/3.23.md``; the same tag@digest pair is
# pinned in mi2428/dropcheck-agent ``docker/minio/Dockerfile`` and many other public files.
ALPINE_IMAGE = ImagePin(
    repository="docker.io/library/alpine",
    tag="3.23.6",
    digest="sha256:85fe1e81d6758c208f3e1eed4338a1997e19d4be002d4dd32d3100c9a8c010a0",
    sources=(
        "docker-library/repo-info repos/alpine/remote/3.23.md",
        "mi2428/dropcheck-agent docker/minio/Dockerfile",
    ),
)
"""Alpine, for small utility containers and the docker runner's default job image."""

# Docker 29.8.1, CLI for CI jobs and the daemon they talk to (Docker-in-Docker), kept at the same
# release so client and server API versions match. Index digests (amd64, arm/v6, arm/v7, arm64/v8,
# with attestations) from one docker-library/repo-info snapshot (commit 41503ba5,
# ``repos/docker/remote/29.8.1-cli.md`` and ``29.8.1-dind.md``). Official images are rebuilt when
# their Alpine base changes, so ``crane digest`` may show a newer build of the same tag.
DOCKER_CLI_IMAGE = ImagePin(
    repository="docker.io/library/docker",
    tag="29.8.1-cli",
    digest="sha256:018edbc908e08fcc9dbf029c812c34251e9b4719e6f71ca0e5eae2a987d014ca",
    sources=(
        "docker-library/repo-info repos/docker/remote/29.8.1-cli.md (commit 41503ba5)",
        "code search 2026-12: ten public Dockerfiles pin 29-cli/29.8.1-cli@ this digest",
    ),
)
"""The Docker CLI for CI jobs, at the daemon's release."""
DOCKER_DIND_IMAGE = ImagePin(
    repository="docker.io/library/docker",
    tag="29.8.1-dind",
    digest="sha256:3f3c01aaaebf7cce837356b688b7c059a4749f10bd7660dec7c58fc454a283f0",
    sources=(
        "docker-library/repo-info repos/docker/remote/29.8.1-dind.md (commit 41503ba5)",
        "code search 2026-12: ten public files pin 29.8.1-dind@ this digest",
    ),
)
"""The Docker daemon for Docker-in-Docker jobs."""

# Generates atticd's signing key in the cluster (constructs_lib/attic/signing_key_job.py): the
# dind image is the pinned one that ships OpenSSL 3 (its "apk add ... openssl" layer in
# repo-info 29.8.1-dind.md) with busybox base64, so no new image is trusted for it.
OPENSSL_IMAGE = DOCKER_DIND_IMAGE
"""Generates atticd's signing key in the cluster (the dind image, which ships OpenSSL 3)."""

# Rocky Linux job images. The Docker Hub library ``rockylinux`` image is deprecated (no 8.10 there,
# rocky-linux/sig-cloud-instance-images#54; docker-library/docs ``rockylinux/deprecated.md`` points
# to ``rockylinux/rockylinux``), so these come from the project's own repository, which
# quay.io/rockylinux/rockylinux mirrors with identical digests. Both pairs are Renovate-pinned in
# SisyphusMD/dreame-valetudo ``packaging/install-smoke.Dockerfile`` (as the ``8`` and ``9`` tags,
# built natively on amd64 and arm64) and pinned as ``8.10@``/``9.8@`` in other public files; 9.8's
# dated tag ``9.8.20260525.0`` has the same digest.
ROCKY8_IMAGE = ImagePin(
    repository="docker.io/rockylinux/rockylinux",
    tag="8.10",
    digest="sha256:e8a49c5403b687db05d4d67333fa45808fbe74f36e683cec7abb1f7d0f2338c6",
    sources=(
        "SisyphusMD/dreame-valetudo packaging/install-smoke.Dockerfile (tag 8)",
        "other public files pin 8.10@ this digest",
    ),
)
"""Rocky Linux 8 job image."""
ROCKY9_IMAGE = ImagePin(
    repository="docker.io/rockylinux/rockylinux",
    tag="9.8",
    digest="sha256:8101994123cf3d0a8fee517bee7f39e555c7d92bd2d9eb3303cc988a0eeed00f",
    sources=(
        "SisyphusMD/dreame-valetudo packaging/install-smoke.Dockerfile (tag 9)",
        "other public files pin 9.8@ and 9.8.20260525.0@ this digest",
    ),
)
"""Rocky Linux 9 job image."""

ALL_IMAGES: tuple[ImagePin, ...] = (
    CLOUDNATIVE_PG_IMAGE,
    BARMAN_CLOUD_PLUGIN_IMAGE,
    BARMAN_CLOUD_SIDECAR_IMAGE,
    *CERT_MANAGER_IMAGES.values(),
    MINIO_OPERATOR_IMAGE,
    ATTIC_IMAGE,
    POSTGRESQL_IMAGE,
    SEAWEEDFS_IMAGE,
    MINIO_IMAGE,
    BAZEL_REMOTE_IMAGE,
    NIX_IMAGE,
    OPS_PYTHON_IMAGE,
    GITLAB_RUNNER_IMAGE,
    ALPINE_IMAGE,
    DOCKER_CLI_IMAGE,
    DOCKER_DIND_IMAGE,
    ROCKY8_IMAGE,
    ROCKY9_IMAGE,
)
"""Every image the constructs deploy (the CI images below are not among them)."""

# --- Images of CI jobs (the repository's .gitlab-ci.yml and templates/*/template.yml) ---
# Internal (not in __all__): the application's pipeline and CI components use them.

# OpenTofu 1.13.1 for plan/apply jobs (Alpine-based, with a shell). Index digest as pinned with
# its multi-arch note in a public Go module (``DefaultImage`` of kubectl-tuggy's tofu package).
TOFU_IMAGE = ImagePin(
    repository="ghcr.io/opentofu/opentofu",
    tag="1.13.1",
    digest="sha256:1df996fca13806a20d5a3d3ad54acdcf76bcb1aa4ac30b5ba169b9e4cecdbcc8",
    sources=("kubectl-tuggy tofu package DefaultImage (the only public pin found, 2026-12)",),
)

# Node 24 on Debian bookworm for jobs that synthesize (cdktf needs Node; bookworm's python3 is
# 3.11). The digest is ``node:24-bookworm-slim`` when it was 24.18.0, as pinned in two public
# Dockerfiles; the tag moves, the digest does not.
CI_NODE_IMAGE = ImagePin(
    repository="docker.io/library/node",
    tag="24-bookworm-slim",
    digest="sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d",
    sources=(
        "a public Dockerfile FROM node:24-bookworm-slim@ this digest (code search, 2026-12)",
        "a public dependency table: node:24.18.0-bookworm-slim@ this digest (same search)",
    ),
)

# kubectl 1.34.1 with a shell (registry.k8s.io/kubectl has none, and CI jobs need one), for the
# k8s-deploy component. The same tag@digest pair is pinned in several public manifests.
KUBECTL_IMAGE = ImagePin(
    repository="docker.io/alpine/k8s",
    tag="1.34.1",
    digest="sha256:ec714df3813b5405292860f8a1c55c5727bf8c33c88992f1e981efad8065547f",
    sources=(
        "a public Helm chart that fails unless alpine/k8s 1.34.1 has this digest (2026-12)",
        "a public Dockerfile FROM alpine/k8s:1.34.1@ this digest (same search)",
    ),
)
