"""Small helpers for fakeregistry's own HTTP tests."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List

from werkzeug.test import TestResponse

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
