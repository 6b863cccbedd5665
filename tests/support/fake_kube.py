"""An in-process fake of the Kubernetes Secret API, for the in-cluster scripts that write
Secrets (the token rotation, the signing-key Job)."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.fake_http import FakeServer, Recorded, kube_status

SA_TOKEN = "KUBE-SA-TOKEN-SENTINEL"


class FakeKube(FakeServer):
    """GET/POST/PUT of core/v1 Secrets with resourceVersion checks, like the API server."""

    def __init__(self) -> None:
        super().__init__()
        self.namespaces: set[str] = {"gitlab-runners", "attic"}
        self.forbidden_namespaces: set[str] = set()
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.concurrent_writes: set[tuple[str, str]] = set()  # changed just before our PUT
        self._version = 100

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method in ("POST", "PUT")]

    def put_secret(self, namespace: str, name: str, obj: dict[str, Any]) -> None:
        self._version += 1
        obj = json.loads(json.dumps(obj))
        obj.setdefault("metadata", {}).update(
            {"name": name, "namespace": namespace, "resourceVersion": str(self._version)}
        )
        self.secrets[(namespace, name)] = obj

    def respond(self, request: Recorded) -> tuple[int, Any]:
        if request.headers.get("Authorization") != f"Bearer {SA_TOKEN}":
            return kube_status(401, "Unauthorized", "Unauthorized")
        match = re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?", request.path)
        if match is None:
            return kube_status(404, "NotFound", "the server could not find the resource")
        namespace, name = match.groups()
        if namespace in self.forbidden_namespaces:
            return self._forbidden(request.method.lower(), namespace)
        if request.method == "POST" and name is None:
            return self._post(namespace, request.body)
        if request.method in ("GET", "PUT") and name is not None:
            handler = self._get if request.method == "GET" else self._put
            return handler(namespace, name, request.body)
        return kube_status(405, "MethodNotAllowed", "method not allowed")

    @staticmethod
    def _forbidden(verb: str, namespace: str) -> tuple[int, Any]:
        return kube_status(
            403,
            "Forbidden",
            f'secrets is forbidden: User "system:serviceaccount:attic:ops" cannot {verb} '
            f'resource "secrets" in API group "" in the namespace "{namespace}"',
        )

    def _get(self, namespace: str, name: str, _body: Any) -> tuple[int, Any]:
        if (namespace, name) not in self.secrets:
            return kube_status(404, "NotFound", f'secrets "{name}" not found')
        return 200, self.secrets[(namespace, name)]

    def _post(self, namespace: str, body: Any) -> tuple[int, Any]:
        if namespace not in self.namespaces:
            return kube_status(404, "NotFound", f'namespaces "{namespace}" not found')
        name = body["metadata"]["name"]
        if (namespace, name) in self.secrets:
            return kube_status(409, "AlreadyExists", f'secrets "{name}" already exists')
        self.put_secret(namespace, name, body)
        return 201, self.secrets[(namespace, name)]

    def _put(self, namespace: str, name: str, body: Any) -> tuple[int, Any]:
        key = (namespace, name)
        if key not in self.secrets:
            return kube_status(404, "NotFound", f'secrets "{name}" not found')
        if key in self.concurrent_writes:
            self.concurrent_writes.discard(key)
            self.put_secret(namespace, name, self.secrets[key])
        if (
            body["metadata"].get("resourceVersion")
            != self.secrets[key]["metadata"]["resourceVersion"]
        ):
            return kube_status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on secrets "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        self.put_secret(namespace, name, body)
        return 200, self.secrets[key]
