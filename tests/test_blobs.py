"""The blob route: GET, HEAD, ranges, conditional requests, DELETE."""

import pytest
from werkzeug.test import Client

from fakeregistry import FakeRegistry
from helpers import assert_error, sha256

DATA = bytes(range(256)) * 4  # 1024 bytes


@pytest.fixture
def digest(registry):
    return registry.put_blob("team/app", DATA)


def test_get_returns_the_bytes_and_headers(client, digest):
    response = client.get(f"/v2/team/app/blobs/{digest}")
    assert response.status_code == 200
    assert response.data == DATA
    assert response.headers["Content-Length"] == str(len(DATA))
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["ETag"] == f'"{digest}"'
    assert response.headers["Accept-Ranges"] == "bytes"


def test_head_has_the_headers_and_no_body(client, digest):
    response = client.head(f"/v2/team/app/blobs/{digest}")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Content-Length"] == str(len(DATA))
    assert response.headers["Docker-Content-Digest"] == digest


def test_get_ignores_odd_accept_headers(client, digest):
    response = client.get(f"/v2/team/app/blobs/{digest}", headers={"Accept": "*/*; q=garbage,,;"})
    assert response.status_code == 200
    assert response.data == DATA


@pytest.mark.parametrize(
    "range_header, start, end",
    [
        ("bytes=0-3", 0, 3),
        ("bytes=10-", 10, 1023),
        ("bytes=-5", 1019, 1023),
        ("bytes=1000-5000", 1000, 1023),  # an end past the blob is clamped
        ("bytes=1023-1023", 1023, 1023),
        ("bytes=-5000", 0, 1023),  # a suffix longer than the blob is all of it (RFC 9110)
    ],
)
def test_range_requests_answer_206(client, digest, range_header, start, end):
    response = client.get(f"/v2/team/app/blobs/{digest}", headers={"Range": range_header})
    assert response.status_code == 206
    assert response.data == DATA[start : end + 1]
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert response.headers["Content-Length"] == str(end - start + 1)


@pytest.mark.parametrize("range_header", ["items=0-1", "bytes=0-1,3-4"])
def test_ranges_that_may_be_ignored_serve_the_whole_blob(client, digest, range_header):
    response = client.get(f"/v2/team/app/blobs/{digest}", headers={"Range": range_header})
    assert response.status_code == 200
    assert response.data == DATA


@pytest.mark.parametrize("range_header", ["bytes=1024-", "bytes=2000-3000", "bytes=x-y", "bytes=3-1", "bytes=-0"])
def test_unsatisfiable_range_is_416_with_the_size(client, digest, range_header):
    response = client.get(f"/v2/team/app/blobs/{digest}", headers={"Range": range_header})
    assert_error(response, 416, "RANGE_INVALID")
    assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"


def test_if_none_match_with_the_etag_is_304(client, digest):
    response = client.get(f"/v2/team/app/blobs/{digest}", headers={"If-None-Match": f'"{digest}"'})
    assert response.status_code == 304
    assert response.data == b""


def test_empty_blob(registry, client):
    digest = registry.put_blob("team/app", b"")
    response = client.get(f"/v2/team/app/blobs/{digest}")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Content-Length"] == "0"


def test_unknown_blob_is_404_blob_unknown(client, digest):
    error = assert_error(client.get(f"/v2/team/app/blobs/{sha256(b'other')}"), 404, "BLOB_UNKNOWN")
    assert error["detail"] == {"digest": sha256(b"other")}
    assert client.head(f"/v2/team/app/blobs/{sha256(b'other')}").status_code == 404
    assert_error(client.get(f"/v2/nowhere/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_blob_is_visible_only_in_repositories_that_pushed_it(registry, client, digest):
    assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 200
    registry.put_blob("other/repo", b"something else")
    assert_error(client.get(f"/v2/other/repo/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_delete_answers_202_and_the_blob_is_gone(registry, client, digest):
    response = client.delete(f"/v2/team/app/blobs/{digest}")
    assert response.status_code == 202
    assert_error(client.get(f"/v2/team/app/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(client.delete(f"/v2/team/app/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_delete_in_one_repository_keeps_it_in_another(registry, client, digest):
    registry.put_blob("other/repo", DATA)
    assert client.delete(f"/v2/team/app/blobs/{digest}").status_code == 202
    assert client.get(f"/v2/other/repo/blobs/{digest}").data == DATA


def test_delete_disabled_is_405_unsupported():
    registry = FakeRegistry(delete_enabled=False)
    digest = registry.put_blob("team/app", DATA)

    client = Client(registry)
    assert_error(client.delete(f"/v2/team/app/blobs/{digest}"), 405, "UNSUPPORTED")
    assert client.get(f"/v2/team/app/blobs/{digest}").status_code == 200


def test_a_blob_pushed_to_many_repositories_is_held_once(registry):
    digests = {registry.put_blob(f"repo{i}", DATA) for i in range(5)}
    assert len(digests) == 1
    assert len(registry.store.blobs) == 1
