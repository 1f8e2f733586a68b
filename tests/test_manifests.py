"""The manifest route: PUT validation, GET/HEAD by tag and digest, DELETE."""

import hashlib
import json

import pytest
from werkzeug.test import Client

from fakeregistry import FakeRegistry
from helpers import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    assert_error,
    descriptor,
    error_codes,
    manifest_for,
    sha256,
)

CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
LAYER = b"layer bytes"


@pytest.fixture
def blobs(registry):
    registry.put_blob("team/app", CONFIG)
    registry.put_blob("team/app", LAYER)


def put(client, reference, body, content_type=OCI_MANIFEST, name="team/app"):
    headers = {"Content-Type": content_type} if content_type else {}
    return client.put(f"/v2/{name}/manifests/{reference}", data=body, headers=headers)


def test_put_by_tag_answers_201_with_digest_and_location(client, blobs):
    body = manifest_for(CONFIG, LAYER)
    response = put(client, "v1", body)
    assert response.status_code == 201, response.data
    assert response.headers["Docker-Content-Digest"] == sha256(body)
    assert response.headers["Location"] == f"http://localhost/v2/team/app/manifests/{sha256(body)}"
    assert "OCI-Subject" not in response.headers


@pytest.mark.parametrize("reference", ["v1", "by-digest"])
def test_get_and_head_return_the_exact_bytes(client, blobs, reference):
    # Odd but valid formatting: the bytes, not a re-serialisation, come back.
    body = b'{\n   "schemaVersion" : 2,' + manifest_for(CONFIG, LAYER)[len(b'{"schemaVersion": 2,') :]
    assert json.loads(body)["schemaVersion"] == 2
    put(client, "v1", body)
    ref = "v1" if reference == "v1" else sha256(body)
    response = client.get(f"/v2/team/app/manifests/{ref}")
    assert response.status_code == 200
    assert response.data == body
    assert response.headers["Content-Type"] == OCI_MANIFEST
    assert response.headers["Docker-Content-Digest"] == sha256(body)
    assert response.headers["Content-Length"] == str(len(body))
    head = client.head(f"/v2/team/app/manifests/{ref}")
    assert head.status_code == 200
    assert head.data == b""
    assert head.headers["Content-Length"] == str(len(body))
    assert head.headers["Docker-Content-Digest"] == sha256(body)


def test_get_serves_the_stored_manifest_whatever_the_accept(client, blobs):
    body = manifest_for(CONFIG, LAYER)
    put(client, "v1", body)
    response = client.get(
        "/v2/team/app/manifests/v1",
        headers=[("Accept", DOCKER_MANIFEST), ("Accept", OCI_INDEX), ("Accept", "garbage;;")],
    )
    assert response.data == body


def test_put_by_digest_matching_the_body(client, blobs):
    body = manifest_for(CONFIG, LAYER)
    response = put(client, sha256(body), body)
    assert response.status_code == 201
    assert client.get("/v2/team/app/tags/list").json["tags"] == []


def test_put_by_sha512_digest(client, blobs):
    body = manifest_for(CONFIG, LAYER)
    digest = "sha512:" + hashlib.sha512(body).hexdigest()
    response = put(client, digest, body)
    assert response.status_code == 201
    assert response.headers["Docker-Content-Digest"] == digest
    assert client.get(f"/v2/team/app/manifests/{digest}").data == body


def test_put_by_digest_not_matching_the_body_is_digest_invalid(client, blobs):
    body = manifest_for(CONFIG, LAYER)
    assert_error(put(client, sha256(b"other"), body), 400, "DIGEST_INVALID")


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_image_manifest_types(client, blobs, media_type):
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": descriptor(OCI_CONFIG, CONFIG),
            "layers": [descriptor(OCI_LAYER, LAYER)],
        }
    ).encode()
    assert put(client, "v1", body, media_type).status_code == 201
    assert client.get("/v2/team/app/manifests/v1").headers["Content-Type"] == media_type


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_index_types_need_their_children(client, blobs, media_type):
    child = manifest_for(CONFIG, LAYER)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [descriptor(OCI_MANIFEST, child, platform={"architecture": "amd64", "os": "linux"})],
        }
    ).encode()
    error = assert_error(put(client, "multi", index, media_type), 400, "MANIFEST_BLOB_UNKNOWN")
    assert error["detail"] == {"digest": sha256(child)}
    assert put(client, sha256(child), child).status_code == 201  # children first, by digest
    assert put(client, "multi", index, media_type).status_code == 201
    assert client.get("/v2/team/app/manifests/multi").headers["Content-Type"] == media_type


def test_every_missing_blob_is_reported(client):
    body = manifest_for(CONFIG, LAYER, b"another layer")
    response = put(client, "v1", body)
    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"] * 3
    digests = [error["detail"]["digest"] for error in response.json["errors"]]
    assert digests == [sha256(CONFIG), sha256(LAYER), sha256(b"another layer")]


def test_blobs_must_be_in_this_repository(registry, client):
    registry.put_blob("other/repo", CONFIG)
    registry.put_blob("other/repo", LAYER)
    assert_error(put(client, "v1", manifest_for(CONFIG, LAYER)), 400, "MANIFEST_BLOB_UNKNOWN")


def test_foreign_layers_with_urls_need_not_be_pushed(client, blobs):
    foreign = descriptor("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", b"elsewhere")
    foreign["urls"] = ["https://example.invalid/layer"]
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor(OCI_CONFIG, CONFIG),
            "layers": [foreign, descriptor(OCI_LAYER, LAYER)],
        }
    ).encode()
    assert put(client, "v1", body, DOCKER_MANIFEST).status_code == 201


def test_artifact_manifest_with_unknown_fields_is_kept_as_is(client, blobs):
    body = manifest_for(
        CONFIG,
        LAYER,
        artifactType="application/vnd.example.sbom",
        subject=descriptor(OCI_MANIFEST, b"some subject"),
        annotations={"org.example": "yes"},
        futureField={"nested": [1, 2, 3]},
    )
    response = put(client, "sbom", body)
    assert response.status_code == 201
    assert response.headers["OCI-Subject"] == sha256(b"some subject")
    assert client.get("/v2/team/app/manifests/sbom").data == body


def test_oci_artifact_manifest_media_type(client, blobs):
    body = json.dumps(
        {
            "mediaType": "application/vnd.oci.artifact.manifest.v1+json",
            "artifactType": "application/vnd.example.signature",
            "blobs": [descriptor(OCI_LAYER, LAYER)],
        }
    ).encode()
    assert put(client, "sig", body, "application/vnd.oci.artifact.manifest.v1+json").status_code == 201


def test_media_type_from_the_body_when_content_type_is_missing(client, blobs):
    body = manifest_for(CONFIG, LAYER)
    assert put(client, "v1", body, content_type=None).status_code == 201
    assert client.get("/v2/team/app/manifests/v1").headers["Content-Type"] == OCI_MANIFEST


def test_content_type_parameters_are_ignored(client, blobs):
    assert put(client, "v1", manifest_for(CONFIG, LAYER), OCI_MANIFEST + "; charset=utf-8").status_code == 201


INVALID_BODIES = {
    "not json": b"this is not json",
    "invalid utf-8": b'{"schemaVersion": 2, "x": "\xff\xfe"}',
    "a list": b"[1, 2]",
    "deep nesting": b"[" * 100000 + b"]" * 100000,
    "huge number": b'{"schemaVersion": ' + b"9" * 5000 + b"}",
    "schemaVersion 1": json.dumps({"schemaVersion": 1, "config": {}, "layers": []}).encode(),
    "schemaVersion true": json.dumps({"schemaVersion": True, "mediaType": OCI_MANIFEST}).encode(),
    "no config": json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode(),
    "layers not a list": json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, CONFIG), "layers": {}}
    ).encode(),
    "bad layer digest": json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, CONFIG),
            "layers": [{"mediaType": OCI_LAYER, "digest": "sha256:nope", "size": 1}],
        }
    ).encode(),
    "negative size": json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(CONFIG), "size": -1},
            "layers": [],
        }
    ).encode(),
    "mediaType mismatch": json.dumps(
        {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": descriptor(OCI_CONFIG, CONFIG), "layers": []}
    ).encode(),
    "annotations not strings": manifest_for(CONFIG, annotations={"a": 1}),
    "index without manifests": json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX}).encode(),
}


@pytest.mark.parametrize("body", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_invalid_manifests_are_manifest_invalid(registry, client, blobs, body):
    assert_error(put(client, "v1", body), 400, "MANIFEST_INVALID")
    assert registry.tags("team/app") == []


def test_unknown_content_type_is_manifest_invalid(client, blobs):
    error = assert_error(
        put(client, "v1", manifest_for(CONFIG, LAYER), "application/x-whatever"), 400, "MANIFEST_INVALID"
    )
    assert "application/x-whatever" in error["message"]


def test_schema1_is_refused_with_a_clear_message(client):
    body = json.dumps({"schemaVersion": 1, "name": "team/app", "tag": "v1", "fsLayers": []}).encode()
    error = assert_error(
        put(client, "v1", body, "application/vnd.docker.distribution.manifest.v1+prettyjws"), 400, "MANIFEST_INVALID"
    )
    assert "unsupported manifest media type" in error["message"]


def test_manifest_of_4_mib_is_accepted_and_larger_is_refused(client, blobs):
    base = manifest_for(CONFIG, LAYER, annotations={"pad": ""})
    fits = base.replace(b'"pad": ""', b'"pad": "' + b"x" * (4 * 1024 * 1024 - len(base)) + b'"')
    assert len(fits) == 4 * 1024 * 1024
    assert put(client, "big", fits).status_code == 201
    too_big = fits.replace(b'"pad": "', b'"pad": "x')
    error = assert_error(put(client, "bigger", too_big), 413, "SIZE_INVALID")
    assert "limit" in error["message"]


def test_delete_by_digest_removes_the_manifest_and_its_tags(registry, client, blobs):
    body = manifest_for(CONFIG, LAYER)
    put(client, "v1", body)
    put(client, "v2", body)
    other = manifest_for(CONFIG)
    put(client, "keep", other)
    assert client.delete(f"/v2/team/app/manifests/{sha256(body)}").status_code == 202
    assert_error(client.get(f"/v2/team/app/manifests/{sha256(body)}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get("/v2/team/app/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    assert registry.tags("team/app") == ["keep"]


def test_delete_by_tag_removes_only_that_tag(registry, client, blobs):
    body = manifest_for(CONFIG, LAYER)
    put(client, "v1", body)
    put(client, "v2", body)
    assert client.delete("/v2/team/app/manifests/v1").status_code == 202
    assert registry.tags("team/app") == ["v2"]
    assert client.get(f"/v2/team/app/manifests/{sha256(body)}").status_code == 200


def test_delete_unknown(client, blobs):
    put(client, "v1", manifest_for(CONFIG, LAYER))
    assert_error(client.delete("/v2/team/app/manifests/nope"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.delete(f"/v2/team/app/manifests/{sha256(b'x')}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.delete("/v2/no/repo/manifests/v1"), 404, "NAME_UNKNOWN")


def test_delete_disabled_is_405_unsupported(blobs):
    registry = FakeRegistry(delete_enabled=False)
    image = registry.push_image("team/app", "v1", layers=[LAYER])
    client = Client(registry)
    assert_error(client.delete(f"/v2/team/app/manifests/{image.digest}"), 405, "UNSUPPORTED")
    assert_error(client.delete("/v2/team/app/manifests/v1"), 405, "UNSUPPORTED")
    assert registry.tags("team/app") == ["v1"]


def test_unknown_manifest_and_unknown_repository(client, blobs):
    put(client, "v1", manifest_for(CONFIG, LAYER))
    assert_error(client.get("/v2/team/app/manifests/v2"), 404, "MANIFEST_UNKNOWN")
    assert client.head("/v2/team/app/manifests/v2").status_code == 404
    assert_error(client.get("/v2/no/such/manifests/v1"), 404, "NAME_UNKNOWN")


def test_retagging_moves_the_tag(registry, client, blobs):
    first, second = manifest_for(CONFIG, LAYER), manifest_for(CONFIG)
    put(client, "latest", first)
    put(client, "latest", second)
    assert client.get("/v2/team/app/manifests/latest").data == second
    assert client.get(f"/v2/team/app/manifests/{sha256(first)}").data == first


def test_if_none_match_is_304(client, blobs):
    body = manifest_for(CONFIG, LAYER)
    put(client, "v1", body)
    response = client.get("/v2/team/app/manifests/v1", headers={"If-None-Match": f'"{sha256(body)}"'})
    assert response.status_code == 304
