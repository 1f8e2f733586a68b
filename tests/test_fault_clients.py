"""Every fault action, as real clients see it: python-dxf, oras-py and plain ``requests``.

Most tests run twice, through the plugin's two fixtures: ``fake_registry``
(in-process, ``requests`` served through requests-mock) and
``fake_registry_server`` (a loopback socket). What a fault does must not
depend on the transport: the same status, headers and error code, the same
dropped connection, the same short or corrupted body.
"""

from __future__ import annotations

import base64
import random
import select
import signal
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any, Iterator, List

import oras.client
import oras.decorator
import pytest
import requests
from dxf import DXF
from dxf.exceptions import DXFAuthInsecureError, DXFDigestMismatchError, DXFUnauthorizedError

from fakeregistry import FakeRegistry
from helpers import sha256

REPO = "team/app"
BLOB = random.Random(1).randbytes(64 * 1024)  # larger than any truncate= used here
TIMEOUT = 10  # every request, so that a hang fails instead of stalling the suite

# A broken body: urllib3 reports it as a protocol error (ChunkedEncodingError in
# requests) or, when the socket is already shut, as a ConnectionError.
BROKEN_BODY = (requests.exceptions.ChunkedEncodingError, requests.ConnectionError)


@pytest.fixture(params=["fake_registry", "fake_registry_server"], ids=["inprocess", "socket"])
def reg(request: pytest.FixtureRequest) -> FakeRegistry:
    """The registry under test, in-process or on a loopback socket."""
    return request.getfixturevalue(request.param)


def is_socket(reg: FakeRegistry) -> bool:
    return reg.host.startswith("127.0.0.1:")


def dxf_client(reg: FakeRegistry, **options: Any) -> DXF:
    return DXF(reg.host, REPO, insecure=True, timeout=TIMEOUT, **options)


def get(reg: FakeRegistry, path: str, **options: Any) -> requests.Response:
    return requests.get(f"{reg.url}{path}", timeout=TIMEOUT, **options)


def codes(response: requests.Response) -> List[str]:
    return [error["code"] for error in response.json()["errors"]]


def pull(client: DXF, digest: str) -> bytes:
    # pull_blob checks the digest only once its iterator is exhausted.
    return b"".join(client.pull_blob(digest))


def manifest_statuses(reg: FakeRegistry, count: int, reference: str = "v1", repository: str = REPO) -> List[int]:
    return [get(reg, f"/v2/{repository}/manifests/{reference}").status_code for _ in range(count)]


def start_upload(reg: FakeRegistry) -> str:
    started = requests.post(f"{reg.url}/v2/{REPO}/blobs/uploads/", timeout=TIMEOUT)
    assert started.status_code == 202, started.text
    return started.headers["Location"]


def patch(location: str, data: bytes, offset: int) -> requests.Response:
    headers = {"Content-Range": f"{offset}-{offset + len(data) - 1}", "Content-Type": "application/octet-stream"}
    return requests.patch(location, data=data, headers=headers, timeout=TIMEOUT)


# --- status faults, in the registry's dialect ---------------------------------------------------

PRESETS = {
    "blob_unknown": (lambda reg: reg.inject_blob_unknown(), 404, "BLOB_UNKNOWN"),
    "throttling": (lambda reg: reg.inject_throttling(retry_after=2), 429, "TOOMANYREQUESTS"),
    "unavailable": (lambda reg: reg.inject_unavailable(), 503, "UNAVAILABLE"),
}


@pytest.mark.parametrize("preset", PRESETS)
def test_status_presets_reach_python_dxf(reg, preset):
    digest = reg.put_blob(REPO, BLOB)
    inject, status, code = PRESETS[preset]
    fault = inject(reg)
    client = dxf_client(reg)

    with pytest.raises(requests.HTTPError) as raised:
        pull(client, digest)

    response = raised.value.response
    assert response.status_code == status
    assert codes(response) == [code]
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    if preset == "throttling":
        assert response.headers["Retry-After"] == "2"
    else:
        assert "Retry-After" not in response.headers
    # One-shot by default: the next pull is the real answer.
    assert pull(client, digest) == BLOB
    assert fault.hits == 1
    assert [(r.status, r.fault) for r in reg.requests.filter(route="blob")] == [(status, fault.id), (200, None)]


# --- auth challenges ------------------------------------------------------------------------------

UPLOAD = "/v2/team/app/blobs/uploads/0f2a4c3e-0000-4000-8000-000000000000"
SCOPES = [
    ("GET", "/v2/team/app/manifests/v1", "repository:team/app:pull"),
    ("HEAD", "/v2/team/app/blobs/" + sha256(b"x"), "repository:team/app:pull"),
    ("GET", "/v2/team/app/tags/list", "repository:team/app:pull"),
    ("PUT", "/v2/team/app/manifests/v1", "repository:team/app:pull,push"),
    ("POST", "/v2/team/app/blobs/uploads/", "repository:team/app:pull,push"),
    ("PATCH", UPLOAD, "repository:team/app:pull,push"),
    ("PUT", UPLOAD + "?digest=" + sha256(b"x"), "repository:team/app:pull,push"),
    ("DELETE", "/v2/team/app/manifests/v1", "repository:team/app:delete"),
    ("DELETE", "/v2/team/app/blobs/" + sha256(b"x"), "repository:team/app:delete"),
    ("GET", "/v2/_catalog", "registry:catalog:*"),
    ("GET", "/v2/", None),  # the base route needs credentials, but no scope
]


@pytest.mark.parametrize(("method", "path", "scope"), SCOPES, ids=[f"{m} {p[:40]}" for m, p, _ in SCOPES])
def test_bearer_challenge_names_realm_service_and_exact_scope(reg, method, path, scope):
    fault = reg.inject_auth_challenge()

    response = requests.request(method, f"{reg.url}{path}", timeout=TIMEOUT)

    assert response.status_code == 401
    expected = f'Bearer realm="{reg.url}/token",service="{reg.host}"'
    if scope is not None:
        expected += f',scope="{scope}"'
    assert response.headers["WWW-Authenticate"] == expected
    if method != "HEAD":
        assert codes(response) == ["UNAUTHORIZED"]
    assert fault.hits == 1
    (record,) = reg.requests
    assert (record.status, record.error, record.fault) == (401, "UNAUTHORIZED", fault.id)


def test_basic_challenge(reg):
    reg.inject_auth_challenge(scheme="basic")

    response = get(reg, f"/v2/{REPO}/manifests/v1")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="fakeregistry"'
    assert codes(response) == ["UNAUTHORIZED"]


def test_python_dxf_does_the_token_dance_through_a_one_time_challenge(fake_registry):
    # python-dxf authenticates only over https (it forces https for the token
    # realm too): in-process, fake_registry answers https://registry.test as well.
    reg = fake_registry
    digest = reg.put_blob(REPO, BLOB)
    fault = reg.inject_auth_challenge()
    client = DXF(reg.host, REPO, auth=lambda dxf, response: dxf.authenticate(response=response), timeout=TIMEOUT)

    assert pull(client, digest) == BLOB

    challenged, token, retried = reg.requests
    assert (challenged.route, challenged.status, challenged.fault) == ("blob", 401, fault.id)
    assert "Authorization" not in challenged.headers
    assert (token.route, token.method, token.status, token.fault) == ("token", "GET", 200, None)
    assert token.args["service"] == reg.host
    assert token.args.getlist("scope") == [f"repository:{REPO}:pull"]
    assert (retried.route, retried.reference, retried.status, retried.fault) == ("blob", digest, 200, None)
    assert retried.headers["Authorization"] == f"Bearer {client.token}"
    assert client.token


def test_python_dxf_answers_a_basic_challenge_with_credentials(fake_registry):
    reg = fake_registry
    digest = reg.put_blob(REPO, BLOB)
    reg.inject_auth_challenge(scheme="basic")

    def login(dxf: DXF, response: requests.Response) -> None:
        dxf.authenticate("alice", "s3cret", response=response)

    client = DXF(reg.host, REPO, auth=login, timeout=TIMEOUT)

    assert pull(client, digest) == BLOB

    challenged, retried = reg.requests  # Basic: no token request, the credentials go straight back
    assert challenged.status == 401
    assert retried.headers["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert retried.status == 200


def test_python_dxf_over_plain_http_cannot_answer_a_challenge(fake_registry_server):
    # Not a fakeregistry limit: python-dxf refuses to authenticate without TLS,
    # and reports a 401 it cannot answer as DXFUnauthorizedError.
    reg = fake_registry_server
    digest = reg.put_blob(REPO, BLOB)
    reg.inject_auth_challenge(times=2)

    with pytest.raises(DXFUnauthorizedError):
        pull(dxf_client(reg), digest)
    with pytest.raises(DXFAuthInsecureError):
        pull(dxf_client(reg, auth=lambda dxf, response: dxf.authenticate(response=response)), digest)


# --- upload faults ----------------------------------------------------------------------------------


def test_chunk_range_error_reports_where_a_hand_written_client_resumes(reg):
    data = random.Random(2).randbytes(3000)
    location = start_upload(reg)
    assert patch(location, data[:1000], 0).status_code == 202
    fault = reg.inject_chunk_range_error()

    refused = patch(location, data[1000:2000], 1000)

    assert refused.status_code == 416
    assert codes(refused) == ["RANGE_INVALID"]
    assert refused.headers["Range"] == "0-999"  # what the session holds: the first chunk only
    assert refused.headers["Location"] == location
    # Resume where the registry says, at the Location it gave.
    offset = int(refused.headers["Range"].split("-")[1]) + 1
    assert patch(refused.headers["Location"], data[offset:], offset).status_code == 202
    done = requests.put(location, params={"digest": sha256(data)}, timeout=TIMEOUT)
    assert done.status_code == 201, done.text
    assert reg.get_blob(REPO, sha256(data)) == data
    assert fault.hits == 1
    ranges = [(r.headers["Content-Range"], r.status) for r in reg.requests.filter(method="PATCH")]
    assert ranges == [("0-999", 202), ("1000-1999", 416), ("1000-2999", 202)]


def test_chunk_range_error_reaches_oras_chunked_push(reg, monkeypatch, tmp_path):
    monkeypatch.setattr(oras.decorator, "time", SimpleNamespace(sleep=lambda seconds: None))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    data = random.Random(3).randbytes(3000)
    (tmp_path / "data.bin").write_bytes(data)
    client = oras.client.OrasClient(hostname=reg.host, insecure=True)
    answers: List[requests.Response] = []
    client.session.hooks["response"].append(lambda response, **kwargs: answers.append(response))
    fault = reg.inject_chunk_range_error(after=1)  # the layer's second chunk

    # oras does not resume: it gives up on the push.
    with pytest.raises(ValueError, match="(?i)range not satisfiable"):
        client.push(f"{reg.host}/{REPO}:v1", files=["data.bin"], do_chunked=True, chunk_size=1000, quiet=True)

    (refused,) = [r for r in answers if r.status_code == 416]
    assert refused.request.headers["Content-Range"] == "1000-1999"
    assert refused.headers["Range"] == "0-999"
    assert codes(refused) == ["RANGE_INVALID"]
    assert fault.hits == 1
    reg.requests.assert_not_called(route="manifest", method="PUT")
    # What oras left behind can be finished from the 416's Location and Range.
    location = refused.headers["Location"]
    assert patch(location, data[1000:], 1000).status_code == 202
    assert requests.put(location, params={"digest": sha256(data)}, timeout=TIMEOUT).status_code == 201
    assert reg.get_blob(REPO, sha256(data)) == data


def test_upload_lost_is_really_gone(reg):
    location = start_upload(reg)
    assert patch(location, b"first chunk", 0).status_code == 202
    fault = reg.inject_upload_lost()

    lost = patch(location, b"second", len(b"first chunk"))

    assert lost.status_code == 404
    assert codes(lost) == ["BLOB_UPLOAD_UNKNOWN"]
    assert fault.hits == 1
    # Not just that answer: the session is gone for every later request.
    status = requests.get(location, timeout=TIMEOUT)
    assert status.status_code == 404
    assert codes(status) == ["BLOB_UPLOAD_UNKNOWN"]
    assert status.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    retry = patch(location, b"second", len(b"first chunk"))
    assert retry.status_code == 404
    assert [r.fault for r in reg.requests.filter(route="blob-upload-chunk", status=404)] == [fault.id, None, None]


def test_upload_lost_fails_a_python_dxf_push(reg):
    reg.inject_upload_lost()

    with pytest.raises(requests.HTTPError) as raised:
        dxf_client(reg).push_blob(data=iter([b"some", b"chunks"]), digest=sha256(b"somechunks"))

    assert raised.value.response.status_code == 404
    assert codes(raised.value.response) == ["BLOB_UPLOAD_UNKNOWN"]
    with pytest.raises(KeyError):
        reg.get_blob(REPO, sha256(b"somechunks"))


# --- transport faults ------------------------------------------------------------------------------


def test_delay_answers_late_with_the_real_answer(reg):
    image = reg.push_image(REPO, "v1", layers=[b"layer"])
    fault = reg.inject("manifest", delay=0.3)

    started = time.perf_counter()
    response = get(reg, f"/v2/{REPO}/manifests/v1")
    elapsed = time.perf_counter() - started

    assert elapsed >= 0.3
    assert response.status_code == 200
    assert response.content == image.manifest
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert fault.hits == 1
    (record,) = reg.requests
    assert (record.status, record.error, record.fault) == (200, None, fault.id)


def test_delay_applies_to_python_dxf_pull(reg):
    digest = reg.put_blob(REPO, BLOB)
    fault = reg.inject("blob", method="GET", delay=0.2)

    started = time.perf_counter()
    assert pull(dxf_client(reg), digest) == BLOB
    assert time.perf_counter() - started >= 0.2
    assert fault.hits == 1


def test_disconnect_is_a_connection_error_and_the_server_keeps_serving(reg):
    reg.push_image(REPO, "v1", layers=[b"layer"])
    fault = reg.inject("manifest", disconnect=True)

    with pytest.raises(requests.ConnectionError):
        get(reg, f"/v2/{REPO}/manifests/v1")

    assert get(reg, f"/v2/{REPO}/manifests/v1").status_code == 200
    assert get(reg, "/v2/").status_code == 200
    assert fault.hits == 1
    dropped = reg.requests[0]
    assert (dropped.error, dropped.fault) == ("DISCONNECTED", fault.id)


def test_disconnect_fails_a_python_dxf_pull(reg):
    digest = reg.put_blob(REPO, BLOB)
    reg.inject("blob", disconnect=True)
    client = dxf_client(reg)

    with pytest.raises(requests.ConnectionError):
        pull(client, digest)
    assert pull(client, digest) == BLOB


def test_truncate_breaks_the_body(reg):
    digest = reg.put_blob(REPO, BLOB)
    fault = reg.inject("blob", truncate=1000)

    with pytest.raises(BROKEN_BODY):
        get(reg, f"/v2/{REPO}/blobs/{digest}")

    assert fault.hits == 1
    assert get(reg, f"/v2/{REPO}/blobs/{digest}").content == BLOB  # and the server keeps serving


def test_truncate_streamed_stops_after_the_limit(reg):
    digest = reg.put_blob(REPO, BLOB)
    reg.inject("blob", truncate=1000)
    received = bytearray()

    with pytest.raises(BROKEN_BODY):
        with get(reg, f"/v2/{REPO}/blobs/{digest}", stream=True) as response:
            assert response.headers["Content-Length"] == str(len(BLOB))  # the headers promised it all
            for chunk in response.iter_content(100):
                received += chunk

    assert bytes(received) == BLOB[:1000]


def test_truncate_fails_a_python_dxf_pull(reg):
    digest = reg.put_blob(REPO, BLOB)
    reg.inject("blob", truncate=1000)

    with pytest.raises(BROKEN_BODY):
        pull(dxf_client(reg), digest)


def test_corrupt_is_caught_by_python_dxf_and_leaves_the_blob_untouched(reg):
    digest = reg.put_blob(REPO, BLOB)
    fault = reg.inject("blob", corrupt=True)
    client = dxf_client(reg)

    with pytest.raises(DXFDigestMismatchError) as raised:
        pull(client, digest)

    assert raised.value.expected == digest
    assert raised.value.got != digest
    assert fault.hits == 1
    assert reg.get_blob(REPO, digest) == BLOB
    assert pull(client, digest) == BLOB


def test_corrupt_flips_a_byte_and_keeps_the_length(reg):
    digest = reg.put_blob(REPO, BLOB)
    reg.inject("blob", corrupt=True)

    body = get(reg, f"/v2/{REPO}/blobs/{digest}").content

    assert len(body) == len(BLOB)
    assert sum(a != b for a, b in zip(body, BLOB)) == 1


def test_bytes_per_second_sends_the_whole_body_slowly(reg):
    data = BLOB[:2000]
    digest = reg.put_blob(REPO, data)
    fault = reg.inject("blob", bytes_per_second=10_000)  # 2000 bytes: 0.2 s

    started = time.perf_counter()
    response = get(reg, f"/v2/{REPO}/blobs/{digest}")
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert response.content == data
    assert elapsed >= 0.2 * 0.95
    assert fault.hits == 1


def test_bytes_per_second_python_dxf_pull_is_complete(reg):
    data = BLOB[:1500]
    digest = reg.put_blob(REPO, data)
    reg.inject("blob", bytes_per_second=10_000)

    started = time.perf_counter()
    assert pull(dxf_client(reg), digest) == data
    assert time.perf_counter() - started >= 0.15 * 0.95


# --- redirects to storage ---------------------------------------------------------------------------


def storage_location(reg: FakeRegistry, digest: str) -> str:
    port = reg.host.partition(":")[2]
    host = f"localhost:{port}" if is_socket(reg) else f"storage.{reg.host}"
    return f"http://{host}/_fakeregistry/storage/{REPO}/blobs/{digest}"


def test_redirect_sends_a_blob_get_to_the_storage_host(reg):
    digest = reg.put_blob(REPO, BLOB)
    fault = reg.inject("blob", redirect=True)

    response = get(reg, f"/v2/{REPO}/blobs/{digest}", allow_redirects=False)

    assert response.status_code == 307
    assert response.headers["Location"] == storage_location(reg, digest)
    assert fault.hits == 1


def test_requests_drops_authorization_on_the_redirect(reg):
    digest = reg.put_blob(REPO, BLOB)
    reg.inject("blob", redirect=True)

    response = get(reg, f"/v2/{REPO}/blobs/{digest}", headers={"Authorization": "Bearer registry-token"})

    assert response.status_code == 200
    assert response.content == BLOB
    assert [r.status_code for r in response.history] == [307]
    blob, stored = reg.requests
    assert (blob.route, blob.status, blob.headers["Authorization"]) == ("blob", 307, "Bearer registry-token")
    assert (stored.route, stored.status) == ("storage", 200)
    assert "Authorization" not in stored.headers


def test_authorization_forced_onto_the_storage_url_is_refused(reg):
    digest = reg.put_blob(REPO, BLOB)
    reg.inject("blob", redirect=True)
    location = get(reg, f"/v2/{REPO}/blobs/{digest}", allow_redirects=False).headers["Location"]

    refused = requests.get(location, headers={"Authorization": "Bearer registry-token"}, timeout=TIMEOUT)

    assert refused.status_code == 400
    assert codes(refused) == ["DENIED"]
    assert requests.get(location, timeout=TIMEOUT).content == BLOB


def test_python_dxf_with_a_token_follows_the_redirect(reg):
    digest = reg.put_blob(REPO, BLOB)
    reg.inject("blob", redirect=True)
    client = dxf_client(reg)
    client.token = "registry-token"  # sets Authorization: Bearer on every request

    assert pull(client, digest) == BLOB

    blob, stored = reg.requests
    assert (blob.status, blob.headers["Authorization"]) == (307, "Bearer registry-token")
    assert (stored.route, stored.status) == ("storage", 200)
    assert "Authorization" not in stored.headers


# --- which requests a fault takes (matching is transport-independent: in-process only) ---------------


@pytest.fixture
def seeded(fake_registry: FakeRegistry) -> FakeRegistry:
    fake_registry.push_image(REPO, "v1", layers=[b"one"])
    fake_registry.push_image(REPO, "v2", layers=[b"two"])
    fake_registry.push_image("other/app", "v1", layers=[b"three"])
    return fake_registry


def test_times_two(seeded):
    fault = seeded.inject("manifest", status=503, times=2)

    assert manifest_statuses(seeded, 3) == [503, 503, 200]
    assert (fault.hits, fault.active) == (2, False)


def test_times_none_until_removed(seeded):
    fault = seeded.inject("manifest", status=503, times=None)

    assert manifest_statuses(seeded, 4) == [503] * 4
    fault.remove()
    assert manifest_statuses(seeded, 1) == [200]
    assert fault.hits == 4


def test_after(seeded):
    fault = seeded.inject("manifest", status=503, after=2)

    assert manifest_statuses(seeded, 4) == [200, 200, 503, 200]
    assert (fault.seen, fault.hits) == (3, 1)


def test_every(seeded):
    seeded.inject("manifest", status=503, every=3, times=None)

    assert manifest_statuses(seeded, 7) == [200, 200, 503, 200, 200, 503, 200]


def test_after_then_every(seeded):
    seeded.inject("manifest", status=503, after=1, every=2, times=2)

    assert manifest_statuses(seeded, 7) == [200, 200, 503, 200, 503, 200, 200]


def test_repository_glob(seeded):
    seeded.inject("manifest", status=503, repository="team/*", times=None)

    assert manifest_statuses(seeded, 1, repository="other/app") == [200]
    assert manifest_statuses(seeded, 1, repository=REPO) == [503]


def test_reference(seeded):
    fault = seeded.inject("manifest", status=503, reference="v2")

    assert manifest_statuses(seeded, 1, reference="v1") == [200]
    assert manifest_statuses(seeded, 1, reference="v2") == [503]
    assert fault.hits == 1


def test_method(seeded):
    seeded.inject("manifest", method="HEAD", status=503, times=None)
    url = f"{seeded.url}/v2/{REPO}/manifests/v1"

    assert requests.get(url, timeout=TIMEOUT).status_code == 200
    assert requests.head(url, timeout=TIMEOUT).status_code == 503


def test_route_other_than_the_faults_is_untouched(seeded):
    seeded.inject("blob", status=503, times=None)

    assert manifest_statuses(seeded, 2) == [200, 200]
    assert get(seeded, f"/v2/{REPO}/tags/list").status_code == 200


def test_with_block_scopes_the_fault(seeded):
    with seeded.inject("manifest", status=503, times=None) as fault:
        assert manifest_statuses(seeded, 2) == [503, 503]

    assert manifest_statuses(seeded, 2) == [200, 200]
    assert fault.hits == 2
    assert list(seeded.faults) == []


def test_clear_faults(seeded):
    seeded.inject("manifest", status=503, times=None)
    seeded.inject("blob", status=503, times=None)

    seeded.clear_faults()

    assert manifest_statuses(seeded, 1) == [200]
    assert list(seeded.faults) == []


def test_an_exhausted_fault_lets_the_next_one_match(seeded):
    first = seeded.inject("manifest", status=503)
    second = seeded.inject("manifest", status=429)

    assert manifest_statuses(seeded, 3) == [503, 429, 200]
    assert (first.hits, second.hits) == (1, 1)
    assert [r.fault for r in seeded.requests] == [first.id, second.id, None]


def test_injected_answers_are_marked_in_the_journal(seeded):
    fault = seeded.inject("manifest", status=503, after=1)

    manifest_statuses(seeded, 3)

    assert [(r.status, r.error, r.fault) for r in seeded.requests] == [
        (200, None, None),
        (503, "UNAVAILABLE", fault.id),
        (200, None, None),
    ]


def probability_statuses(seed: int) -> List[int]:
    """A fresh registry, a 50% fault seeded with ``seed``, the same 16 requests."""
    registry = FakeRegistry(host="seeded.test")
    registry.push_image(REPO, "v1", layers=[b"one"])
    registry.inject("manifest", status=503, probability=0.5, seed=seed, times=None)
    with registry.mock_requests():
        return manifest_statuses(registry, 16)


def test_probability_with_a_seed_repeats():
    first, again, other = probability_statuses(7), probability_statuses(7), probability_statuses(8)

    assert first == again
    assert {200, 503} <= set(first)  # really a mix
    assert other != first


# --- the control API --------------------------------------------------------------------------------


def control(reg: FakeRegistry, method: str, path: str, **options: Any) -> requests.Response:
    return requests.request(method, f"{reg.url}/_fakeregistry/{path}", timeout=TIMEOUT, **options)


def test_control_api_adds_lists_and_removes_faults(reg):
    reg.push_image(REPO, "v1", layers=[b"one"])

    added = control(reg, "POST", "faults", json={"route": "manifest", "status": 503, "times": 2})

    assert added.status_code == 201
    fault = added.json()
    assert fault["id"]
    assert (fault["route"], fault["status"], fault["times"]) == ("manifest", 503, 2)
    (listed,) = control(reg, "GET", "faults").json()
    assert listed["id"] == fault["id"]
    assert manifest_statuses(reg, 1) == [503]
    (listed,) = control(reg, "GET", "faults").json()
    assert listed["hits"] == 1

    assert control(reg, "DELETE", f"faults/{fault['id']}").status_code == 204
    assert control(reg, "GET", "faults").json() == []
    assert manifest_statuses(reg, 1) == [200]
    missing = control(reg, "DELETE", f"faults/{fault['id']}")
    assert missing.status_code == 404
    assert control(reg, "DELETE", "faults/no-such-fault").status_code == 404


def test_control_api_fault_options_match_inject(reg):
    reg.push_image(REPO, "v1", layers=[b"one"])
    options = {"route": "manifest", "method": ["GET"], "repository": "team/*", "reference": "v1"}
    options.update(status=429, retry_after=0.5, times=None)

    fault = control(reg, "POST", "faults", json=options).json()

    responses = [get(reg, f"/v2/{REPO}/manifests/v1") for _ in range(2)]
    assert [r.status_code for r in responses] == [429, 429]
    assert responses[0].headers["Retry-After"] == "1"  # delay-seconds are whole: 0.5 rounds up
    assert get(reg, f"/v2/{REPO}/manifests/v2").status_code == 404  # another reference: not taken
    (listed,) = control(reg, "GET", "faults").json()
    assert (listed["id"], listed["hits"], listed["times"]) == (fault["id"], 2, None)
    assert [r.fault for r in reg.requests] == [fault["id"], fault["id"], None]


def test_control_api_delete_all_faults(reg):
    for status in (503, 429):
        assert control(reg, "POST", "faults", json={"route": "manifest", "status": status}).status_code == 201

    assert control(reg, "DELETE", "faults").status_code == 204

    assert control(reg, "GET", "faults").json() == []
    assert list(reg.faults) == []


def test_control_api_journal_leaves_out_control_calls(reg):
    reg.push_image(REPO, "v1", layers=[b"one"])
    control(reg, "POST", "faults", json={"route": "manifest", "status": 503})
    get(reg, f"/v2/{REPO}/manifests/v1")
    get(reg, f"/v2/{REPO}/manifests/v1")
    control(reg, "GET", "faults")

    journal = control(reg, "GET", "requests")

    assert journal.status_code == 200
    records = journal.json()
    assert [(r["method"], r["path"], r["status"]) for r in records] == [
        ("GET", f"/v2/{REPO}/manifests/v1", 503),
        ("GET", f"/v2/{REPO}/manifests/v1", 200),
    ]
    assert records[0]["route"] == "manifest"
    assert records[0]["error"] == "UNAVAILABLE"
    assert records[0]["fault"] == reg.requests[0].fault
    assert records[1]["fault"] is None


def test_control_api_reset_empties_the_registry(reg):
    reg.push_image(REPO, "v1", layers=[b"one"])
    reg.inject("manifest", status=503, times=None)
    get(reg, "/v2/")

    assert control(reg, "POST", "reset").status_code == 204

    assert reg.repositories() == []
    assert list(reg.faults) == []
    assert control(reg, "GET", "requests").json() == []
    assert get(reg, "/v2/_catalog").json() == {"repositories": []}


BAD_FAULTS = {
    "not-json": "not json",
    "a-list": "[1, 2]",
    "a-string": '"manifest"',
    "unknown-field": '{"route": "manifest", "colour": "red"}',
    "unknown-route": '{"route": "nope"}',
    "status-200": '{"route": "manifest", "status": 200}',
    "negative-times": '{"times": -1}',
    "status-not-a-number": '{"status": "abc"}',
    "redirect-on-manifests": '{"route": "manifest", "redirect": true}',
}


@pytest.mark.parametrize("body", BAD_FAULTS.values(), ids=BAD_FAULTS.keys())
def test_control_api_rejects_bad_faults_with_400(reg, body):
    response = control(reg, "POST", "faults", data=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert codes(response) == ["UNSUPPORTED"]
    assert response.json()["errors"][0]["message"]
    assert list(reg.faults) == []


# --- the command line -------------------------------------------------------------------------------


def serve_command(*faults: str) -> List[str]:
    command = [sys.executable, "-m", "fakeregistry", "serve", "--host", "127.0.0.1", "--port", "0"]
    for spec in faults:
        command += ["--fault", spec]
    return command


@pytest.fixture
def cli_server(tmp_path) -> Iterator[Any]:
    """``fakeregistry serve`` as a subprocess; yields a function that starts it and returns its URL."""
    processes: List[subprocess.Popen] = []

    def start(*faults: str) -> str:
        process = subprocess.Popen(
            serve_command(*faults), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        processes.append(process)
        ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
        assert ready, "fakeregistry serve printed nothing in time"
        line = process.stdout.readline()
        assert line.startswith("fakeregistry serving http://127.0.0.1:"), line
        return line.split()[-1]

    try:
        yield start
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            if process.stdout is not None:
                process.stdout.close()


def test_cli_fault_is_listed_and_fires_once(cli_server):
    url = cli_server("blob-upload-chunk:PATCH:416:times=1")

    (fault,) = requests.get(f"{url}/_fakeregistry/faults", timeout=TIMEOUT).json()
    assert (fault["route"], fault["method"], fault["status"], fault["times"]) == ("blob-upload-chunk", "PATCH", 416, 1)

    location = requests.post(f"{url}/v2/{REPO}/blobs/uploads/", timeout=TIMEOUT).headers["Location"]
    refused = patch(location, b"chunk", 0)
    assert refused.status_code == 416
    assert codes(refused) == ["RANGE_INVALID"]
    assert refused.headers["Range"] == "0-0"
    assert patch(location, b"chunk", 0).status_code == 202  # once only

    (fault,) = requests.get(f"{url}/_fakeregistry/faults", timeout=TIMEOUT).json()
    assert fault["hits"] == 1
    journal = requests.get(f"{url}/_fakeregistry/requests", timeout=TIMEOUT).json()
    assert [(r["method"], r["status"], r["fault"]) for r in journal] == [
        ("POST", 202, None),
        ("PATCH", 416, fault["id"]),
        ("PATCH", 202, None),
    ]


def test_cli_takes_several_faults(cli_server):
    url = cli_server("base:503", "catalog:GET:delay=0.1:times=none")

    faults = requests.get(f"{url}/_fakeregistry/faults", timeout=TIMEOUT).json()
    assert [(f["route"], f.get("status"), f.get("delay"), f["times"]) for f in faults] == [
        ("base", 503, None, 1),
        ("catalog", None, 0.1, None),
    ]
    assert requests.get(f"{url}/v2/", timeout=TIMEOUT).status_code == 503
    assert requests.get(f"{url}/v2/", timeout=TIMEOUT).status_code == 200


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope:PATCH:416", "unknown route 'nope'"),
        ("blob:GET:colour=red", "unknown fault option 'colour'"),
        ("blob:GET:200", "status must be a 4xx or 5xx"),
        ("blob:what", "cannot read 'what'"),
    ],
)
def test_cli_bad_fault_spec_exits_with_a_clear_message(spec, message, tmp_path):
    result = subprocess.run(
        serve_command(spec), cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )

    assert result.returncode == 2  # argparse's usage error
    assert "fakeregistry: error:" in result.stderr
    assert message in result.stderr
    assert result.stdout == ""  # it never started serving
