"""The request journal: reg.requests, its filters and assertions."""

import hashlib
import re

import pytest

from helpers import sha256


def test_every_request_is_recorded_with_route_and_answer(registry, client):
    image = registry.push_image("team/app", "v1", layers=[b"layer"])
    for path, headers in [
        ("/v2/", {}),
        ("/v2/team/app/manifests/v1", {}),
        (f"/v2/team/app/blobs/{image.layer_digests[0]}", {"Range": "bytes=0-1"}),
        ("/v2/nope/tags/list", {}),
        ("/elsewhere", {}),
    ]:
        client.get(path, headers=headers).close()  # the body is sent: the record is complete
    records = registry.requests
    assert [(r.method, r.route, r.status, r.error) for r in records] == [
        ("GET", "base", 200, None),
        ("GET", "manifest", 200, None),
        ("GET", "blob", 206, None),
        ("GET", "tags", 404, "NAME_UNKNOWN"),
        ("GET", None, 404, "UNSUPPORTED"),
    ]
    manifest = records[1]
    assert (manifest.repository, manifest.reference, manifest.path) == ("team/app", "v1", "/v2/team/app/manifests/v1")
    assert manifest.bytes_sent == len(image.manifest)
    assert manifest.duration is not None and manifest.duration >= 0
    assert records[2].reference == image.layer_digests[0]
    assert records[2].headers["range"] == "bytes=0-1"  # request headers, case-insensitive
    assert records[2].bytes_sent == 2


def test_bytes_received_and_upload_ids(registry, client):
    location = client.post("/v2/team/app/blobs/uploads/").headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    client.patch(f"/v2/team/app/blobs/uploads/{upload_id}", data=b"x" * 1000)
    client.put(f"/v2/team/app/blobs/uploads/{upload_id}?digest={sha256(b'x' * 1000)}")
    post, patch, put = registry.requests
    assert post.route == "blob-upload" and post.upload_id is None
    assert (patch.route, patch.upload_id, patch.bytes_received) == ("blob-upload-chunk", upload_id, 1000)
    assert put.args["digest"] == sha256(b"x" * 1000)
    assert put.status == 201


def test_filter(registry, client):
    registry.push_image("team/app", "v1")
    client.get("/v2/team/app/manifests/v1")
    client.head("/v2/team/app/manifests/v1")
    client.get("/v2/other/manifests/v1")
    assert len(registry.requests.filter(route="manifest")) == 3
    assert len(registry.requests.filter(route="manifest", method="HEAD")) == 1
    assert len(registry.requests.filter(repository="team/app", status=200)) == 2
    assert registry.requests.filter(error="NAME_UNKNOWN")[0].repository == "other"


def test_assert_called_returns_the_matches(registry, client):
    registry.push_image("team/app", "v1")
    client.get("/v2/team/app/manifests/v1")
    (record,) = registry.requests.assert_called(route="manifest", method="GET", times=1)
    assert record.status == 200
    registry.requests.assert_called(route="manifest")
    registry.requests.assert_not_called(route="blob")


def test_assert_called_failure_lists_the_similar_requests(registry, client):
    registry.push_image("team/app", "v1")
    client.get("/v2/team/app/manifests/v1")
    client.put("/v2/team/app/manifests/v2", data=b"not json")
    client.get("/v2/")
    with pytest.raises(AssertionError) as raised:
        registry.requests.assert_called(route="manifest", method="PUT", status=201, times=1)
    message = str(raised.value)
    assert "expected 1 request matching route='manifest', method='PUT', status=201, saw 0" in message
    assert "PUT /v2/team/app/manifests/v2 [manifest] -> 400 MANIFEST_INVALID" in message
    assert "GET /v2/team/app/manifests/v1 [manifest] -> 200" in message
    assert "GET /v2/ [base]" not in message  # not similar


def test_assert_called_on_an_empty_journal(registry):
    with pytest.raises(AssertionError, match="no requests at all were made"):
        registry.requests.assert_called(route="blob")


def test_assert_not_called_failure(registry, client):
    client.get("/v2/")
    with pytest.raises(AssertionError, match=re.escape("expected 0 requests matching route='base', saw 1")):
        registry.requests.assert_not_called(route="base")


def test_unknown_criteria_are_an_error(registry):
    with pytest.raises(TypeError, match="unknown criteria"):
        registry.requests.assert_called(rout="blob")


def test_a_client_that_resumed_at_an_offset(registry, client):
    # The kind of question the journal answers: "did the client resume the upload at offset 3?"
    location = client.post("/v2/team/app/blobs/uploads/").headers["Location"].split("localhost")[1]
    client.patch(location, data=b"abc", headers={"Content-Range": "0-2"})
    client.patch(location, data=b"def", headers={"Content-Range": "0-2"})  # wrong: 416
    client.patch(location, data=b"def", headers={"Content-Range": "3-5"})
    client.put(f"{location}?digest=sha256:{hashlib.sha256(b'abcdef').hexdigest()}")
    patches = registry.requests.filter(route="blob-upload-chunk", method="PATCH")
    assert [(p.headers["Content-Range"], p.status) for p in patches] == [("0-2", 202), ("0-2", 416), ("3-5", 202)]


def test_reset_clears_the_journal(registry, client):
    client.get("/v2/")
    registry.reset()
    assert list(registry.requests) == []


def test_records_serialise_to_json(registry, client):
    import json

    client.get("/v2/", headers={"User-Agent": "test"})
    record = json.loads(json.dumps(registry.requests[0].as_json()))
    assert record["route"] == "base" and record["status"] == 200
    assert record["headers"]["User-Agent"] == "test"


def test_journal_limit_keeps_the_latest_records():
    from werkzeug.test import Client

    from fakeregistry import FakeRegistry

    registry = FakeRegistry(journal_limit=10)
    client = Client(registry)
    for number in range(25):
        client.get(f"/v2/repo{number}/tags/list")
    assert 10 <= len(registry.requests) <= 11
    assert registry.requests[-1].repository == "repo24"
    assert registry.requests[0].repository == f"repo{25 - len(registry.requests)}"
