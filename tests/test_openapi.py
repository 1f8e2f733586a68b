"""The OpenAPI description shipped in the package, against the code.

The document must list every route the code routes (derived from the routing
maps, so a new route cannot go undocumented) and be obeyed: schemathesis
generates requests for every operation from the document and sends each to a
fresh in-process registry holding a little content, checking that nothing
answers 5xx and that every status, content type, header and body is the one
the document describes.

schemathesis runs in a child pytest process. Its pytest plugin patches
Hypothesis for the whole process when it loads (a larger buffer, and a printer
that prints nothing, which blanks the falsifying examples of every other
Hypothesis test), so the main session runs with ``-p no:schemathesis`` and
only the child, started by ``test_the_app_conforms_to_the_document``, loads it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from werkzeug.datastructures import Headers
from werkzeug.routing import Map, Rule
from werkzeug.test import Client

from fakeregistry import FakeRegistry
from fakeregistry.control import CONTROL_MAP
from fakeregistry.errors import ERROR_CODES
from fakeregistry.faults import OPTION_NAMES, Fault
from fakeregistry.journal import RequestRecord
from fakeregistry.openapi import openapi_document, openapi_text
from fakeregistry.routing import ROUTE_NAMES, URL_MAP

ROOT = Path(__file__).resolve().parents[1]
IN_CHILD = os.environ.get("FAKEREGISTRY_SCHEMATHESIS_CHILD") == "1"

DOCUMENT = openapi_document()
METHODS = ("get", "head", "post", "put", "patch", "delete")

# What every case's registry holds. The document's examples name these, so the
# examples phase (and the generated cases that borrow examples) reach 200s and 201s.
NAME = "team/app"
TAG = "v1"
LAYER = b"hello from fakeregistry\n"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SBOM_TYPE = "application/vnd.example.sbom.v1+json"
EMPTY_CONFIG = b"{}"


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


IMAGE_CONFIG = json.dumps(
    {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha256(LAYER)]}},
    sort_keys=True,
).encode()
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(IMAGE_CONFIG),
            "size": len(IMAGE_CONFIG),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(LAYER), "size": len(LAYER)}
        ],
    },
    indent=2,
).encode()
SBOM = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SBOM_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(EMPTY_CONFIG), "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": sha256(MANIFEST), "size": len(MANIFEST)},
        "annotations": {"org.example.kind": "sbom"},
    }
).encode()

# Placeholders in the document's examples for things that only exist once a registry does.
EXAMPLE_UPLOAD_ID = "3f5e0b5e-8a2b-4c8e-9a59-2b1d6b0b8f10"
EXAMPLE_FAULT_ID = "1"


def seeded_registry() -> Tuple[FakeRegistry, Dict[str, str]]:
    """A registry with an image tagged v1 and an SBOM referring to it; and the ids of live things in it."""
    registry = FakeRegistry()
    for blob in (LAYER, IMAGE_CONFIG, EMPTY_CONFIG):
        registry.put_blob(NAME, blob)
    registry.put_manifest(NAME, TAG, MANIFEST)
    registry.put_manifest(NAME, sha256(SBOM), SBOM)
    # A fault that never fires (no PUT reaches the token endpoint), for the control API to list and remove.
    fault = registry.inject("token", method="PUT", times=None)
    # An upload session, started over HTTP so the journal has a record to show.
    started = Client(registry).post(f"/v2/{NAME}/blobs/uploads/")
    assert started.status_code == 202, started.get_data()
    return registry, {"upload_id": started.headers["Docker-Upload-UUID"], "fault_id": fault.id}


# -- the document


def test_the_loader_reads_the_packaged_file() -> None:
    assert json.loads(openapi_text()) == DOCUMENT
    assert openapi_document() is not openapi_document()  # a fresh copy each time


def test_the_document_has_the_package_version() -> None:
    assert DOCUMENT["info"]["version"] == version("fakeregistry")


def test_the_package_data_ships_the_document() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    package_data = re.search(r"^\[tool\.setuptools\.package-data\]\nfakeregistry = (\[.*\])$", pyproject, re.M)
    assert package_data is not None and '"openapi.json"' in package_data[1]


def test_every_reference_resolves() -> None:
    def references(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from references(value)
        elif isinstance(node, list):
            for value in node:
                yield from references(value)

    for reference in set(references(DOCUMENT)):
        assert reference.startswith("#/components/"), reference
        _, _, kind, name = reference.split("/")
        assert name in DOCUMENT["components"][kind], reference


def operations() -> Iterator[Tuple[str, str, Dict[str, Any]]]:
    for path, item in DOCUMENT["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def openapi_path(rule: Rule) -> str:
    """``/v2/<repo:name>/blobs/<digest>`` as ``/v2/{name}/blobs/{digest}``."""
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)


def documented_path(rule: Rule) -> str:
    """The documented path for a rule: ``/v2`` and ``.../blobs/uploads`` are the slashed paths' aliases."""
    path = openapi_path(rule)
    return path if path in DOCUMENT["paths"] else path + "/"


def parameter_examples(path: str, method: str, location: str) -> Dict[str, Any]:
    """The documented ``example`` of each parameter of an operation in ``location`` (path, query, header)."""
    item = DOCUMENT["paths"][path]
    examples = {}
    for parameter in [*item.get("parameters", []), *item[method].get("parameters", [])]:
        if "$ref" in parameter:
            parameter = DOCUMENT["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        if parameter["in"] == location and "example" in parameter:
            examples[parameter["name"]] = parameter["example"]
    return examples


def example_path(path: str, method: str) -> str:
    examples = parameter_examples(path, method, "path")
    return re.sub(r"{([^}]+)}", lambda match: str(examples[match[1]]), path)


def test_every_route_and_method_the_code_routes_is_documented() -> None:
    missing = []
    for rule in [*URL_MAP.iter_rules(), *CONTROL_MAP.iter_rules()]:
        item = DOCUMENT["paths"].get(documented_path(rule), {})
        methods = set(rule.methods or ()) - {"HEAD"}  # werkzeug answers HEAD wherever GET is routed
        if rule.endpoint in ("manifest", "blob", "storage"):
            methods.add("HEAD")  # the spec's HEAD requests
        missing += [f"{method} {rule.rule}" for method in sorted(methods) if method.lower() not in item]
    assert not missing, f"routed but not in openapi.json: {missing}"


def test_every_documented_operation_is_routed_to_its_route() -> None:
    for path, method, operation in operations():
        url_map: Map = CONTROL_MAP if "x-fakeregistry-route" not in operation else URL_MAP
        endpoint, _ = url_map.bind("registry.test").match(example_path(path, method), method=method.upper())
        if url_map is URL_MAP:
            assert endpoint == operation["x-fakeregistry-route"], (method, path)
    documented_routes = {operation.get("x-fakeregistry-route") for _, _, operation in operations()} - {None}
    assert documented_routes == set(ROUTE_NAMES)


def test_the_schemas_list_what_the_code_uses() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    assert schemas["ErrorCode"]["enum"] == list(ERROR_CODES)
    assert set(schemas["FaultOptions"]["properties"]) == set(OPTION_NAMES)
    fault = Fault("blob", method=["GET", "HEAD"], status=503, retry_after=1, every=2).as_json()
    assert set(schemas["Fault"]["required"]) <= set(fault) <= set(schemas["Fault"]["properties"])
    record = RequestRecord("GET", "/v2/", "", "base", None, None, None, Headers()).as_json()
    assert set(record) == set(schemas["RequestRecord"]["properties"]) == set(schemas["RequestRecord"]["required"])


def test_the_examples_name_the_seeded_content() -> None:
    parameters = DOCUMENT["components"]["parameters"]
    assert parameters["name"]["example"] == NAME
    assert parameters["reference"]["example"] == TAG
    assert parameters["blobDigest"]["example"] == sha256(LAYER)
    assert parameters["subjectDigest"]["example"] == sha256(MANIFEST)
    assert parameters["uploadId"]["example"] == EXAMPLE_UPLOAD_ID
    assert parameter_examples("/_fakeregistry/faults/{fault_id}", "delete", "path") == {"fault_id": EXAMPLE_FAULT_ID}
    registry, _ = seeded_registry()
    assert registry.get_manifest(NAME, TAG) == MANIFEST
    assert registry.get_manifest(NAME, sha256(SBOM)) == SBOM


# -- bugs schemathesis found, pinned

MISTYPED_FAULTS = [{"method": 5}, {"method": [5]}, {"after": None}, {"repository": 5}, {"corrupt": {}}]


@pytest.mark.parametrize("options", MISTYPED_FAULTS, ids=json.dumps)
def test_a_mistyped_fault_is_refused_and_the_registry_keeps_answering(options: Dict[str, Any]) -> None:
    registry, _ = seeded_registry()
    client = Client(registry)
    assert client.post("/_fakeregistry/faults", json=options).status_code == 400
    assert client.get(f"/v2/{NAME}/tags/list").status_code == 200


def test_the_control_api_names_the_allowed_methods_on_a_405() -> None:
    response = Client(FakeRegistry()).put("/_fakeregistry/reset")
    assert response.status_code == 405
    assert response.headers.get("Allow") == "POST"


# -- schemathesis, in a child process


@pytest.mark.skipif(IN_CHILD, reason="the child loads schemathesis on purpose")
def test_the_main_session_does_not_load_schemathesis() -> None:
    # Its plugin patches Hypothesis process-wide (see above): pyproject.toml's addopts carry -p no:schemathesis.
    assert "schemathesis" not in sys.modules


@pytest.mark.skipif(IN_CHILD, reason="this is the child")
@pytest.mark.skipif(sys.version_info < (3, 11), reason="schemathesis needs Python 3.11 or later")
def test_the_app_conforms_to_the_document() -> None:
    command = [sys.executable, "-m", "pytest", __file__, "-p", "schemathesis", "-k", "schemathesis"]
    command += ["-p", "no:cacheprovider", "-q", "--no-header", "-rfE"]
    env = {**os.environ, "FAKEREGISTRY_SCHEMATHESIS_CHILD": "1"}
    child = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, f"schemathesis found problems:\n{child.stdout[-20000:]}\n{child.stderr[-5000:]}"


if IN_CHILD:
    import hypothesis
    import schemathesis
    from hypothesis import strategies as st
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        allow_header_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
        unsupported_method,
    )

    def test_schemathesis_validates_the_document() -> None:
        schemathesis.openapi.from_dict(openapi_document()).validate()  # raises on a document that breaks OpenAPI 3.0

    SCHEMATHESIS_CONFIG = schemathesis.Config.from_dict(
        {
            "generation": {"deterministic": True},  # the same cases on every run
            "operations": [
                # Without this, the coverage phase sends about 900 malformed manifests (five media types, nested
                # descriptors): too slow for the suite. Fuzzing still sends malformed ones.
                {"include-operation-id": "putManifest", "phases": {"coverage": {"generation": {"mode": "positive"}}}}
            ],
        }
    )
    SCHEMA = schemathesis.openapi.from_dict(openapi_document(), config=SCHEMATHESIS_CONFIG)
    CHECKS = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        unsupported_method,  # a method a path does not take: 405 with Allow
        allow_header_conformance,
    ]

    def with_examples(context: schemathesis.HookContext, values: Dict[str, Any], location: str) -> Any:
        """Each generated value, or the documented example in its place, so generated cases reach seeded content too."""
        if not values or context.operation is None:
            return st.just(values)
        examples = parameter_examples(context.operation.path, context.operation.method.lower(), location)
        return st.fixed_dictionaries(
            {
                name: st.sampled_from([value, examples[name]]) if name in examples else st.just(value)
                for name, value in values.items()
            }
        )

    @SCHEMA.hook
    def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: Dict[str, Any]) -> Any:
        return with_examples(context, path_parameters, "path")

    @SCHEMA.hook
    def flatmap_query(context: schemathesis.HookContext, query: Dict[str, Any]) -> Any:
        return with_examples(context, query, "query")

    @SCHEMA.hook
    def flatmap_headers(context: schemathesis.HookContext, headers: Dict[str, Any]) -> Any:
        return with_examples(context, headers, "header")

    def checks_for(case: schemathesis.Case) -> List[Any]:
        return list(CHECKS)

    @SCHEMA.parametrize()
    @hypothesis.settings(max_examples=10, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
    def test_schemathesis_generated_requests_get_documented_answers(case: schemathesis.Case) -> None:
        registry, live = seeded_registry()
        for key, placeholder in (("upload_id", EXAMPLE_UPLOAD_ID), ("fault_id", EXAMPLE_FAULT_ID)):
            if (case.path_parameters or {}).get(key) == placeholder:
                case.path_parameters[key] = live[key]
        response = case.call(app=registry)
        case.validate_response(response, checks=checks_for(case), transport_kwargs={"app": registry})
        registry.check_internal_errors()

    # -- answers the generated cases cannot reach: auth, injected faults, redirects, pages, limits

    @dataclass
    class Answer:
        status_code: int
        headers: Headers
        body: bytes

        def json(self) -> Any:
            return json.loads(self.body)

    def answer(registry: FakeRegistry, method: str, path: str, **parts: Any) -> Answer:
        """Send one request described by the document's operation, and check the answer conforms to it."""
        case = SCHEMA[path][method].Case(**parts)
        response = case.call(app=registry)
        # Conformance only: the 503s here are injected on purpose.
        checks = [check for check in CHECKS if check is not not_a_server_error]
        case.validate_response(response, checks=checks, transport_kwargs={"app": registry})
        registry.check_internal_errors()
        headers = Headers([(name, value) for name, values in response.headers.items() for value in values])
        return Answer(response.status_code, headers, response.content)

    def basic(user: str, password: str) -> Dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    BLOB = "/v2/{name}/blobs/{digest}"
    MANIFEST_PATH = "/v2/{name}/manifests/{reference}"
    UPLOAD = "/v2/{name}/blobs/uploads/{upload_id}"
    AT_LAYER = {"name": NAME, "digest": sha256(LAYER)}

    def test_schemathesis_auth_answers_are_documented() -> None:
        registry = FakeRegistry(
            auth="token", users={"alice": "secret", "bob": "pw"}, access={"bob": {"other/*": ["pull"]}}
        )
        registry.put_blob(NAME, LAYER)
        challenge = answer(registry, "GET", "/v2/")
        assert challenge.status_code == 401 and challenge.headers["WWW-Authenticate"].startswith("Bearer ")
        scope = f"repository:{NAME}:pull"
        query = {"service": "registry.test", "scope": [scope], "offline_token": "true"}
        token = answer(registry, "GET", "/token", query=query, headers=basic("alice", "secret"))
        assert token.status_code == 200 and token.json()["scope"] == scope
        form = {"grant_type": "refresh_token", "refresh_token": token.json()["refresh_token"], "scope": scope}
        assert answer(registry, "POST", "/token", body=form).status_code == 200
        assert (
            answer(registry, "POST", "/token", body={"grant_type": "password", "username": "alice"}).status_code == 401
        )
        bearer = {"Authorization": f"Bearer {token.json()['token']}"}
        assert answer(registry, "GET", "/token", headers=bearer).status_code == 400
        assert answer(registry, "GET", BLOB, path_parameters=AT_LAYER, headers=bearer).status_code == 200
        assert answer(registry, "DELETE", BLOB, path_parameters=AT_LAYER, headers=bearer).status_code == 401

        registry = FakeRegistry(auth="basic", users={"bob": "pw"}, access={"bob": {"other/*": ["pull"]}})
        denied = answer(
            registry, "GET", "/v2/{name}/tags/list", path_parameters={"name": NAME}, headers=basic("bob", "pw")
        )
        assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "DENIED"

    def test_schemathesis_injected_answers_are_documented() -> None:
        registry, live = seeded_registry()
        registry.inject_throttling(retry_after=1)
        assert answer(registry, "GET", "/v2/_catalog").headers["Retry-After"] == "1"
        registry.inject_unavailable()
        assert answer(registry, "GET", "/v2/{name}/tags/list", path_parameters={"name": NAME}).status_code == 503
        registry.inject("referrers", status=404)
        path = "/v2/{name}/referrers/{digest}"
        assert (
            answer(registry, "GET", path, path_parameters={"name": NAME, "digest": sha256(MANIFEST)}).status_code == 404
        )
        registry.inject_chunk_range_error()
        at_upload = {"name": NAME, "upload_id": live["upload_id"]}
        assert answer(registry, "PATCH", UPLOAD, path_parameters=at_upload, body=b"more").headers["Range"] == "0-0"
        registry.inject("blob", redirect=True)
        redirect = answer(registry, "GET", BLOB, path_parameters=AT_LAYER)
        assert redirect.status_code == 307 and redirect.headers["Location"].endswith(f"/blobs/{sha256(LAYER)}")
        storage = "/_fakeregistry/storage/{name}/blobs/{digest}"
        assert answer(registry, "GET", storage, path_parameters=AT_LAYER).status_code == 200
        assert answer(registry, "GET", storage, path_parameters=AT_LAYER, headers=basic("a", "b")).status_code == 400

    def test_schemathesis_edge_answers_are_documented() -> None:
        registry, live = seeded_registry()
        registry.put_blob("team/other", LAYER)
        page = answer(registry, "GET", "/v2/_catalog", query={"n": 1})
        assert page.json() == {"repositories": [NAME]} and page.headers["Link"].endswith('rel="next"')
        at_upload = {"name": NAME, "upload_id": live["upload_id"]}
        resume = answer(
            registry, "PATCH", UPLOAD, path_parameters=at_upload, headers={"Content-Range": "5-9"}, body=b"x"
        )
        assert resume.status_code == 416 and resume.headers["Range"] == "0-0"
        unsatisfiable = answer(registry, "GET", BLOB, path_parameters=AT_LAYER, headers={"Range": "bytes=100-"})
        assert unsatisfiable.headers["Content-Range"] == f"bytes */{len(LAYER)}"
        at_sbom = {"name": NAME, "reference": "sbom"}
        sbom = answer(
            registry, "PUT", MANIFEST_PATH, path_parameters=at_sbom, body=json.loads(SBOM), media_type=OCI_MANIFEST
        )
        assert sbom.status_code == 201 and sbom.headers["OCI-Subject"] == sha256(MANIFEST)
        path, subject = "/v2/{name}/referrers/{digest}", {"name": NAME, "digest": sha256(MANIFEST)}
        filtered = answer(registry, "GET", path, path_parameters=subject, query={"artifactType": SBOM_TYPE})
        assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
        assert [entry["artifactType"] for entry in filtered.json()["manifests"]] == [SBOM_TYPE]
        huge = {**json.loads(MANIFEST), "annotations": {"padding": "x" * (4 * 1024 * 1024)}}
        at_tag = {"name": NAME, "reference": TAG}
        too_large = answer(registry, "PUT", MANIFEST_PATH, path_parameters=at_tag, body=huge, media_type=OCI_MANIFEST)
        assert too_large.status_code == 413
        assert answer(registry, "HEAD", MANIFEST_PATH, path_parameters=at_tag).headers["Docker-Content-Digest"]
        assert (
            answer(FakeRegistry(delete_enabled=False), "DELETE", MANIFEST_PATH, path_parameters=at_tag).status_code
            == 405
        )

    def test_schemathesis_limit_answers_are_documented() -> None:
        registry = FakeRegistry(max_blob_size=4, max_upload_sessions=1)
        started = answer(registry, "POST", "/v2/{name}/blobs/uploads/", path_parameters={"name": NAME})
        at_upload = {"name": NAME, "upload_id": started.headers["Docker-Upload-UUID"]}
        assert answer(registry, "PATCH", UPLOAD, path_parameters=at_upload, body=LAYER).status_code == 413
        query = {"digest": sha256(LAYER), "from": NAME}
        full = answer(registry, "POST", "/v2/{name}/blobs/uploads/", path_parameters={"name": NAME}, query=query)
        assert full.status_code == 429 and full.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        answer(registry, "DELETE", UPLOAD, path_parameters=at_upload)
        single = answer(
            registry, "POST", "/v2/{name}/blobs/uploads/", path_parameters={"name": NAME}, query=query, body=LAYER
        )
        assert single.status_code == 413
        fault = {"route": "blob", "message": "x" * 70_000}
        assert answer(registry, "POST", "/_fakeregistry/faults", body=fault).status_code == 413
