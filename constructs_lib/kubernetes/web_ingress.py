"""An HTTPS Ingress for services that take large, slow uploads (whole NARs, S3 objects) or
that stream server-sent events to browsers (the runner dashboard).

``traffic="uploads"``: nothing on the path may cap the body or time it out early: nginx gets
unlimited body size, no request buffering and long timeouts; Traefik needs no annotation for
that (it has no body limit and we never add its buffering middleware), but its entry point's
``readTimeout`` (60 s by default) must be raised in Traefik's own static config - see the
README. ``traffic="events"``: responses must not be buffered and a stream may stay open for
long (nginx: proxy buffering off, one-hour read and send timeouts), while request bodies stay
small (1 MiB). Traefik flushes ``text/event-stream`` responses as they come; its entry point
must keep ``writeTimeout`` at 0 (the default), and its ``buffering`` middleware (which also
holds whole responses) must never be added.

Sticky sessions (``sticky_cookie``), for apps that keep sessions in each pod's memory: nginx
takes them on the Ingress (cookie affinity), Traefik on the Service
(:func:`traefik_sticky_service_annotations`).

The certificate comes from cert-manager, or from an existing TLS Secret (``tls_secret``). For an
ACME HTTP-01 challenge cert-manager starts a solver pod in the Ingress's namespace, which a
default-deny namespace would hide from the ingress controller; the construct opens exactly that
path (cert-manager v1.21.1: ``pkg/issuer/acme/http/pod.go`` creates the pod in the Challenge's
namespace with the label ``acme.cert-manager.io/http01-solver: "true"``
(``pkg/apis/acme/v1/types.go``) listening on ``acmeSolverListenPort`` 8089
(``pkg/issuer/acme/http/http.go``)).

A rate limit applies to some path prefixes only. Both controllers attach limits per Ingress, so
those prefixes get a second Ingress for the same host; it reuses the TLS Secret without the
cert-manager annotation, so one Certificate (owned by the main Ingress) serves both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_kubernetes.ingress_v1 import IngressV1, IngressV1Spec
from constructs import Construct

from constructs_lib.kubernetes.custom_resource import CustomResource, CustomResourceProps
from constructs_lib.kubernetes.rate_limit import (
    RateLimitProps,
    nginx_rate_limit,
    rate_limit_problems,
    traefik_rate_limit,
)
from constructs_lib.kubernetes.structs import to_struct
from constructs_lib.kubernetes.traffic_policy import Peer, Rule, TrafficPolicy, TrafficPolicyProps
from constructs_lib.validation import check_dns_label, raise_if_problems

__all__ = [
    "ACME_SOLVER_PORT",
    "Controller",
    "Route",
    "Traffic",
    "WebIngress",
    "WebIngressProps",
    "traefik_sticky_service_annotations",
]

Controller = Literal["traefik", "nginx"]
"""The ingress controllers :class:`WebIngress` writes settings for."""
ACME_SOLVER_LABELS = {"acme.cert-manager.io/http01-solver": "true"}
ACME_SOLVER_PORT = 8089
"""Port of cert-manager's HTTP-01 solver pods."""
_PATH = re.compile(r"^/[A-Za-z0-9/_.-]*$")
NGINX_STREAMING = {
    "nginx.ingress.kubernetes.io/proxy-body-size": "0",
    "nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
    "nginx.ingress.kubernetes.io/proxy-buffering": "off",
    "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
    "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
}
NGINX_EVENTS = {
    "nginx.ingress.kubernetes.io/proxy-body-size": "1m",
    "nginx.ingress.kubernetes.io/proxy-buffering": "off",
    "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
    "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
}
_NGINX = {"uploads": NGINX_STREAMING, "events": NGINX_EVENTS}
_TRAEFIK_TLS = "traefik.ingress.kubernetes.io/router.tls"
_TRAEFIK_STICKY = "traefik.ingress.kubernetes.io/service.sticky.cookie"
Traffic = Literal["uploads", "events"]
"""What a :class:`WebIngress` carries: ``"uploads"`` (large, slow request bodies) or
``"events"`` (server-sent events: unbuffered, long-lived responses, small request bodies)."""


def traefik_sticky_service_annotations(cookie: str) -> dict[str, str]:
    """Service annotations that make Traefik pin a browser to one pod with ``cookie``
    (Traefik reads stickiness from the Service, not the Ingress)."""
    return {
        _TRAEFIK_STICKY: "true",
        f"{_TRAEFIK_STICKY}.name": cookie,
        f"{_TRAEFIK_STICKY}.secure": "true",
        f"{_TRAEFIK_STICKY}.httponly": "true",
        f"{_TRAEFIK_STICKY}.samesite": "lax",
    }


def _nginx_sticky(cookie: str) -> dict[str, str]:
    return {
        "nginx.ingress.kubernetes.io/affinity": "cookie",
        "nginx.ingress.kubernetes.io/session-cookie-name": cookie,
        "nginx.ingress.kubernetes.io/session-cookie-secure": "true",
        "nginx.ingress.kubernetes.io/session-cookie-samesite": "Lax",
    }


@dataclass(frozen=True, kw_only=True, slots=True)
class Route:
    """A path sent to another Service than the default one.

    Attributes:
        path: URL path, e.g. ``"/main/nix-cache-info"``.
        service_name: backend Service (same port as the default).
        path_type: ``"Exact"`` or ``"Prefix"``. Default ``"Prefix"``.
    """

    path: str
    service_name: str
    path_type: Literal["Exact", "Prefix"] = "Prefix"


@dataclass(frozen=True, kw_only=True, slots=True)
class WebIngressProps:
    """Props of :class:`WebIngress`.

    Attributes:
        name: Ingress name (also the TLS Secret's prefix).
        namespace: namespace of the Service.
        host: public host name.
        service_name: backend Service.
        service_port: its port number.
        controller: ``"traefik"`` or ``"nginx"``; decides annotations and middlewares.
        controller_namespace: namespace of the ingress controller's pods.
        class_name: IngressClass. Default - the controller's name.
        cluster_issuer: cert-manager ClusterIssuer that signs the certificate (into Secret
            ``<name>-tls``). Default - none; then ``tls_secret`` is required.
        tls_secret: an existing TLS Secret in ``namespace`` instead of cert-manager (no issuer
            annotation, no HTTP-01 opening). Default - none.
        acme_http01: the issuer solves ACME HTTP-01 challenges, so the controller may reach
            cert-manager's solver pods in ``namespace`` on 8089 (a NetworkPolicy
            ``<name>-acme-http01``). Only with ``cluster_issuer``. Default ``True``.
        traffic: ``"uploads"`` (large, slow request bodies) or ``"events"`` (server-sent
            events: streamed responses, small bodies). Default ``"uploads"``.
        sticky_cookie: pin each browser to one pod with this cookie (nginx; for Traefik put
            :func:`traefik_sticky_service_annotations` on the Service). Default - none.
        rate_limit: limit requests per client on some path prefixes. Default - none.
        routes: paths routed to other Services before ``/`` (longest match wins).
            Default - none.
        depends_on: resources that must exist first. Default - none.
    """

    name: str
    namespace: str
    host: str
    service_name: str
    service_port: int
    controller: Controller
    controller_namespace: str
    cluster_issuer: str | None = None
    tls_secret: str | None = None
    acme_http01: bool = True
    traffic: Traffic = "uploads"
    sticky_cookie: str | None = None
    class_name: str | None = None
    rate_limit: RateLimitProps | None = None
    routes: tuple[Route, ...] = ()
    depends_on: tuple[ITerraformDependable, ...] = ()


class WebIngress(Construct):
    """Ingress with a cert-manager certificate (or an existing TLS Secret) and upload- or
    event-stream-safe settings for its controller, plus one for the rate-limited prefixes.

    Creates the Ingress (child id ``Default``, so the construct's own address), a second Ingress
    ``<name>-limited`` and its Traefik Middleware (``Limited``, ``RateLimit``) when ``rate_limit``
    is set, and the NetworkPolicy ``<name>-acme-http01`` (``AcmeSolverPolicy``) when
    ``acme_http01`` is and the certificate comes from ``cluster_issuer``. ``traffic`` and
    ``sticky_cookie`` change only nginx's annotations (Traefik takes stickiness from the
    Service: :func:`traefik_sticky_service_annotations`).

    Attributes:
        ingress: the main Ingress (no limit).
        limited_ingress: the Ingress of ``rate_limit.paths``, if any.

    Example:
        ```python
        from constructs_lib.kubernetes.rate_limit import RateLimitProps
        from constructs_lib.kubernetes.web_ingress import WebIngress, WebIngressProps

        WebIngress(
            stack,
            "Ingress",
            WebIngressProps(
                name="attic",
                namespace="attic",
                host="cache.example.com",
                service_name="attic",
                service_port=80,
                controller="traefik",
                controller_namespace="traefik",
                cluster_issuer="letsencrypt",
                rate_limit=RateLimitProps(average=20, burst=50, paths=("/_api/",)),
            ),
        )
        ```
    """

    def __init__(self, scope: Construct, construct_id: str, props: WebIngressProps) -> None:
        super().__init__(scope, construct_id)
        limit = props.rate_limit
        limited = limit.paths if limit else ()
        paths = [("routes", r.path) for r in props.routes] + [
            ("rate_limit.paths", p) for p in limited
        ]
        raise_if_problems(
            "WebIngress",
            [
                check_dns_label("name", props.name),
                check_dns_label("controller_namespace", props.controller_namespace),
                ""
                if props.controller in ("traefik", "nginx")
                else f"controller: {props.controller!r} is not one of traefik, nginx",
                ""
                if (props.cluster_issuer is None) != (props.tls_secret is None)
                else "cluster_issuer/tls_secret: give exactly one (cert-manager issues the "
                f"certificate, or an existing Secret holds it; got {props.cluster_issuer!r}, "
                f"{props.tls_secret!r})",
                ""
                if props.traffic in _NGINX
                else f"traffic: {props.traffic!r} is not one of uploads, events",
                *(
                    f"{where}: {path!r} must start with '/' and use only A-Z a-z 0-9 - _ . / "
                    "(ingress controllers reject other characters in paths)"
                    for where, path in paths
                    if not _PATH.match(path)
                ),
                *(rate_limit_problems(limit, props.controller) if limit else ()),
                *(
                    f"rate_limit.paths: {r.path!r} is also a route; a path is limited or not"
                    for r in props.routes
                    if r.path in limited
                ),
            ],
        )
        tls = (
            {"cert-manager.io/cluster-issuer": props.cluster_issuer} if props.cluster_issuer else {}
        )
        if props.controller == "nginx":
            base = dict(_NGINX.get(props.traffic, NGINX_STREAMING))
            if props.sticky_cookie:
                base.update(_nginx_sticky(props.sticky_cookie))
        else:
            base = {_TRAEFIK_TLS: "true"}
        self.ingress = _ingress(
            self,
            "Default",
            props,
            name=props.name,
            annotations={**tls, **base},
            routes=(*props.routes, Route(path="/", service_name=props.service_name)),
            depends_on=props.depends_on,
        )
        if props.acme_http01 and props.cluster_issuer:
            TrafficPolicy(
                self,
                "AcmeSolverPolicy",
                TrafficPolicyProps(
                    name=f"{props.name}-acme-http01",
                    namespace=props.namespace,
                    pod_selector=ACME_SOLVER_LABELS,
                    ingress=[
                        Rule(
                            peers=[Peer(namespace=props.controller_namespace)],
                            ports=[ACME_SOLVER_PORT],
                        )
                    ],
                ),
            )
        self.limited_ingress: IngressV1 | None = None
        if limit is None:
            return
        if props.controller == "nginx":
            extra, ready = nginx_rate_limit(limit), props.depends_on
        else:
            middleware = CustomResource(
                self,
                "RateLimit",
                CustomResourceProps(
                    manifest={
                        "apiVersion": "traefik.io/v1alpha1",
                        "kind": "Middleware",
                        "metadata": {
                            "name": f"{props.name}-ratelimit",
                            "namespace": props.namespace,
                        },
                        "spec": {"rateLimit": traefik_rate_limit(limit)},
                    }
                ),
            )
            # "<namespace>-<name>@kubernetescrd"; a wrong reference makes Traefik drop the
            # whole route, so it is built from the Middleware's own fields.
            extra = {
                "traefik.ingress.kubernetes.io/router.middlewares": (
                    f"{props.namespace}-{middleware.name}@kubernetescrd"
                )
            }
            ready = (*props.depends_on, middleware.resource)
        self.limited_ingress = _ingress(
            self,
            "Limited",
            props,
            name=f"{props.name}-limited",
            annotations={**base, **extra},
            routes=tuple(Route(path=p, service_name=props.service_name) for p in limited),
            depends_on=ready,
        )


def _ingress(
    scope: Construct,
    construct_id: str,
    props: WebIngressProps,
    *,
    name: str,
    annotations: dict[str, str],
    routes: tuple[Route, ...],
    depends_on: tuple[ITerraformDependable, ...],
) -> IngressV1:
    return IngressV1(
        scope,
        construct_id,
        metadata={"name": name, "namespace": props.namespace, "annotations": annotations},
        spec=to_struct(
            IngressV1Spec,
            {
                "ingress_class_name": props.class_name or props.controller,
                "tls": [
                    {"hosts": [props.host], "secret_name": props.tls_secret or f"{props.name}-tls"}
                ],
                "rule": [
                    {
                        "host": props.host,
                        "http": {
                            "path": [
                                {
                                    "path": route.path,
                                    "path_type": route.path_type,
                                    "backend": {
                                        "service": {
                                            "name": route.service_name,
                                            "port": {"number": props.service_port},
                                        }
                                    },
                                }
                                for route in routes
                            ]
                        },
                    }
                ],
            },
        ),
        depends_on=list(depends_on) or None,
    )
