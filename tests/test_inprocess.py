"""In-process clients: requests through requests-mock, httpx through WSGITransport, the socket server."""

import asyncio
import hashlib
import io

import pytest
import requests

from fakeregistry import FakeRegistry, InternalError, serve

BIG = bytes(range(256)) * (4 * 4096)  # 4 MiB


def test_requests_bodies_of_every_shape(fake_registry):
    url = fake_registry.url
    digest = "sha256:" + hashlib.sha256(BIG).hexdigest()

    def chunks():
        for start in range(0, len(BIG), 65536):
            yield BIG[start : start + 65536]

    for body in (BIG, io.BytesIO(BIG), chunks()):
        fake_registry.reset()
        response = requests.post(f"{url}/v2/team/app/blobs/uploads/?digest={digest}", data=body)
        assert response.status_code == 201, response.text
        assert fake_registry.get_blob("team/app", digest) == BIG


def test_requests_response_streams(fake_registry):
    digest = fake_registry.put_blob("team/app", BIG)
    response = requests.get(f"{fake_registry.url}/v2/team/app/blobs/{digest}", stream=True)
    first = next(response.iter_content(65536))
    assert first == BIG[:65536]
    # Only what was read so far has left the registry, not the whole blob.
    assert fake_registry.requests[-1].bytes_sent < len(BIG)
    rest = b"".join(response.iter_content(1 << 20))
    assert first + rest == BIG
    assert fake_registry.requests[-1].bytes_sent == len(BIG)
    assert fake_registry.requests[-1].duration is not None  # the body was closed


def test_requests_repeated_headers_stay_apart(fake_registry, monkeypatch):
    from werkzeug.wrappers import Response

    def two_links(request, **args):
        response = Response("{}", content_type="application/json")
        response.headers.add("Link", "<a>; rel=next")
        response.headers.add("Link", "<b>; rel=prev")
        return response

    monkeypatch.setitem(fake_registry.api.handlers, ("base", "GET"), two_links)
    response = requests.get(f"{fake_registry.url}/v2/")
    assert response.raw.headers.getlist("Link") == ["<a>; rel=next", "<b>; rel=prev"]


def test_requests_follow_the_host_port(monkeypatch):
    registry = FakeRegistry(host="registry.example:5000")
    with registry.mock_requests():
        assert requests.get("http://registry.example:5000/v2/").status_code == 200
        assert requests.get("https://REGISTRY.example:5000/v2/").status_code == 200
        with pytest.raises(requests.ConnectionError):
            requests.get("http://registry.example:5001/v2/", timeout=2)


def test_requests_through_a_session_with_redirect_following(fake_registry):
    with requests.Session() as session:
        response = session.post(f"{fake_registry.url}/v2/team/app/blobs/uploads/")
        location = response.headers["Location"]
        assert session.patch(location, data=b"abc").headers["Range"] == "0-2"


def test_httpx_client(fake_registry):
    image = fake_registry.push_image("team/app", "v1", layers=[BIG])
    with fake_registry.httpx_client() as http:
        response = http.get("/v2/team/app/manifests/v1")
        assert response.headers["Docker-Content-Digest"] == image.digest
        blob = http.get(f"/v2/team/app/blobs/{image.layer_digests[0]}")
        assert blob.content == BIG
        digest = "sha256:" + hashlib.sha256(b"pushed").hexdigest()
        assert http.post(f"/v2/team/app/blobs/uploads/?digest={digest}", content=b"pushed").status_code == 201


def test_httpx_transport_by_hand():
    import httpx

    registry = FakeRegistry()
    with httpx.Client(transport=httpx.WSGITransport(app=registry), base_url=registry.url) as http:
        assert http.get("/v2/").json() == {}


def test_serve_context_manager():
    registry = FakeRegistry()
    registry.push_image("team/app", "v1")
    with serve(registry, port=0) as server:
        assert server.url == f"http://{server.host}"
        assert requests.get(f"{server.url}/v2/team/app/tags/list").json()["tags"] == ["v1"]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/v2/", timeout=2)


def test_socket_fixture_with_aiohttp(fake_registry_server):
    aiohttp = pytest.importorskip("aiohttp")
    image = fake_registry_server.push_image("team/app", "v1", layers=[BIG])

    async def pull():
        async with aiohttp.ClientSession(fake_registry_server.url) as session:
            async with session.get("/v2/team/app/manifests/v1") as response:
                assert response.headers["Docker-Content-Digest"] == image.digest
            async with session.get(f"/v2/team/app/blobs/{image.layer_digests[0]}") as response:
                return await response.read()

    async def pull_in_parallel():
        return await asyncio.gather(*(pull() for _ in range(4)))

    assert asyncio.run(pull_in_parallel()) == [BIG] * 4
    fake_registry_server.requests.assert_called(route="blob", times=4)


def test_check_internal_errors(monkeypatch):
    registry = FakeRegistry()

    def broken(request, **args):
        raise RuntimeError("bug")

    monkeypatch.setitem(registry.api.handlers, ("base", "GET"), broken)
    with registry.mock_requests():
        response = requests.get(f"{registry.url}/v2/")
    assert response.status_code == 500
    assert response.json()["errors"][0]["code"] == "UNKNOWN"
    with pytest.raises(InternalError, match="RuntimeError: bug"):
        registry.check_internal_errors()
    registry.check_internal_errors()  # reported once
