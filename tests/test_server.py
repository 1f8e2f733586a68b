"""RegistryServer: the registry on a real socket, as concurrent, slow, chunking and TLS clients see it.

Every test talks to 127.0.0.1 only, and every wait is bounded: a hang fails the test.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, List, Tuple
from urllib.parse import urlsplit

import pytest
import requests
from conftest import require_tool
from skopeo_sandbox import make_sandbox

from fakeregistry import FakeRegistry
from fakeregistry.server import RegistryServer
from helpers import sha256
from oci_layout import build_image, write_layout

TIMEOUT = 10  # seconds: the bound on any one wait; answers come in milliseconds
MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def server(registry: FakeRegistry) -> Iterator[RegistryServer]:
    with RegistryServer(registry) as running:
        yield running


@pytest.fixture(scope="module")
def tls_server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("cryptography")
    return tmp_path_factory.mktemp("tls")


@pytest.fixture
def tls_server(registry: FakeRegistry, tls_server_dir: Path) -> Iterator[RegistryServer]:
    with RegistryServer(registry, tls=tls_server_dir) as running:
        yield running


def connect(server: RegistryServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)


def start_upload(connection: http.client.HTTPConnection, repository: str) -> str:
    connection.request("POST", f"/v2/{repository}/blobs/uploads/", headers={"Content-Length": "0"})
    response = connection.getresponse()
    response.read()
    assert response.status == 202, response.status
    return urlsplit(response.getheader("Location", "")).path


def send_chunked(connection: http.client.HTTPConnection, method: str, path: str, pieces: List[bytes]) -> None:
    """A request with a Transfer-Encoding: chunked body and no Content-Length, framed by hand as Go frames it."""
    connection.putrequest(method, path)
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    for piece in pieces:
        connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    connection.send(b"0\r\n\r\n")


def finish_upload(connection: http.client.HTTPConnection, location: str, digest: str) -> int:
    connection.request("PUT", f"{location}?digest={digest}", headers={"Content-Length": "0"})
    response = connection.getresponse()
    response.read()
    return response.status


def client_hello() -> bytes:
    """The first flight of a TLS client, as skopeo sends it when it tries HTTPS first."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def server_threads() -> List[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("fakeregistry")]


# HTTP/1.1


def test_keep_alive_serves_two_requests_on_one_connection(server: RegistryServer, registry: FakeRegistry) -> None:
    registry.push_image("team/app", "v1", layers=[b"one"])
    connection = connect(server)
    try:
        connection.request("GET", "/v2/")
        first = connection.getresponse()
        first.read()
        sock = connection.sock
        assert first.status == 200 and not first.will_close

        connection.request("GET", "/v2/team/app/manifests/v1", headers={"Accept": MANIFEST_ACCEPT})
        second = connection.getresponse()
        second.read()
        assert second.status == 200
        assert connection.sock is sock  # http.client would have reconnected had the server closed
        assert sock is not None and sock.fileno() != -1
    finally:
        connection.close()


def test_chunked_patch_without_content_length_lands_every_byte(server: RegistryServer, registry: FakeRegistry) -> None:
    data = os.urandom(3 * 1024 * 1024 + 12345)  # over several of the registry's 1 MiB reads
    pieces = [data[offset : offset + 32 * 1024 + 7] for offset in range(0, len(data), 32 * 1024 + 7)]
    connection = connect(server)
    try:
        location = start_upload(connection, "team/app")
        send_chunked(connection, "PATCH", location, pieces)
        response = connection.getresponse()
        response.read()
        assert response.status == 202, response.status
        assert response.getheader("Range") == f"0-{len(data) - 1}"
        # The body ended where its last chunk said: the same connection goes on.
        assert finish_upload(connection, location, sha256(data)) == 201
    finally:
        connection.close()
    assert registry.get_blob("team/app", sha256(data)) == data


def test_unread_chunked_body_does_not_spill_into_the_next_request(
    server: RegistryServer, registry: FakeRegistry
) -> None:
    registry.inject("blob-upload-chunk", method="PATCH", status=416)  # answered without reading the body
    connection = connect(server)
    try:
        location = start_upload(connection, "team/app")
        send_chunked(connection, "PATCH", location, [b"x" * 5000, b"y" * 5000])
        refused = connection.getresponse()
        refused.read()
        assert refused.status == 416
        connection.request("GET", "/v2/")  # on the same connection, if the server kept it
        response = connection.getresponse()
        response.read()
        assert response.status == 200
    finally:
        connection.close()


def test_a_body_cut_short_is_the_clients_mistake(server: RegistryServer, registry: FakeRegistry) -> None:
    connection = connect(server)
    location = start_upload(connection, "team/app")
    connection.close()
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(f"PATCH {location} HTTP/1.1\r\nHost: {server.host}\r\nContent-Length: 1000\r\n\r\n".encode())
        sock.sendall(b"only 100 bytes" * 7 + b"xx")
        sock.shutdown(socket.SHUT_WR)  # and the client goes away
        sock.recv(4096)
    deadline = time.monotonic() + TIMEOUT
    while not registry.requests.filter(method="PATCH") or registry.requests.filter(method="PATCH")[0].status is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    record = registry.requests.filter(method="PATCH")[0]
    assert (record.status, record.error) == (400, "BLOB_UPLOAD_INVALID")
    assert not registry.internal_errors
    assert requests.get(f"{server.url}/v2/", timeout=TIMEOUT).status_code == 200


def test_escaped_slashes_reach_the_registry_decoded(server: RegistryServer, registry: FakeRegistry) -> None:
    registry.push_image("team/app", "v1", layers=[b"one"])
    connection = connect(server)
    try:
        connection.request("GET", "/v2/team%2Fapp/tags/list")  # as werkzeug's server and test client decode it
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b'{"name": "team/app", "tags": ["v1"]}')
    finally:
        connection.close()


def test_absolute_request_target_is_accepted(server: RegistryServer) -> None:
    connection = connect(server)
    try:
        connection.request("GET", f"{server.url}/v2/")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
    finally:
        connection.close()


def test_sixteen_clients_push_and_pull_at_once(server: RegistryServer, registry: FakeRegistry) -> None:
    blobs = [os.urandom(256 * 1024 + index) for index in range(16)]

    def push_and_pull(index: int) -> Tuple[str, str]:
        data = blobs[index]
        with requests.Session() as session:
            started = session.post(f"{server.url}/v2/team/app{index}/blobs/uploads/", timeout=TIMEOUT)
            assert started.status_code == 202, started.text
            location = started.headers["Location"]
            # Half the clients send the blob chunked (a generator), half with a Content-Length.
            body = iter([data[: len(data) // 2], data[len(data) // 2 :]]) if index % 2 else data
            patched = session.patch(location, data=body, timeout=TIMEOUT)
            assert patched.status_code == 202, patched.text
            put = session.put(patched.headers["Location"], params={"digest": sha256(data)}, timeout=TIMEOUT)
            assert put.status_code == 201, put.text
            pulled = session.get(f"{server.url}/v2/team/app{index}/blobs/{sha256(data)}", timeout=TIMEOUT)
            assert pulled.status_code == 200
            return pulled.headers["Docker-Content-Digest"], sha256(pulled.content)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(push_and_pull, range(16)))
    assert results == [(sha256(data), sha256(data)) for data in blobs]
    assert all(registry.get_blob(f"team/app{index}", sha256(data)) == data for index, data in enumerate(blobs))


def trickle(server: RegistryServer, location: str, pieces: int, sent: threading.Event) -> int:
    """PATCH a body that arrives 10 bytes every 20 ms; the status. ``sent`` is set once the last byte is out."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        head = (
            f"PATCH {location} HTTP/1.1\r\nHost: {server.host}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {10 * pieces}\r\n\r\n"
        )
        sock.sendall(head.encode())
        for index in range(pieces):
            if index:
                time.sleep(0.02)
            sock.sendall(b"0123456789")
        sent.set()
        reply = sock.recv(4096)
    return int(reply.split(b" ", 2)[1])


def test_slow_clients_do_not_block_others(server: RegistryServer, registry: FakeRegistry) -> None:
    # More slow uploads than the server starts threads for: it has to add some.
    slow = 6
    connection = connect(server)
    locations = [start_upload(connection, f"team/slow{index}") for index in range(slow)]
    connection.close()
    done = [threading.Event() for _ in range(slow)]
    with ThreadPoolExecutor(slow) as pool:
        uploads = [pool.submit(trickle, server, location, 40, event) for location, event in zip(locations, done)]
        time.sleep(0.2)  # every slow upload is under way, its request read, its body trickling
        answered = requests.get(f"{server.url}/v2/", timeout=TIMEOUT)
        # The GET was answered while every slow client was still sending its body: nobody waited for them.
        still_sending = not any(event.is_set() for event in done)
        statuses = [upload.result(TIMEOUT) for upload in uploads]
    assert answered.status_code == 200
    assert still_sending
    assert statuses == [202] * slow


def test_tls_client_hello_on_the_plain_port_is_answered_at_once(server: RegistryServer) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(client_hello())
        answer = b""
        while True:
            piece = sock.recv(4096)
            if not piece:  # the server closed the connection
                break
            answer += piece
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"plain HTTP" in answer
    assert time.monotonic() - started < 5
    # A TLS client gets an error, not a hang...
    context = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(sock, server_hostname="localhost")
    # ...and the server goes on serving.
    assert requests.get(f"{server.url}/v2/", timeout=TIMEOUT).status_code == 200


def test_injected_disconnect_cuts_the_connection(server: RegistryServer, registry: FakeRegistry) -> None:
    registry.inject("base", disconnect=True)
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/v2/", timeout=TIMEOUT)
    assert time.monotonic() - started < 5
    assert requests.get(f"{server.url}/v2/", timeout=TIMEOUT).status_code == 200


def test_injected_truncate_cuts_the_body(server: RegistryServer, registry: FakeRegistry) -> None:
    data = os.urandom(100_000)
    digest = registry.put_blob("team/app", data)
    registry.inject("blob", method="GET", truncate=1000)
    connection = connect(server)
    started = time.monotonic()
    try:
        connection.request("GET", f"/v2/team/app/blobs/{digest}")
        response = connection.getresponse()
        assert response.status == 200 and response.getheader("Content-Length") == str(len(data))
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
        assert len(cut.value.partial) == 1000  # the bytes before the cut did arrive
    finally:
        connection.close()
    assert time.monotonic() - started < 5
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # as requests reports it
        registry.inject("blob", method="GET", truncate=10)
        requests.get(f"{server.url}/v2/team/app/blobs/{digest}", timeout=TIMEOUT)


def test_the_app_can_be_swapped_while_serving(server: RegistryServer, registry: FakeRegistry) -> None:
    registry.push_image("team/app", "v1", layers=[b"one"])
    assert requests.get(f"{server.url}/v2/_catalog", timeout=TIMEOUT).json() == {"repositories": ["team/app"]}
    server.app = FakeRegistry()
    assert requests.get(f"{server.url}/v2/_catalog", timeout=TIMEOUT).json() == {"repositories": []}


def test_stop_ends_threads_and_connections(registry: FakeRegistry) -> None:
    before = set(threading.enumerate())
    server = RegistryServer(registry).start()
    idle = connect(server)
    idle.request("GET", "/v2/")
    idle.getresponse().read()  # a kept-alive connection, idle in the server's selector
    busy = [socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) for _ in range(3)]
    busy[0].sendall(b"PATCH /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part of the body")
    time.sleep(0.1)
    assert server_threads()

    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5

    deadline = time.monotonic() + TIMEOUT
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not set(threading.enumerate()) - before
    assert idle.sock is not None and idle.sock.recv(1) == b""  # closed by the server
    for sock in busy:  # cut, mid-request or before one: closed, not left hanging
        try:
            assert sock.recv(4096) == b""
        except ConnectionResetError:
            pass
        sock.close()
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT).close()
    server.stop()  # again: nothing happens


# TLS


def test_tls_server_is_verified_with_its_ca(tls_server: RegistryServer) -> None:
    assert tls_server.url == f"https://127.0.0.1:{tls_server.port}"
    assert tls_server.ca_file is not None
    for host in ("127.0.0.1", "localhost"):
        answer = requests.get(f"https://{host}:{tls_server.port}/v2/", verify=tls_server.ca_file, timeout=TIMEOUT)
        assert answer.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):  # not without it
        requests.get(f"{tls_server.url}/v2/", timeout=TIMEOUT)


def test_tls_keep_alive_and_chunked_upload(tls_server: RegistryServer, registry: FakeRegistry) -> None:
    assert tls_server.tls is not None
    data = os.urandom(1024 * 1024 + 3)
    connection = http.client.HTTPSConnection(
        "localhost", tls_server.port, timeout=TIMEOUT, context=tls_server.tls.client_context()
    )
    try:
        location = start_upload(connection, "team/app")
        sock = connection.sock
        send_chunked(connection, "PATCH", location, [data[:500_000], data[500_000:]])
        response = connection.getresponse()
        response.read()
        assert response.status == 202
        assert finish_upload(connection, location, sha256(data)) == 201
        assert connection.sock is sock
    finally:
        connection.close()
    assert registry.get_blob("team/app", sha256(data)) == data


def test_plain_http_on_the_tls_port_is_told_to_use_https(tls_server: RegistryServer) -> None:
    connection = connect(tls_server)
    try:
        connection.request("GET", "/v2/")
        response = connection.getresponse()
        assert response.status == 400
        assert b"HTTPS" in response.read()
    finally:
        connection.close()
    assert requests.get(f"{tls_server.url}/v2/", verify=tls_server.ca_file, timeout=TIMEOUT).status_code == 200


def test_a_silent_client_does_not_hold_up_the_tls_handshakes_of_others(tls_server: RegistryServer) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=TIMEOUT):  # connects, says nothing
        answer = requests.get(f"{tls_server.url}/v2/", verify=tls_server.ca_file, timeout=TIMEOUT)
        assert answer.status_code == 200


def test_tls_faults_cut_the_connection(tls_server: RegistryServer, registry: FakeRegistry) -> None:
    registry.inject("base", disconnect=True)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{tls_server.url}/v2/", verify=tls_server.ca_file, timeout=TIMEOUT)


def test_tls_with_a_temporary_directory_removed_by_stop(registry: FakeRegistry) -> None:
    pytest.importorskip("cryptography")
    with RegistryServer(registry, tls=True) as server:
        assert server.ca_file is not None
        ca_file = Path(server.ca_file)
        assert requests.get(f"{server.url}/v2/", verify=str(ca_file), timeout=TIMEOUT).status_code == 200
    assert not ca_file.exists()


def test_certificate_directory_is_a_client_cert_dir_and_is_reused(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    from fakeregistry.tls import make_certificates

    files = make_certificates(tmp_path / "certs", ["registry.example"])
    # Only certificates at the top: usable as skopeo's --cert-dir or docker's certs.d/<host:port>/ as it is.
    assert sorted(path.name for path in files.directory.iterdir() if path.is_file()) == ["ca.crt", "server.crt"]
    assert stat.S_IMODE(files.key_file.stat().st_mode) == 0o600
    assert files.names == ("localhost", "127.0.0.1", "::1", "registry.example")

    ca = files.ca_file.read_bytes()
    again = make_certificates(tmp_path / "certs", ["registry.example"])
    assert again.ca_file.read_bytes() == ca  # reused: clients keep trusting it
    other = make_certificates(tmp_path / "certs", ["other.example"])
    assert other.ca_file.read_bytes() != ca  # a name it lacked: made anew


def test_skopeo_verifies_the_tls_server(tmp_path: Path, tls_server: RegistryServer, registry: FakeRegistry) -> None:
    sandbox = make_sandbox(tmp_path / "skopeo", require_tool("skopeo"))
    assert tls_server.ca_file is not None and tls_server.tls is not None
    shutil.copy(tls_server.ca_file, sandbox.certs / "ca.crt")
    image = build_image([{"hello.txt": b"hello over TLS\n"}])
    layout = write_layout(tmp_path / "layout", image, "v1")
    for host in (f"localhost:{tls_server.port}", tls_server.host):
        # TLS verification on (skopeo's default), the CA from a certificate directory.
        copied = sandbox.run(
            "copy", "--quiet", "--retry-times=0", f"--dest-cert-dir={sandbox.certs}",
            f"oci:{layout}:v1", f"docker://{host}/team/app:v1",
        )  # fmt: skip
        assert copied.returncode == 0, copied.stderr.decode(errors="replace")
        # The server's own certificate directory works as a --cert-dir as it is.
        inspected = sandbox.run(
            "inspect", "--raw", "--retry-times=0", f"--cert-dir={tls_server.tls.directory}",
            f"docker://{host}/team/app:v1",
        )  # fmt: skip
        assert inspected.returncode == 0, inspected.stderr.decode(errors="replace")
        assert inspected.stdout == image.manifest.data
    assert registry.get_manifest("team/app", "v1") == image.manifest.data
    assert all(record.status is not None and record.status < 500 for record in registry.requests)
