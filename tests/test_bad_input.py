"""A corpus of bad input: each gets the spec's 4xx (or a clean close), and the registry keeps serving.

Run in-process and over a real socket; after each case the registry still
answers, holds what it held, and reported no internal error.
"""

import http.client
import io
import json
import socket

import pytest
from werkzeug.test import Client

from fakeregistry import FakeRegistry, serve
from helpers import OCI_MANIFEST, sha256

DIGEST = sha256(b"x")
NESTED = b"[" * 50_000 + b"]" * 50_000

# (id, method, path, headers, body, expected status, expected error code or None)
CORPUS = [
    ("uppercase name", "GET", "/v2/Team/App/tags/list", {}, b"", 400, "NAME_INVALID"),
    ("dot-dot name", "GET", "/v2/a/%2e%2e/b/tags/list", {}, b"", 400, "NAME_INVALID"),
    ("overlong name", "GET", "/v2/" + "a" * 300 + "/tags/list", {}, b"", 400, "NAME_INVALID"),
    ("empty component", "GET", "/v2/a//b/manifests/v1", {}, b"", 400, "NAME_INVALID"),
    ("short digest", "GET", "/v2/a/blobs/sha256:abc", {}, b"", 400, "DIGEST_INVALID"),
    ("unknown algorithm", "GET", "/v2/a/blobs/md5:" + "0" * 32, {}, b"", 400, "DIGEST_INVALID"),
    ("uppercase digest", "GET", "/v2/a/blobs/sha256:" + "A" * 64, {}, b"", 400, "DIGEST_INVALID"),
    ("digest with a slash", "GET", "/v2/a/manifests/sha256:abc%2Fdef", {}, b"", 404, "UNSUPPORTED"),
    ("bad tag", "PUT", "/v2/a/manifests/-tag", {"Content-Type": OCI_MANIFEST}, b"{}", 400, "TAG_INVALID"),
    ("not JSON", "PUT", "/v2/a/manifests/v1", {"Content-Type": OCI_MANIFEST}, b"\x00\xff", 400, "MANIFEST_INVALID"),
    ("deep nesting", "PUT", "/v2/a/manifests/v1", {"Content-Type": OCI_MANIFEST}, NESTED, 400, "MANIFEST_INVALID"),
    (
        "huge number",
        "PUT",
        "/v2/a/manifests/v1",
        {"Content-Type": OCI_MANIFEST},
        b'{"schemaVersion": 1' + b"0" * 10_000 + b"}",
        400,
        "MANIFEST_INVALID",
    ),
    (
        "float schemaVersion",
        "PUT",
        "/v2/a/manifests/v1",
        {"Content-Type": OCI_MANIFEST},
        b'{"schemaVersion": 2.0, "config": {}, "layers": []}',
        400,
        "MANIFEST_INVALID",
    ),
    ("null body", "PUT", "/v2/a/manifests/v1", {"Content-Type": OCI_MANIFEST}, b"null", 400, "MANIFEST_INVALID"),
    ("empty body", "PUT", "/v2/a/manifests/v1", {"Content-Type": OCI_MANIFEST}, b"", 400, "MANIFEST_INVALID"),
    ("reversed range", "GET", "/v2/team/app/blobs/{blob}", {"Range": "bytes=5-1"}, b"", 416, "RANGE_INVALID"),
    ("range past the end", "GET", "/v2/team/app/blobs/{blob}", {"Range": "bytes=99999-"}, b"", 416, "RANGE_INVALID"),
    ("garbage range", "GET", "/v2/team/app/blobs/{blob}", {"Range": "bytes=\xff-"}, b"", 416, "RANGE_INVALID"),
    ("bad n", "GET", "/v2/_catalog?n=-5", {}, b"", 400, "PAGINATION_NUMBER_INVALID"),
    ("huge n", "GET", "/v2/_catalog?n=" + "9" * 40, {}, b"", 200, None),
    ("bad mount", "POST", "/v2/a/blobs/uploads/?mount=nonsense&from=..", {}, b"", 202, None),
    ("single POST wrong digest", "POST", f"/v2/a/blobs/uploads/?digest={DIGEST}", {}, b"y", 400, "DIGEST_INVALID"),
    ("single POST bad digest", "POST", "/v2/a/blobs/uploads/?digest=sha256:zz", {}, b"y", 400, "DIGEST_INVALID"),
    ("unknown upload", "PATCH", "/v2/a/blobs/uploads/nope", {}, b"y", 404, "BLOB_UPLOAD_UNKNOWN"),
    ("upload id traversal", "GET", "/v2/a/blobs/uploads/..%2F..%2Fetc", {}, b"", 404, None),
    ("wrong method", "PATCH", "/v2/a/manifests/v1", {}, b"", 405, "UNSUPPORTED"),
    ("not an endpoint", "GET", "/v2/a/b/c/d", {}, b"", 404, "UNSUPPORTED"),
    ("bad token post", "POST", "/token", {"Content-Type": "application/x-www-form-urlencoded"}, b"%%%", 400, None),
    ("bad bearer", "GET", "/v2/", {"Authorization": "Bearer \x00\x01"}, b"", 200, None),
    ("bad basic", "GET", "/v2/", {"Authorization": "Basic ###"}, b"", 200, None),
    ("garbage accept", "GET", "/v2/team/app/manifests/v1", {"Accept": ";;,,=;q=x"}, b"", 200, None),
    ("odd content type", "PATCH", "/v2/a/blobs/uploads/nope", {"Content-Type": "\x01/\x02"}, b"", 404, None),
    ("control not JSON", "POST", "/_fakeregistry/faults", {}, b"{nope", 400, "UNSUPPORTED"),
    ("control huge body", "POST", "/_fakeregistry/faults", {}, b" " * 100_000, 413, "SIZE_INVALID"),
]


@pytest.fixture
def seeded():
    registry = FakeRegistry()
    image = registry.push_image("team/app", "v1", layers=[b"0123456789"])
    return registry, image


def expand(path, image):
    return path.replace("{blob}", image.layer_digests[0])


def check_still_serving(registry, image, get):
    status, body = get(f"/v2/team/app/blobs/{image.layer_digests[0]}")
    assert (status, body) == (200, b"0123456789")
    registry.check_internal_errors()


@pytest.mark.parametrize("case", CORPUS, ids=[case[0] for case in CORPUS])
def test_in_process(seeded, case):
    registry, image = seeded
    _, method, path, headers, body, status, code = case
    client = Client(registry)
    response = client.open(expand(path, image), method=method, headers=headers, data=body)
    assert response.status_code == status, response.data[:300]
    if code is not None:
        assert json.loads(response.data)["errors"][0]["code"] == code

    def get(path):
        answer = client.get(path)
        return answer.status_code, answer.data

    check_still_serving(registry, image, get)


@pytest.fixture(scope="module")
def server():
    registry = FakeRegistry()
    with serve(registry) as running:
        yield running


def socket_get(server):
    def get(path):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            connection.request("GET", path)
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()

    return get


@pytest.mark.parametrize("case", CORPUS, ids=[case[0] for case in CORPUS])
def test_over_a_socket(server, case):
    registry = FakeRegistry()
    image = registry.push_image("team/app", "v1", layers=[b"0123456789"])
    server.app = registry
    _, method, path, headers, body, status, code = case
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest(method, expand(path, image), skip_accept_encoding=True)
        for key, value in headers.items():
            connection.putheader(key, value.encode("latin-1"))
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        answer = connection.getresponse()
        data = answer.read()
    finally:
        connection.close()
    assert answer.status == status, data[:300]
    if code is not None:
        assert json.loads(data)["errors"][0]["code"] == code
    check_still_serving(registry, image, socket_get(server))


# Limits: what keeps memory bounded, each configurable.


def test_a_declared_length_over_max_blob_size_is_refused_before_reading():
    registry = FakeRegistry(max_blob_size=1000)
    client = Client(registry)
    location = client.post("/v2/a/blobs/uploads/").headers["Location"].split("localhost")[1]
    never_read = io.BytesIO()  # the client promises 10^12 bytes; none are read
    response = client.patch(location, input_stream=never_read, environ_overrides={"CONTENT_LENGTH": str(10**12)})
    assert response.status_code == 413
    assert json.loads(response.data)["errors"][0]["code"] == "SIZE_INVALID"
    assert client.get(location).headers["Range"] == "0-0"


def test_a_streamed_body_over_max_blob_size_is_cut_off_and_rolled_back():
    registry = FakeRegistry(max_blob_size=3 * 1024 * 1024)
    client = Client(registry)
    location = client.post("/v2/a/blobs/uploads/").headers["Location"].split("localhost")[1]
    assert client.patch(location, data=b"x" * 1024).status_code == 202
    endless = io.BytesIO(b"y" * (8 * 1024 * 1024))
    response = client.patch(location, input_stream=endless, environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413
    assert endless.tell() < 8 * 1024 * 1024  # it stopped reading
    assert client.get(location).headers["Range"] == "0-1023"


def test_single_post_over_max_blob_size():
    registry = FakeRegistry(max_blob_size=10)
    response = Client(registry).post(f"/v2/a/blobs/uploads/?digest={sha256(b'x' * 11)}", data=b"x" * 11)
    assert response.status_code == 413
    assert registry.store.uploads == {}


def test_max_upload_sessions():
    registry = FakeRegistry(max_upload_sessions=3)
    client = Client(registry)
    locations = [client.post("/v2/a/blobs/uploads/").headers["Location"] for _ in range(3)]
    response = client.post("/v2/a/blobs/uploads/")
    assert response.status_code == 429
    assert json.loads(response.data)["errors"][0]["code"] == "TOOMANYREQUESTS"
    client.delete(locations[0].split("localhost")[1])
    assert client.post("/v2/a/blobs/uploads/").status_code == 202


def test_max_manifest_size_is_configurable():
    registry = FakeRegistry(max_manifest_size=100)
    response = Client(registry).put("/v2/a/manifests/v1", data=b"{" + b" " * 200 + b"}")
    assert response.status_code == 413


def test_limits_can_be_lifted():
    registry = FakeRegistry(max_blob_size=None, max_upload_sessions=None)
    client = Client(registry)
    assert client.post(f"/v2/a/blobs/uploads/?digest={sha256(b'x')}", data=b"x").status_code == 201


# Over the socket: what a broken client does to the connection.


def test_a_client_that_stops_mid_body_leaves_the_server_serving(server):
    registry = FakeRegistry()
    image = registry.push_image("team/app", "v1", layers=[b"0123456789"])
    server.app = registry
    location = socket_post(server, "/v2/a/blobs/uploads/")
    path = location.split(str(server.port), 1)[1]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(f"PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n".encode() + b"z" * 1000)
    check_still_serving(registry, image, socket_get(server))
    status, _ = socket_get(server)(path)
    assert status == 204  # the session is intact: the broken chunk was not applied
    assert registry.store.uploads[path.rsplit("/", 1)[1]].size == 0


def test_garbage_instead_of_http_leaves_the_server_serving(server):
    registry = FakeRegistry()
    image = registry.push_image("team/app", "v1", layers=[b"0123456789"])
    server.app = registry
    for garbage in (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
        b"NOT HTTP AT ALL\r\n\r\n",
        b"\r\n" * 10,
    ):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            raw.sendall(garbage)
            raw.shutdown(socket.SHUT_WR)
            raw.settimeout(10)
            try:
                while raw.recv(4096):
                    pass
            except OSError:
                pass
    check_still_serving(registry, image, socket_get(server))


def socket_post(server, path):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", path)
        answer = connection.getresponse()
        answer.read()
        return answer.getheader("Location")
    finally:
        connection.close()
