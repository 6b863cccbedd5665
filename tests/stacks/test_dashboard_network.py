"""The dashboard's NetworkPolicies, evaluated (tests/support/netpol.py): they select its pods and
open exactly the listed paths - in from the ingress controller on 8080 and from Prometheus on
9090; out to DNS, the Kubernetes API, GitLab and Prometheus - and cert-manager's HTTP-01 solver
beside its Ingress."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from config_model.loader import ResolvedEnvironment
from stacks.attic_endpoints import url_port
from stacks.dashboard import prometheus_namespace
from tests.support.netpol import Address, Cluster, Pod, from_terraform
from tests.support.synth_output import resources

Stacks = list[tuple[str, ResolvedEnvironment, dict[str, Any]]]

_REF = re.compile(r"^\$\{(\w+)\.([\w-]+)\.metadata\[0\]\.name\}$")
_ips = (f"10.42.{n // 250}.{n % 250 + 1}" for n in range(10_000))
PUBLIC = "52.219.170.10"  # outside every private range
# Ports worth probing: the app's two, the solver's, and ports a widened policy might open.
PROBED = (22, 53, 80, 443, 5432, 6443, 8000, 8080, 8089, 8443, 9090, 10250)


def _name(doc: dict[str, Any], value: str) -> str:
    found = _REF.match(value)
    if not found:
        return value
    return _name(doc, resources(doc, found[1])[found[2]]["metadata"]["name"])


def _cluster(doc: dict[str, Any]) -> Cluster:
    policies = []
    for item in resources(doc, "kubernetes_network_policy_v1").values():
        policy = from_terraform(item)
        policy["metadata"]["namespace"] = _name(doc, policy["metadata"]["namespace"])
        policies.append(policy)
    return Cluster(policies)


def _dashboard_pod(env: ResolvedEnvironment, doc: dict[str, Any]) -> Pod:
    (deployment,) = resources(doc, "kubernetes_deployment_v1").values()
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return Pod(env.config.dashboard.namespace, labels, next(_ips), "dashboard")


def _opened(cluster: Cluster, src: Pod | Address, dst: Pod | Address) -> set[int]:
    return {port for port in PROBED if cluster.allows(src, dst, port)}


def test_the_policies_select_the_dashboard_pods_and_nothing_else(dashboard_environments: Stacks):
    for name, env, doc in dashboard_environments:
        cluster = _cluster(doc)
        pod = _dashboard_pod(env, doc)
        stranger = Pod(pod.namespace, {"app": "something-else"}, next(_ips), "other pod")
        controller = Pod(
            env.config.dashboard.ingress.effective(env.config.attic.ingress).controller_namespace,
            {"app.kubernetes.io/name": "controller"},
            next(_ips),
        )
        # The namespace denies by default (but DNS); only the dashboard's pods get openings.
        assert _opened(cluster, controller, stranger) == set(), name
        assert _opened(cluster, stranger, Address(PUBLIC)) == {53}, name
        by_name = {p["metadata"]["name"] for p in cluster.policies}
        assert {"default-deny-ingress", "default-deny-egress", "runner-dashboard"} <= by_name


def test_in_only_the_controller_on_8080_and_prometheus_on_9090(dashboard_environments: Stacks):
    for name, env, doc in dashboard_environments:
        config = env.config
        dashboard = config.dashboard
        cluster = _cluster(doc)
        pod = _dashboard_pod(env, doc)
        ingress = dashboard.ingress.effective(config.attic.ingress)
        scraper_ns = (
            prometheus_namespace(dashboard.prometheus_url) if dashboard.prometheus_url else None
        )
        # Without an in-cluster Prometheus URL the scraper's namespace is unknown: any
        # namespace may scrape 9090 (the metrics listener serves nothing else).
        anyone_scrapes = config.monitoring.prometheus_operator and not scraper_ns
        controller = Pod(ingress.controller_namespace, {"app": "controller"}, next(_ips))
        expected = {8080} if dashboard.ingress.enabled else set()
        assert _opened(cluster, controller, pod) == expected | ({9090} if anyone_scrapes else set())
        prometheus = Pod(scraper_ns or "monitoring", {"app": "prometheus"}, next(_ips))
        expected = {9090} if config.monitoring.prometheus_operator else set()
        assert _opened(cluster, prometheus, pod) == expected, name
        neighbour = Pod(config.attic.namespace, {"app": "attic"}, next(_ips))
        assert _opened(cluster, neighbour, pod) == ({9090} if anyone_scrapes else set()), name
        assert _opened(cluster, Address(PUBLIC, "the internet"), pod) == set(), name


def test_out_only_dns_the_api_server_gitlab_and_prometheus(dashboard_environments: Stacks):
    for name, env, doc in dashboard_environments:
        config = env.config
        dashboard = config.dashboard
        cluster = _cluster(doc)
        pod = _dashboard_pod(env, doc)
        dns = Pod("kube-system", {"k8s-app": "kube-dns"}, next(_ips), "kube-dns")
        assert cluster.allows(pod, dns, 53, "UDP"), name
        assert cluster.allows(pod, dns, 53, "TCP"), name
        for cidr in dashboard.api_server_cidrs:
            network = ipaddress.ip_network(cidr)
            api = Address(str(network[min(1, network.num_addresses - 1)]), "API server")
            assert {443, 6443} <= _opened(cluster, pod, api), (name, cidr)
        gitlab = Address(PUBLIC, "gitlab")
        gitlab_port = url_port(config.gitlab.url)
        opened = _opened(cluster, pod, gitlab)
        assert gitlab_port in opened, name
        allowed = {53, gitlab_port}
        if "0.0.0.0/0" in dashboard.api_server_cidrs:
            allowed |= {443, 6443}
        url = dashboard.prometheus_url
        if url:
            namespace = prometheus_namespace(url)
            port = url_port(url)
            if namespace:
                prometheus = Pod(namespace, {"app": "prometheus"}, next(_ips))
                assert port in _opened(cluster, pod, prometheus), name
                assert _opened(cluster, pod, prometheus) <= allowed | {port}, name
            else:
                allowed.add(port)
                assert port in _opened(cluster, pod, Address(PUBLIC, urlsplit(url).hostname or ""))
        assert opened <= allowed, (name, opened)
        # In the cluster, nothing but those ports: never atticd (8080), Postgres or a kubelet.
        # (An ipBlock also matches pod addresses, so 0.0.0.0/0 reaches pods on its ports.)
        attic = Pod(config.attic.namespace, {"app.kubernetes.io/name": "attic"}, next(_ips))
        manager = Pod(config.runners.namespace, {"app": "runner"}, next(_ips))
        for other in (attic, manager):
            assert _opened(cluster, pod, other) <= allowed, (name, other)
            assert not {5432, 8080, 10250} & _opened(cluster, pod, other), (name, other)


def test_the_controller_reaches_the_acme_solver_only_where_the_issuer_needs_it(
    dashboard_environments: Stacks,
):
    seen = set()
    for name, env, doc in dashboard_environments:
        dashboard = env.config.dashboard
        ingress = dashboard.ingress.effective(env.config.attic.ingress)
        cluster = _cluster(doc)
        solver = Pod(
            dashboard.namespace,
            {"acme.cert-manager.io/http01-solver": "true"},
            next(_ips),
            "acme solver",
        )
        controller = Pod(ingress.controller_namespace, {"app": "controller"}, next(_ips))
        wanted = dashboard.ingress.enabled and ingress.acme_http01
        assert _opened(cluster, controller, solver) == ({8089} if wanted else set()), name
        seen.add(wanted)
    assert seen == {True, False}
