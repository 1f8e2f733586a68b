"""Small helpers for fakeregistry's own HTTP tests."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List

from werkzeug.test import TestResponse
from werkzeug.wrappers import Request, Response

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def error_codes(response: TestResponse) -> List[str]:
    assert response.content_type == "application/json", response.content_type
    return [error["code"] for error in json.loads(response.data)["errors"]]


def assert_error(response: TestResponse, status: int, code: str) -> Dict[str, Any]:
    """The answer is ``status`` with ``code`` first in the spec's error envelope; return that error."""
    assert response.status_code == status, (response.status_code, response.data)
    errors = json.loads(response.data)["errors"]
    assert errors[0]["code"] == code, errors
    assert errors[0]["message"], errors
    return errors[0]


def descriptor(media_type: str, data: bytes, **extra: Any) -> Dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def manifest_for(config: bytes, *layers: bytes, **extra: Any) -> bytes:
    """An OCI image manifest over blobs the test pushed."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, layer) for layer in layers],
        **extra,
    }
    return json.dumps(document).encode()


@dataclass(frozen=True)
class Exchange:
    """One request the registry answered, as the HTTP API saw it."""

    method: str
    path: str
    args: Dict[str, str]
    headers: Dict[str, str]
    status: int


class ExchangeLog:
    """Records every exchange: wraps ``FakeRegistry.api``, the handler its WSGI entry point calls.

    Lets a test assert *how* a real client talked to the registry (a chunked
    PUT, a series of PATCHes...), not only that the bytes arrived.
    """

    def __init__(self, api: Callable[[Request], Response]) -> None:
        self.api = api
        self.exchanges: List[Exchange] = []

    def __call__(self, request: Request) -> Response:
        response = self.api(request)
        exchange = Exchange(
            request.method, request.path, dict(request.args), dict(request.headers), response.status_code
        )
        self.exchanges.append(exchange)
        return response

    def __getattr__(self, name: str) -> Any:  # delete_enabled and the like
        return getattr(self.api, name)

    def matching(self, method: str, path_part: str = "") -> List[Exchange]:
        return [e for e in self.exchanges if e.method == method and path_part in e.path]
