"""Every connection the cache flywheel and certificate issuance make, held against the
NetworkPolicies the runners and attic stacks of one environment synthesize together.

The hops come from the synthesized artefacts, the way the programs use them: the nix runner's
``ATTIC_ENDPOINT``; atticd's ``api-endpoint``, where the attic client pushes
(``client/src/command/push.rs``, ``watch_store.rs``: ``api.set_endpoint``); atticd's storage
endpoint, where it streams chunks and redirects single-chunk NAR downloads
(``server/src/api/binary_cache.rs``, ``Redirect::temporary``); the Postgres Cluster; and, for
every TLS Ingress, cert-manager's HTTP-01 solver pod beside it (cert-manager v1.21.1
``pkg/issuer/acme/http/pod.go``: the Challenge's namespace, label
``acme.cert-manager.io/http01-solver: "true"``, port 8089). A public host served by an Ingress
is reached through the controller's pods on their own ports (kube-proxy short-circuits the
load balancer's address to them), and through the load balancer when its addresses are
configured. Policies are evaluated by :mod:`tests.support.netpol`.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from config_model.loader import EXAMPLE_CONFIG, load_config
from constructs_lib.storage.minio_tenant import S3_PORT as MINIO_POD_PORT, tenant_pod_labels
from constructs_lib.storage.seaweedfs import S3_PORT as SEAWEEDFS_POD_PORT, filer_pod_labels
from stacks.attic_endpoints import MINIO_TENANT
from tests.conftest import DATA
from tests.support.netpol import Address, Cluster, Endpoint, Pod, from_terraform, selects
from tests.support.synth_output import SynthOutput, resources

# Ports the controllers' pods listen on for http and https: the Traefik chart's
# ports.web.port / ports.websecure.port (traefik-helm-chart traefik/values.yaml), and
# ingress-nginx's controller.containerPort.
CONTROLLER_PORTS = {"traefik": {"http": 8000, "https": 8443}, "nginx": {"http": 80, "https": 443}}
ACME_SOLVER = {
    "acme.cert-manager.io/http01-solver": "true",
    "acme.cert-manager.io/http-domain": "1234567",
    "acme.cert-manager.io/http-token": "7654321",
}
ACME_PORT = 8089
PUBLIC_IP = "52.219.170.10"  # any address outside the private ranges
_REF = re.compile(r"^\$\{(\w+)\.([\w-]+)\.metadata\[0\]\.name\}$")
_ips = (f"10.42.{n // 250}.{n % 250 + 1}" for n in range(10_000))


def _name(doc: dict[str, Any], value: str) -> str:
    """A literal name, or the name behind a ``${<type>.<id>.metadata[0].name}`` reference."""
    found = _REF.match(value)
    if not found:
        return value
    return _name(doc, resources(doc, found[1])[found[2]]["metadata"]["name"])


@dataclass
class Environment:
    """The runners and attic stacks of one environment, seen as one cluster."""

    name: str
    runners: dict[str, Any]
    attic: dict[str, Any]
    config: Any

    def __post_init__(self) -> None:
        policies = []
        for doc in (self.runners, self.attic):
            for item in resources(doc, "kubernetes_network_policy_v1").values():
                policy = from_terraform(item)
                policy["metadata"]["namespace"] = _name(doc, policy["metadata"]["namespace"])
                policies.append(policy)
        policies += self._chart_policies()
        self.cluster = Cluster(policies)
        ingress = self.config.attic.ingress
        self.controller = Pod(
            ingress.controller_namespace,
            {"app.kubernetes.io/name": ingress.controller},
            next(_ips),
            "ingress controller",
        )

    def _chart_policies(self) -> list[dict[str, Any]]:
        """SeaweedFS renders its own policies (templates/shared/networkpolicy.yaml): the filer's
        selects the filer pods and admits the release's pods plus networkPolicy.extraIngress."""
        out = []
        for release in resources(self.attic, "helm_release").values():
            if release["chart"] != "seaweedfs":
                continue
            values = yaml.safe_load(release["values"][0])
            if not values.get("networkPolicy", {}).get("enabled"):
                continue
            own = {
                "app.kubernetes.io/name": "seaweedfs",
                "app.kubernetes.io/instance": release["name"],
            }
            out.append(
                {
                    "metadata": {"name": "seaweedfs-filer", "namespace": release["namespace"]},
                    "spec": {
                        "podSelector": {"matchLabels": filer_pod_labels(release["name"])},
                        "policyTypes": ["Ingress"],
                        "ingress": [
                            {
                                "from": [{"podSelector": {"matchLabels": own}}],
                                "ports": [{"port": SEAWEEDFS_POD_PORT}],
                            },
                            *values["networkPolicy"].get("extraIngress", []),
                        ],
                    },
                }
            )
        return out

    # pods ------------------------------------------------------------------------------

    def deployment_pod(self, name: str) -> Pod:
        for item in resources(self.attic, "kubernetes_deployment_v1").values():
            if item["metadata"]["name"] == name:
                labels = item["spec"]["template"]["metadata"]["labels"]
                namespace = _name(self.attic, item["metadata"]["namespace"])
                return Pod(namespace, labels, next(_ips), name)
        raise AssertionError(f"no Deployment {name}")

    def cron_job_pod(self, name: str) -> Pod | None:
        for item in resources(self.attic, "kubernetes_cron_job_v1").values():
            if item["metadata"]["name"] == name:
                template = item["spec"]["job_template"]["spec"]["template"]
                namespace = _name(self.attic, item["metadata"]["namespace"])
                return Pod(namespace, template["metadata"]["labels"], next(_ips), name)
        return None

    def nix_runner(self) -> dict[str, Any] | None:
        for release in resources(self.runners, "helm_release").values():
            if release["name"] == "gitlab-runner-nix":
                values = yaml.safe_load(release["values"][0])
                [entry] = tomllib.loads(values["runners"]["config"])["runners"]
                return dict(entry)
        return None

    def nix_job(self, entry: dict[str, Any]) -> Pod:
        kube = entry["kubernetes"]
        namespace = _name(self.runners, kube["namespace"])
        return Pod(namespace, kube["pod_labels"], next(_ips), "nix job")

    def postgres_primary(self) -> Pod:
        for item in resources(self.attic, "kubernetes_manifest").values():
            manifest = item["manifest"]
            if manifest["kind"] == "Cluster":
                name = manifest["metadata"]["name"]
                labels = {
                    "cnpg.io/cluster": name,
                    "cnpg.io/instanceRole": "primary",
                    "cnpg.io/podRole": "instance",
                }
                namespace = _name(self.attic, manifest["metadata"]["namespace"])
                return Pod(namespace, labels, next(_ips), f"postgres {name}")
        raise AssertionError("no Postgres Cluster")

    def server_toml(self) -> dict[str, Any]:
        for item in resources(self.attic, "kubernetes_config_map_v1").values():
            if item["metadata"]["name"] == "attic-config":
                return tomllib.loads(item["data"]["server.toml"])
        raise AssertionError("no attic-config")

    def storage_url(self) -> str:
        storage = self.server_toml()["storage"]
        return storage.get("endpoint") or f"https://s3.{storage['region']}.amazonaws.com"

    # where a URL leads ---------------------------------------------------------------------

    def _service_pods(self, namespace: str, name: str, port: int) -> tuple[Pod, int]:
        for doc in (self.attic, self.runners):
            for item in resources(doc, "kubernetes_service_v1").values():
                if (
                    _name(doc, item["metadata"]["name"]),
                    _name(doc, item["metadata"]["namespace"]),
                ) != (
                    name,
                    namespace,
                ):
                    continue
                [entry] = [p for p in item["spec"]["port"] if p["port"] == port]
                for deployment in resources(doc, "kubernetes_deployment_v1").values():
                    pod_spec = deployment["spec"]["template"]
                    if not selects(
                        {"matchLabels": item["spec"]["selector"]}, pod_spec["metadata"]["labels"]
                    ):
                        continue
                    target = entry["target_port"]
                    if not str(target).isdigit():
                        [target] = [
                            p["container_port"]
                            for c in pod_spec["spec"]["container"]
                            for p in c.get("port", [])
                            if p.get("name") == target
                        ]
                    pod = Pod(namespace, pod_spec["metadata"]["labels"], next(_ips), name)
                    return pod, int(target)
        storage = self.config.attic.storage
        if name == "seaweedfs-s3":  # the chart's S3 Service over the filer pods
            return Pod(namespace, filer_pod_labels(), next(_ips), name), SEAWEEDFS_POD_PORT
        if name == "minio":  # the operator's Service, port 80 -> the tenant pods' 9000
            assert storage.minio.namespace == namespace
            return Pod(namespace, tenant_pod_labels(MINIO_TENANT), next(_ips), name), MINIO_POD_PORT
        raise AssertionError(f"no Service {namespace}/{name}")

    def _ingress_backend(self, host: str) -> tuple[Pod, int] | None:
        for item in resources(self.attic, "kubernetes_ingress_v1").values():
            for rule in item["spec"]["rule"]:
                if rule["host"] != host:
                    continue
                [root] = [p for p in rule["http"]["path"] if p["path"] == "/"]
                service = root["backend"]["service"]
                namespace = _name(self.attic, item["metadata"]["namespace"])
                return self._service_pods(
                    namespace, _name(self.attic, service["name"]), service["port"]["number"]
                )
        return None

    def legs(self, client: Endpoint, url: str) -> Iterator[tuple[Endpoint, Endpoint, int]]:
        """The connections opening ``url`` from ``client`` takes."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        backend = self._ingress_backend(host)
        if backend is not None:
            ingress = self.config.attic.ingress
            ports = CONTROLLER_PORTS[ingress.controller]
            pod_port = ports[parts.scheme] if ingress.controller_ports is None else port
            yield client, self.controller, pod_port
            yield self.controller, *backend
            for cidr in ingress.load_balancer_cidrs:
                balancer = Address(str(next(ipaddress.ip_network(cidr).hosts())), "load balancer")
                yield client, balancer, port
            return
        service = re.match(r"^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(\.cluster\.local)?$", host)
        if service:
            pod, target = self._service_pods(service[2], service[1], port)
            yield client, pod, target
            return
        yield client, Address(PUBLIC_IP, host), port

    def assert_reaches(self, what: str, client: Endpoint, url: str) -> None:
        for src, dst, port in self.legs(client, url):
            denial = self.cluster.denial(src, dst, port)
            assert denial is None, f"{self.name}: {what} ({url}): {denial}"


def _environments(synth: SynthOutput, config_path: Any) -> Iterator[Environment]:
    for env_name, env in load_config(config_path).environments.items():
        yield Environment(
            env_name,
            synth.stack(f"runners-{env_name}"),
            synth.stack(f"attic-{env_name}"),
            env.config,
        )


@pytest.fixture(scope="module")
def environments(example_synth: SynthOutput, variants_synth: SynthOutput) -> list[Environment]:
    return [
        *_environments(example_synth, EXAMPLE_CONFIG),
        *_environments(variants_synth, DATA / "variants.yaml"),
    ]


def _flywheel(env: Environment) -> tuple[Pod, dict[str, str]] | None:
    entry = env.nix_runner()
    if entry is None:
        return None
    variables = dict(item.split("=", 1) for item in entry.get("environment", []))
    if "ATTIC_ENDPOINT" not in variables:
        return None
    return env.nix_job(entry), variables


def test_nix_jobs_reach_every_hop_of_the_flywheel(environments: list[Environment]):
    wired = 0
    for env in environments:
        flywheel = _flywheel(env)
        if flywheel is None:
            continue
        job, variables = flywheel
        env.assert_reaches("nix job pulls", job, variables["ATTIC_ENDPOINT"])
        env.assert_reaches("nix job pushes", job, env.server_toml()["api-endpoint"])
        env.assert_reaches("nix job follows a NAR redirect", job, env.storage_url())
        wired += 1
    assert wired >= 6


def test_atticd_reaches_storage_and_postgres_and_is_served_by_the_controller(
    environments: list[Environment],
):
    outside = Address(PUBLIC_IP, "a client outside the cluster")
    for env in environments:
        atticd = env.deployment_pod("attic")
        env.assert_reaches("atticd stores and streams chunks", atticd, env.storage_url())
        denial = env.cluster.denial(atticd, env.postgres_primary(), 5432)
        assert denial is None, f"{env.name}: {denial}"
        if env.config.attic.ingress.enabled:
            env.assert_reaches("an outside client", outside, env.server_toml()["api-endpoint"])
            if env.config.attic.storage.clients_outside_cluster:
                env.assert_reaches("an outside client's redirect", outside, env.storage_url())


def test_cache_warming_pulls_pushes_and_follows_redirects(environments: list[Environment]):
    warmed = 0
    for env in environments:
        warm = env.cron_job_pod("attic-cache-warm")
        if warm is None:
            continue
        env.assert_reaches("cache warming pulls", warm, f"http://attic.{warm.namespace}.svc/")
        env.assert_reaches("cache warming pushes", warm, env.server_toml()["api-endpoint"])
        env.assert_reaches("cache warming follows a redirect", warm, env.storage_url())
        warmed += 1
    assert warmed >= 1


def test_flywheel_openings_go_no_further(environments: list[Environment]):
    for env in environments:
        flywheel = _flywheel(env)
        if flywheel is None:
            continue
        job, _ = flywheel
        cluster = env.cluster
        # The controller only on the ports it serves, never Postgres.
        assert not cluster.allows(job, env.controller, 9100), env.name
        assert not cluster.allows(job, env.postgres_primary(), 5432), env.name
        # Storage with a public endpoint is reached through the controller only.
        if urlsplit(env.storage_url()).hostname in _ingress_hosts(env):
            storage = env.config.attic.storage
            pods = (
                Pod(storage.minio.namespace, tenant_pod_labels(MINIO_TENANT), next(_ips))
                if storage.backend == "minio"
                else Pod(storage.seaweedfs.namespace, filer_pod_labels(), next(_ips))
            )
            port = MINIO_POD_PORT if storage.backend == "minio" else SEAWEEDFS_POD_PORT
            assert not cluster.allows(job, pods, port), env.name
        # dind jobs get none of it.
        dind = Pod(env.config.runners.dind_namespace, job.labels, next(_ips), "dind job")
        assert not cluster.allows(dind, env.controller, CONTROLLER_PORTS["traefik"]["https"])
        assert not cluster.allows(dind, env.deployment_pod("attic"), 8080), env.name


def test_postgres_reaches_its_backups_and_the_filer_its_index(environments: list[Environment]):
    """Postgres archives wherever its ObjectStore points (in the cluster or outside it);
    SeaweedFS's filer reaches Postgres when its index lives there, the master does not."""
    archives, filers = set(), 0
    for env in environments:
        primary = env.postgres_primary()
        for item in resources(env.attic, "kubernetes_manifest").values():
            if item["manifest"]["kind"] == "ObjectStore":
                url = item["manifest"]["spec"]["configuration"].get("endpointURL")
                env.assert_reaches("Postgres archives", primary, url or "https://s3.amazonaws.com")
                archives.add(".svc" in (url or ""))
        for release in resources(env.attic, "helm_release").values():
            values = yaml.safe_load(release["values"][0]) if release["chart"] == "seaweedfs" else {}
            store = values.get("filer", {}).get("extraEnvironmentVars", {})
            if "WEED_POSTGRES2_HOSTNAME" in store:
                port, namespace = int(store["WEED_POSTGRES2_PORT"]), release["namespace"]
                filer = Pod(namespace, filer_pod_labels(release["name"]), next(_ips), "filer")
                assert env.cluster.denial(filer, primary, port) is None, env.name
                master = Pod(namespace, {"app.kubernetes.io/component": "master"}, next(_ips))
                assert not env.cluster.allows(master, primary, port), env.name
                filers += 1
    assert archives == {True, False}
    assert filers >= 2


def _ingress_hosts(env: Environment) -> set[str]:
    return {
        rule["host"]
        for item in resources(env.attic, "kubernetes_ingress_v1").values()
        for rule in item["spec"]["rule"]
    }


def test_the_controller_reaches_acme_solvers_beside_every_tls_ingress_and_nothing_else(
    environments: list[Environment],
):
    opened, closed = set(), set()
    for env in environments:
        cluster = env.cluster
        for doc in (env.runners, env.attic):
            for item in resources(doc, "kubernetes_ingress_v1").values():
                annotations = item["metadata"].get("annotations", {})
                if (
                    not item["spec"].get("tls")
                    or "cert-manager.io/cluster-issuer" not in annotations
                ):
                    continue
                namespace = _name(doc, item["metadata"]["namespace"])
                solver = Pod(namespace, ACME_SOLVER, next(_ips), "acme solver")
                if env.config.attic.ingress.acme_http01:
                    denial = cluster.denial(env.controller, solver, ACME_PORT)
                    assert denial is None, f"{env.name}: {denial}"
                    opened.add(namespace)
                else:
                    assert not cluster.allows(env.controller, solver, ACME_PORT)
                    closed.add(env.name)
                stranger = Pod(env.config.runners.job_namespace, {}, next(_ips), "a job")
                neighbour = Pod(namespace, {"app": "other"}, next(_ips), "another pod")
                assert not cluster.allows(env.controller, solver, 8080), env.name
                assert not cluster.allows(stranger, solver, ACME_PORT), env.name
                assert not cluster.allows(env.controller, neighbour, ACME_PORT), env.name
    assert {"attic", "attic-storage"} <= opened
    assert closed


# --------------------------------------------------------------------------------------------
# The evaluator itself


def _policy(namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def test_evaluator_isolates_only_selected_pods_per_direction():
    web = Pod("a", {"app": "web"}, "10.0.0.1")
    db = Pod("a", {"app": "db"}, "10.0.0.2")
    client = Pod("b", {}, "10.0.1.1")
    open_cluster = Cluster([])
    assert open_cluster.allows(client, db, 5432)
    cluster = Cluster(
        [
            _policy(
                "a",
                {
                    "podSelector": {"matchLabels": {"app": "db"}},
                    "ingress": [
                        {
                            "from": [
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {"kubernetes.io/metadata.name": "a"}
                                    },
                                    "podSelector": {"matchLabels": {"app": "web"}},
                                }
                            ],
                            "ports": [{"port": "5432"}],
                        }
                    ],
                },
            )
        ]
    )
    assert cluster.allows(web, db, 5432)
    assert not cluster.allows(web, db, 5433)
    assert not cluster.allows(client, db, 5432)  # namespace AND pod selector
    assert cluster.allows(db, client, 443)  # no Egress in policyTypes: egress stays open


def test_evaluator_ip_blocks_except_and_port_ranges():
    job = Pod("jobs", {"app": "job"}, "10.0.0.5")
    cluster = Cluster(
        [
            _policy(
                "jobs",
                {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                            "ports": [{"port": 8000, "endPort": 8010, "protocol": "TCP"}],
                        }
                    ],
                },
            )
        ]
    )
    assert cluster.allows(job, Address("52.0.0.1"), 8005)
    assert not cluster.allows(job, Address("52.0.0.1"), 8005, "UDP")
    assert not cluster.allows(job, Address("10.1.2.3"), 8005)
    assert not cluster.allows(job, Pod("other", {}, "10.0.9.9"), 8005)
    assert "limited by p" in (cluster.denial(job, Address("52.0.0.1"), 22) or "")
    with pytest.raises(ValueError, match="named port"):
        Cluster(
            [
                _policy(
                    "jobs",
                    {
                        "podSelector": {},
                        "policyTypes": ["Egress"],
                        "egress": [{"ports": [{"port": "http"}]}],
                    },
                )
            ]
        ).allows(job, Address("1.1.1.1"), 80)
