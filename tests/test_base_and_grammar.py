"""The base route, the API version header, and the name/tag/digest grammar on every route."""

import pytest

from helpers import assert_error, sha256

DIGEST = sha256(b"x")


def test_base_answers_empty_json_object(client):
    response = client.get("/v2/")
    assert response.status_code == 200
    assert response.json == {}
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_base_without_trailing_slash_also_answers(client):
    response = client.get("/v2")
    assert response.status_code == 200
    assert response.json == {}


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v2/"),
        ("GET", "/v2/nope/tags/list"),
        ("GET", "/v2/x/manifests/latest"),
        ("POST", "/v2/x/blobs/uploads/"),
        ("GET", "/nowhere"),
        ("PUT", "/v2/"),
    ],
)
def test_every_response_carries_the_api_version(client, method, path):
    response = client.open(path, method=method)
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_unknown_endpoint_is_a_json_404(client):
    assert_error(client.get("/nowhere"), 404, "UNSUPPORTED")
    assert_error(client.get("/v2/x/unknown-thing"), 404, "UNSUPPORTED")


def test_wrong_method_is_405_unsupported_with_allow(client):
    response = client.post("/v2/x/manifests/latest")
    assert_error(response, 405, "UNSUPPORTED")
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "PUT", "DELETE"}
    assert_error(client.put("/v2/"), 405, "UNSUPPORTED")


VALID_NAMES = ["a", "library/alpine", "a/b/c", "a.b", "a_b", "a__b", "a-b", "a---b", "0/1", "x" * 255]
INVALID_NAMES = ["Upper", "a//b", "..", "a/..", "-a", "a-", "a_", "a___b", "a.-b", "_a", "a/", "é", "x" * 256]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_names_reach_the_handler(client, name):
    # An unknown but well-formed repository: the route's own "unknown" answer.
    assert_error(client.get(f"/v2/{name}/tags/list"), 404, "NAME_UNKNOWN")


@pytest.mark.parametrize("name", INVALID_NAMES)
@pytest.mark.parametrize(
    "method, suffix",
    [
        ("GET", "/tags/list"),
        ("GET", "/manifests/latest"),
        ("PUT", "/manifests/latest"),
        ("HEAD", f"/blobs/{DIGEST}"),
        ("GET", f"/blobs/{DIGEST}"),
        ("POST", "/blobs/uploads/"),
        ("PATCH", "/blobs/uploads/some-id"),
        ("GET", f"/referrers/{DIGEST}"),
    ],
)
def test_invalid_names_are_name_invalid_on_every_route(client, name, method, suffix):
    response = client.open(f"/v2/{name}{suffix}", method=method)
    assert response.status_code == 400
    if method != "HEAD":
        assert_error(response, 400, "NAME_INVALID")


def test_percent_encoded_dot_dot_is_name_invalid(client):
    assert_error(client.get("/v2/%2e%2e/tags/list"), 400, "NAME_INVALID")


@pytest.mark.parametrize("tag", ["-x", ".x", "x" * 129, "a+b", "tag~1"])
def test_invalid_tags_are_tag_invalid(client, tag):
    assert_error(client.get(f"/v2/x/manifests/{tag}"), 400, "TAG_INVALID")
    assert_error(client.put(f"/v2/x/manifests/{tag}", data=b"{}"), 400, "TAG_INVALID")


@pytest.mark.parametrize("tag", ["latest", "v1.0.0", "_x", "X" * 128, "1.2-rc_3"])
def test_valid_tags_reach_the_store(client, tag):
    assert_error(client.get(f"/v2/x/manifests/{tag}"), 404, "NAME_UNKNOWN")


BAD_DIGESTS = [
    "sha256:abc",
    "sha256:" + "A" * 64,
    "sha256:" + "g" * 64,
    "sha512:" + "a" * 64,
    "md5:" + "a" * 32,
    "sha256:",
    ":" + "a" * 64,
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_invalid_digests_are_digest_invalid(client, digest):
    assert_error(client.get(f"/v2/x/blobs/{digest}"), 400, "DIGEST_INVALID")
    assert_error(client.delete(f"/v2/x/blobs/{digest}"), 400, "DIGEST_INVALID")
    assert_error(client.get(f"/v2/x/manifests/{digest}"), 400, "DIGEST_INVALID")
    assert_error(client.get(f"/v2/x/referrers/{digest}"), 400, "DIGEST_INVALID")


def test_sha512_digests_are_accepted(client):
    assert_error(client.get("/v2/x/blobs/sha512:" + "a" * 128), 404, "BLOB_UNKNOWN")
