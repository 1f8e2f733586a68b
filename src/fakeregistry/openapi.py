"""The OpenAPI 3 description of fakeregistry's HTTP API, shipped in the package.

``openapi.json`` describes every route of the registry API, the token
endpoint and the control API, with the statuses, headers and bodies
fakeregistry answers. The test suite runs schemathesis against the
in-process app with it, so the two cannot drift apart.

>>> document = openapi_document()
>>> document["openapi"]
'3.0.3'
>>> "/v2/{name}/manifests/{reference}" in document["paths"]
True
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Dict

OPENAPI_RESOURCE = "openapi.json"


def openapi_text() -> str:
    """The document as stored: JSON text."""
    return resources.files("fakeregistry").joinpath(OPENAPI_RESOURCE).read_text(encoding="utf-8")


def openapi_document() -> Dict[str, Any]:
    """The document as a dict: a fresh copy on each call, so callers may change it."""
    document: Dict[str, Any] = json.loads(openapi_text())
    return document
