"""Blob uploads: start, chunks, status, completion, cancel, mount, single-request upload."""

import hashlib
import io
from urllib.parse import urljoin, urlsplit

import pytest
from werkzeug.test import Client

from helpers import assert_error, sha256

BLOB = b"0123456789" * 100


def start(client, name="team/app"):
    response = client.post(f"/v2/{name}/blobs/uploads/")
    assert response.status_code == 202, response.data
    return response


def path_of(location):
    # Location is absolute; werkzeug's client takes the path (and query) part.
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_post_starts_a_session(client):
    response = start(client)
    location = response.headers["Location"]
    upload_id = response.headers["Docker-Upload-UUID"]
    assert location == f"http://localhost/v2/team/app/blobs/uploads/{upload_id}"
    assert response.headers["Range"] == "0-0"
    assert response.headers["Content-Length"] == "0"


def test_location_follows_the_request_host(client):
    response = client.post("/v2/team/app/blobs/uploads/", headers={"Host": "registry.example:5000"})
    assert response.headers["Location"].startswith("http://registry.example:5000/v2/team/app/blobs/uploads/")
    https = client.post("/v2/team/app/blobs/uploads/", base_url="https://registry.test")
    assert https.headers["Location"].startswith("https://registry.test/v2/")


def test_post_without_trailing_slash_also_starts(client):
    assert client.post("/v2/team/app/blobs/uploads").status_code == 202


def test_monolithic_put(registry, client):
    location = path_of(start(client).headers["Location"])
    response = client.put(f"{location}?digest={sha256(BLOB)}", data=BLOB)
    assert response.status_code == 201
    assert response.headers["Docker-Content-Digest"] == sha256(BLOB)
    assert response.headers["Location"] == f"http://localhost/v2/team/app/blobs/{sha256(BLOB)}"
    assert registry.get_blob("team/app", sha256(BLOB)) == BLOB


def test_chunked_upload_with_content_range(registry, client):
    location = path_of(start(client).headers["Location"])
    for offset in range(0, len(BLOB), 300):
        chunk = BLOB[offset : offset + 300]
        response = client.patch(
            location,
            data=chunk,
            headers={
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                "Content-Type": "application/octet-stream",
            },
        )
        assert response.status_code == 202, response.data
        assert response.headers["Range"] == f"0-{offset + len(chunk) - 1}"
        assert response.headers["Location"].endswith(location)
        assert response.headers["Docker-Upload-UUID"]
    response = client.put(f"{location}?digest={sha256(BLOB)}")
    assert response.status_code == 201
    assert registry.get_blob("team/app", sha256(BLOB)) == BLOB


def test_patch_without_content_range_appends(registry, client):
    location = path_of(start(client).headers["Location"])
    assert client.patch(location, data=BLOB[:10]).headers["Range"] == "0-9"
    assert client.patch(location, data=BLOB[10:]).headers["Range"] == f"0-{len(BLOB) - 1}"
    assert client.put(f"{location}?digest={sha256(BLOB)}").status_code == 201


def test_patch_with_bytes_prefixed_content_range(client):
    location = path_of(start(client).headers["Location"])
    response = client.patch(location, data=b"abc", headers={"Content-Range": "bytes 0-2/3"})
    assert response.status_code == 202
    assert response.headers["Range"] == "0-2"


def test_patch_streamed_without_content_length(registry, client):
    # Transfer-Encoding: chunked bodies arrive de-chunked, without Content-Length.
    location = path_of(start(client).headers["Location"])
    response = client.patch(location, input_stream=io.BytesIO(BLOB), environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 202, response.data
    assert response.headers["Range"] == f"0-{len(BLOB) - 1}"


def test_out_of_order_chunk_is_416_with_the_current_range(client):
    location = path_of(start(client).headers["Location"])
    client.patch(location, data=b"abc", headers={"Content-Range": "0-2"})
    response = client.patch(location, data=b"xyz", headers={"Content-Range": "5-7"})
    assert_error(response, 416, "RANGE_INVALID")
    assert response.headers["Range"] == "0-2"
    assert response.headers["Location"].endswith(location)
    # The session is intact and resumes where it was.
    response = client.patch(location, data=b"def", headers={"Content-Range": "3-5"})
    assert response.headers["Range"] == "0-5"
    assert client.put(f"{location}?digest={sha256(b'abcdef')}").status_code == 201


@pytest.mark.parametrize("content_range", ["nonsense", "3-1", "-1-2", "0-"])
def test_malformed_content_range_is_416(client, content_range):
    location = path_of(start(client).headers["Location"])
    response = client.patch(location, data=b"abc", headers={"Content-Range": content_range})
    assert_error(response, 416, "RANGE_INVALID")
    assert response.headers["Range"] == "0-0"


def test_content_range_disagreeing_with_content_length_is_size_invalid(client):
    location = path_of(start(client).headers["Location"])
    response = client.patch(location, data=b"abc", headers={"Content-Range": "0-9"})
    assert_error(response, 400, "SIZE_INVALID")
    assert client.get(location).headers["Range"] == "0-0"  # nothing was applied


def test_status_get_answers_204_with_range(client):
    location = path_of(start(client).headers["Location"])
    client.patch(location, data=b"abcd")
    response = client.get(location)
    assert response.status_code == 204
    assert response.headers["Range"] == "0-3"
    assert response.headers["Location"].endswith(location)


def test_wrong_digest_is_digest_invalid_and_drops_only_the_last_chunk(registry, client):
    location = path_of(start(client).headers["Location"])
    client.patch(location, data=BLOB[:100])
    response = client.put(f"{location}?digest={sha256(b'something else')}", data=BLOB[100:])
    error = assert_error(response, 400, "DIGEST_INVALID")
    assert error["detail"]["actual"] == sha256(BLOB)
    assert client.head(f"/v2/team/app/blobs/{sha256(b'something else')}").status_code == 404
    # As in the reference, the session survives, without the rejected chunk: the client can retry.
    assert client.get(location).headers["Range"] == "0-99"
    assert client.put(f"{location}?digest={sha256(BLOB)}", data=BLOB[100:]).status_code == 201


def test_all_digests_given_must_match(registry, client):
    sha512 = "sha512:" + hashlib.sha512(BLOB).hexdigest()
    location = path_of(start(client).headers["Location"])
    client.patch(location, data=BLOB)
    assert_error(client.put(f"{location}?digest={sha256(BLOB)}&digest=sha512:{'0' * 128}"), 400, "DIGEST_INVALID")
    assert client.put(f"{location}?digest={sha256(BLOB)}&digest={sha512}").status_code == 201
    assert client.get(f"/v2/team/app/blobs/{sha512}").data == BLOB


def test_put_without_digest_is_digest_invalid_and_keeps_the_session(client):
    location = path_of(start(client).headers["Location"])
    assert_error(client.put(location, data=b"abc"), 400, "DIGEST_INVALID")
    assert client.get(location).status_code == 204


def test_put_with_malformed_digest_is_digest_invalid(client):
    location = path_of(start(client).headers["Location"])
    assert_error(client.put(f"{location}?digest=sha256:nope"), 400, "DIGEST_INVALID")


def test_put_with_final_chunk_and_content_range(registry, client):
    location = path_of(start(client).headers["Location"])
    client.patch(location, data=BLOB[:500], headers={"Content-Range": "0-499"})
    response = client.put(
        f"{location}?digest={sha256(BLOB)}",
        data=BLOB[500:],
        headers={"Content-Range": f"500-{len(BLOB) - 1}"},
    )
    assert response.status_code == 201
    assert registry.get_blob("team/app", sha256(BLOB)) == BLOB


def test_digest_may_arrive_url_encoded_after_an_existing_query(registry, client):
    location = path_of(start(client).headers["Location"])
    response = client.put(f"{location}?foo=bar&digest={sha256(BLOB).replace(':', '%3A')}", data=BLOB)
    assert response.status_code == 201


def test_sha512_upload(registry, client):
    digest = "sha512:" + hashlib.sha512(BLOB).hexdigest()
    location = path_of(start(client).headers["Location"])
    assert client.put(f"{location}?digest={digest}", data=BLOB).status_code == 201
    assert client.get(f"/v2/team/app/blobs/{digest}").data == BLOB


def test_cancel_answers_204_and_forgets_the_session(client):
    response = start(client)
    location = path_of(response.headers["Location"])
    cancelled = client.delete(location)
    assert cancelled.status_code == 204
    assert cancelled.headers["Docker-Upload-UUID"] == response.headers["Docker-Upload-UUID"]
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.patch(location, data=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_unknown_upload_id_is_404(client):
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = client.open("/v2/team/app/blobs/uploads/no-such-id", method=method)
        assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


def test_upload_id_of_another_repository_is_unknown(client):
    upload_id = start(client, "team/app").headers["Docker-Upload-UUID"]
    assert_error(client.get(f"/v2/other/repo/blobs/uploads/{upload_id}"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.patch(f"/v2/other/repo/blobs/uploads/{upload_id}", data=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")


def test_single_request_upload(registry, client):
    response = client.post(f"/v2/team/app/blobs/uploads/?digest={sha256(BLOB)}", data=BLOB)
    assert response.status_code == 201
    assert response.headers["Docker-Content-Digest"] == sha256(BLOB)
    assert response.headers["Location"].endswith(f"/v2/team/app/blobs/{sha256(BLOB)}")
    assert registry.get_blob("team/app", sha256(BLOB)) == BLOB
    assert registry.store.uploads == {}


def test_single_request_upload_with_wrong_digest(registry, client):
    response = client.post(f"/v2/team/app/blobs/uploads/?digest={sha256(b'no')}", data=BLOB)
    assert_error(response, 400, "DIGEST_INVALID")
    assert registry.store.uploads == {}


def test_mount_from_a_repository_that_has_the_blob(registry, client):
    digest = registry.put_blob("source/repo", BLOB)
    response = client.post(f"/v2/team/app/blobs/uploads/?mount={digest}&from=source%2Frepo")
    assert response.status_code == 201
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Location"].endswith(f"/v2/team/app/blobs/{digest}")
    assert client.get(f"/v2/team/app/blobs/{digest}").data == BLOB


def test_mount_falls_back_to_an_upload_when_the_source_lacks_the_blob(registry, client):
    digest = registry.put_blob("elsewhere", BLOB)
    for query in (
        f"mount={digest}&from=source/repo",
        f"mount={digest}&from=Bad..Name",
        "mount=sha256:bad&from=elsewhere",
    ):
        response = client.post(f"/v2/team/app/blobs/uploads/?{query}")
        assert response.status_code == 202, query
        assert response.headers["Range"] == "0-0"
        assert response.headers["Docker-Upload-UUID"]
    assert_error(client.get(f"/v2/team/app/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_mount_without_from_finds_the_blob_anywhere(registry, client):
    digest = registry.put_blob("somewhere/else", BLOB)
    assert client.post(f"/v2/team/app/blobs/uploads/?mount={digest}").status_code == 201
    assert client.post(f"/v2/team/app/blobs/uploads/?mount={sha256(b'absent')}").status_code == 202


def test_a_client_that_keeps_the_first_location_still_works(registry, client):
    location = path_of(start(client).headers["Location"])
    client.patch(location, data=BLOB[:100])
    client.patch(location, data=BLOB[100:])
    assert client.put(f"{location}?digest={sha256(BLOB)}").status_code == 201


def test_a_client_that_resolves_location_relative_to_v2_works(registry):
    # Some clients resolve Location against "<host>/v2" (no slash); an absolute URL survives that.
    client = Client(registry)
    location = start(client).headers["Location"]
    assert urljoin("http://localhost/v2", location) == location


def test_body_that_breaks_off_leaves_the_session_as_it_was(registry, client):
    location = path_of(start(client).headers["Location"])
    client.patch(location, data=b"abc")
    # Content-Length promises 100 bytes; the connection ends after 7.
    response = client.patch(location, input_stream=io.BytesIO(b"partial"), environ_overrides={"CONTENT_LENGTH": "100"})
    assert_error(response, 400, "BLOB_UPLOAD_INVALID")
    assert client.get(location).headers["Range"] == "0-2"
    assert client.put(f"{location}?digest={sha256(b'abcdef')}", data=b"def").status_code == 201


def test_body_shorter_than_content_length_on_single_request_upload(registry, client):
    response = client.post(
        f"/v2/team/app/blobs/uploads/?digest={sha256(BLOB)}",
        input_stream=io.BytesIO(BLOB[:10]),
        environ_overrides={"CONTENT_LENGTH": str(len(BLOB))},
    )
    assert_error(response, 400, "BLOB_UPLOAD_INVALID")
    assert registry.store.uploads == {}
