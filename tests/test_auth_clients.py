"""Authentication with real clients: python-dxf, oras-py, skopeo and the command line.

Each client logs in the way it would against a real registry, with Basic
credentials or the Docker token dance, and the refusals are checked the way a
client sees them: the status, the JSON error code and the ``WWW-Authenticate``
challenge, as the reference registry (distribution) answers them.

How each client is driven:

- python-dxf refuses to authenticate over plain HTTP (``DXFAuthInsecureError``,
  see ``test_dxf_will_not_authenticate_over_plain_http``) and always asks the
  token realm over https, so its tests run in-process, where ``fake_registry``
  serves ``https://registry.test`` (and ``auth.registry.test`` for a separate
  token host).
- oras-py and skopeo run against ``fake_registry_server`` on 127.0.0.1.
  skopeo runs in a sandbox (``skopeo_sandbox``) with an empty ``--authfile``, so
  only the credentials given on its command line are used.
- The CLI runs as a subprocess (``python -m fakeregistry serve``).

What the requests-based clients were answered is recorded by the ``answers``
fixture (a response hook on every ``requests`` session). skopeo is a separate
process: what it sent is in the journal, and the challenge a journaled request
got is read by sending that request again with the same credentials
(``answer_again``); the registry's answer depends only on them.
"""

from __future__ import annotations

import base64
import json
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Optional, Tuple

import oras.auth.utils
import oras.client
import oras.decorator
import pytest
import requests
from conftest import require_tool
from dxf import DXF
from dxf.exceptions import DXFAuthInsecureError, DXFUnauthorizedError
from skopeo_sandbox import SkopeoSandbox, make_sandbox

from fakeregistry import FakeRegistry, RequestRecord, serve
from helpers import sha256
from oci_layout import OCIImage, build_image, write_layout

USERS = {"alice": "secret", "bob": "hunter2"}
# alice owns alice/*; bob may only pull team/*. Each needs their own credentials for their side of a copy.
ACCESS = {"alice": {"alice/*": ["*"]}, "bob": {"team/*": ["pull"]}}
TOKEN = pytest.mark.fake_registry(auth="token", users=USERS, access=ACCESS)
BASIC = pytest.mark.fake_registry(auth="basic", users=USERS, access=ACCESS)
BOTH_MODES = pytest.mark.parametrize("mode", [pytest.param("token", marks=TOKEN), pytest.param("basic", marks=BASIC)])

HOST = "registry.test"  # python-dxf's tests run in-process, over https
HTTPS = f"https://{HOST}"
BASIC_CHALLENGE = 'Basic realm="fakeregistry"'
DATA = b"a blob pushed with credentials\n"
CLI_TIMEOUT = 15  # seconds; the CLI starts in well under one


# What requests-based clients were answered


@dataclass(frozen=True)
class Answer:
    method: str
    url: str
    status: int
    code: Optional[str]  # the first error code of the JSON body, if any
    message: Optional[str]
    challenge: Optional[str]  # WWW-Authenticate

    @property
    def refusal(self) -> Tuple[int, Optional[str], Optional[str]]:
        return self.status, self.code, self.challenge


def answer_of(response: requests.Response) -> Answer:
    code = message = None
    if response.status_code >= 400 and response.content:
        try:
            error = response.json()["errors"][0]
            code, message = error["code"], error["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            pass
    method = response.request.method or ""
    return Answer(method, response.url, response.status_code, code, message, response.headers.get("WWW-Authenticate"))


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> List[Answer]:
    """Every answer any ``requests`` session created during the test got (python-dxf, oras-py, requests)."""
    seen: List[Answer] = []

    def record(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        seen.append(answer_of(response))

    monkeypatch.setattr(requests.sessions, "default_hooks", lambda: {"response": [record]})
    return seen


def unauthorized(answers: List[Answer]) -> List[Answer]:
    return [answer for answer in answers if answer.status == 401]


def challenge(realm: str, service: str, scope: Optional[str] = None, error: Optional[str] = None) -> str:
    """A Bearer challenge, spelled as distribution spells it."""
    parts = [f'realm="{realm}"', f'service="{service}"']
    parts += [f'scope="{scope}"'] if scope else []
    parts += [f'error="{error}"'] if error else []
    return "Bearer " + ",".join(parts)


def parse_challenge(header: str) -> Tuple[str, Dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    return scheme, dict(re.findall(r'(\w+)="([^"]*)"', rest))


def authorization(record: RequestRecord) -> str:
    return record.headers.get("Authorization", "")


def claims_of(token: str) -> Dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def answer_again(registry: FakeRegistry, record: RequestRecord) -> Answer:
    """Send a journaled (refused) request again with the same credentials: how the registry answered it."""
    assert record.status >= 400, record.describe()
    headers = {"Authorization": authorization(record)} if authorization(record) else {}
    method = "GET" if record.method == "HEAD" else record.method  # the same access, and a body to read
    url = f"{registry.url}{record.path}" + (f"?{record.query}" if record.query else "")
    return answer_of(requests.request(method, url, headers=headers, timeout=10))


def tokens(registry: FakeRegistry) -> List[Tuple[Optional[str], List[str], List[str]]]:
    """(user, scopes asked, scopes granted) of each token request, from the journal."""
    return [(record.user, record.scopes, record.granted) for record in registry.requests.filter(route="token")]


def journal(registry: FakeRegistry) -> str:
    return "\n".join(f"  {r.describe()} {authorization(r)[:6]} user={r.user}" for r in registry.requests)


# python-dxf, in-process over https


class Login:
    """A python-dxf ``auth`` callback: log in as ``username`` with the 401 python-dxf hands over."""

    def __init__(self, username: Optional[str], password: Optional[str]) -> None:
        self.username, self.password = username, password

    def __call__(self, dxf: DXF, response: requests.Response) -> None:
        # Reads the challenge: Basic sets the credentials, Bearer asks the realm for the scope named.
        dxf.authenticate(self.username, self.password, response=response)


def dxf_client(repository: str, login: Optional[Login] = None) -> DXF:
    return DXF(HOST, repository, auth=login, timeout=10)


@BASIC
def test_dxf_will_not_authenticate_over_plain_http(fake_registry):
    # Why python-dxf's tests use https: with insecure=True it refuses to send credentials at all.
    with DXF(HOST, "alice/blobs", auth=Login("alice", "secret"), insecure=True, timeout=10) as dxf:
        with pytest.raises(DXFAuthInsecureError):
            dxf.blob_size(sha256(DATA))


@TOKEN
def test_dxf_token_auth_push_pull_and_alias(fake_registry, answers):
    with dxf_client("alice/blobs", Login("alice", "secret")) as dxf:
        digest = dxf.push_blob(data=iter([DATA]), digest=sha256(DATA))
        assert b"".join(dxf.pull_blob(digest)) == DATA
        manifest = dxf.set_alias("v1", digest)
        assert dxf.get_alias("v1") == [digest]

    assert fake_registry.get_manifest("alice/blobs", "v1") == manifest.encode()
    # Each challenge named the scope the request needed, and the token server granted just that.
    realm = f"{HTTPS}/token"
    assert [answer.challenge for answer in unauthorized(answers)] == [
        challenge(realm, HOST, "repository:alice/blobs:pull"),  # HEAD, without a token: does the blob exist?
        # POST, with the pull token: start the upload
        challenge(realm, HOST, "repository:alice/blobs:pull,push", "insufficient_scope"),
    ]
    assert tokens(fake_registry) == [
        ("alice", ["repository:alice/blobs:pull"], ["repository:alice/blobs:pull"]),
        ("alice", ["repository:alice/blobs:pull,push"], ["repository:alice/blobs:pull,push"]),
    ]
    # Basic credentials went to the token endpoint only; the registry saw Bearer tokens, all alice's.
    for record in fake_registry.requests:
        scheme = "Basic" if record.route == "token" else "Bearer"
        assert authorization(record).startswith(scheme) or record.status == 401, journal(fake_registry)
        assert record.user == "alice" or record.status == 401, journal(fake_registry)


@BASIC
def test_dxf_basic_auth_push_pull_and_alias(fake_registry, answers):
    with dxf_client("alice/blobs", Login("alice", "secret")) as dxf:
        digest = dxf.push_blob(data=iter([DATA]), digest=sha256(DATA))
        assert b"".join(dxf.pull_blob(digest)) == DATA
        dxf.set_alias("v1", digest)
        assert dxf.get_alias("v1") == [digest]

    # One challenge; python-dxf then sends the credentials with every request.
    assert [answer.refusal for answer in unauthorized(answers)] == [(401, None, BASIC_CHALLENGE)]  # a HEAD: no body
    fake_registry.requests.assert_not_called(route="token")
    assert all(record.user == "alice" for record in fake_registry.requests[1:]), journal(fake_registry)


@BOTH_MODES
def test_dxf_wrong_password(fake_registry, answers, mode):
    with dxf_client("alice/blobs", Login("alice", "wrong")) as dxf:
        with pytest.raises(DXFUnauthorizedError):
            dxf.pull_blob(sha256(DATA))

    if mode == "token":
        first, token_answer = unauthorized(answers)
        assert first.refusal == (401, "UNAUTHORIZED", challenge(f"{HTTPS}/token", HOST, "repository:alice/blobs:pull"))
        # The token endpoint refuses the login; no token, so the registry never sees a Bearer.
        assert (token_answer.url.split("?")[0], token_answer.status) == (f"{HTTPS}/token", 401)
        assert (token_answer.code, token_answer.message) == ("UNAUTHORIZED", "wrong username or password")
        assert tokens(fake_registry) == [(None, ["repository:alice/blobs:pull"], [])]
        assert not any(authorization(record).startswith("Bearer") for record in fake_registry.requests)
    else:
        first, second = unauthorized(answers)
        assert first.refusal == second.refusal == (401, "UNAUTHORIZED", BASIC_CHALLENGE)
        assert second.message == "wrong username or password"


@BOTH_MODES
def test_dxf_without_credentials(fake_registry, answers, mode):
    with dxf_client("alice/blobs") as dxf:  # no auth callback
        with pytest.raises(DXFUnauthorizedError):
            dxf.pull_blob(sha256(DATA))

    expected = challenge(f"{HTTPS}/token", HOST, "repository:alice/blobs:pull") if mode == "token" else BASIC_CHALLENGE
    assert [answer.refusal for answer in answers] == [(401, "UNAUTHORIZED", expected)]


@TOKEN
def test_dxf_anonymous_token_grants_nothing_private(fake_registry, answers):
    with dxf_client("alice/blobs", Login(None, None)) as dxf:  # python-dxf asks for an anonymous token
        with pytest.raises(DXFUnauthorizedError):
            dxf.pull_blob(sha256(DATA))

    assert tokens(fake_registry) == [(None, ["repository:alice/blobs:pull"], [])]
    scope = "repository:alice/blobs:pull"
    assert unauthorized(answers)[-1].refusal == (
        401,
        "UNAUTHORIZED",
        challenge(f"{HTTPS}/token", HOST, scope, "insufficient_scope"),
    )


@TOKEN
def test_dxf_token_for_one_repository_used_on_another(fake_registry, answers):
    with dxf_client("alice/a", Login("alice", "secret")) as a:
        digest = a.push_blob(data=iter([DATA]), digest=sha256(DATA))
        token_for_a = a.token
    fake_registry.put_blob("alice/b", DATA)

    with dxf_client("alice/b") as b:  # no callback: it cannot get another token
        b.token = token_for_a
        with pytest.raises(DXFUnauthorizedError):
            b.pull_blob(digest)
    scope = "repository:alice/b:pull"
    assert unauthorized(answers)[-1].refusal == (
        401,
        "UNAUTHORIZED",
        challenge(f"{HTTPS}/token", HOST, scope, "insufficient_scope"),
    )

    # With its callback, python-dxf answers the insufficient_scope challenge with a token for B, and carries on.
    with dxf_client("alice/b", Login("alice", "secret")) as b:
        b.token = token_for_a
        assert b"".join(b.pull_blob(digest)) == DATA
    assert tokens(fake_registry)[-1] == ("alice", [scope], [scope])


@TOKEN
def test_dxf_pull_only_user_cannot_push(fake_registry, answers):
    with dxf_client("team/app", Login("bob", "hunter2")) as dxf:
        with pytest.raises(DXFUnauthorizedError):
            dxf.push_blob(data=iter([DATA]), digest=sha256(DATA))

    # bob asked for pull,push and was granted pull; the upload was refused, even after asking again.
    pull, push = "repository:team/app:pull", "repository:team/app:pull,push"
    assert tokens(fake_registry) == [("bob", [pull], [pull]), ("bob", [push], [pull])]
    posts = [answer for answer in answers if answer.method == "POST"]
    expected = challenge(f"{HTTPS}/token", HOST, "repository:team/app:pull,push", "insufficient_scope")
    assert [answer.refusal for answer in posts] == [(401, "UNAUTHORIZED", expected)] * 2
    assert fake_registry.repositories() == []


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_dxf_expired_token_reauthenticates_and_continues(answers):
    """python-dxf answers the invalid_token challenge by logging in again, then repeats the request."""
    clock = Clock()
    registry = FakeRegistry(auth="token", users=USERS, access=ACCESS, clock=clock)
    with registry.mock_requests():
        with dxf_client("alice/blobs", Login("alice", "secret")) as dxf:
            digest = dxf.push_blob(data=iter([DATA]), digest=sha256(DATA))
            expired = dxf.token
            clock.now += 3600  # long past expires_in (300 s), and any leeway

            assert b"".join(dxf.pull_blob(digest)) == DATA
            assert dxf.token != expired

    get_refused, get_ok = [answer for answer in answers if answer.method == "GET" and "/v2/" in answer.url]
    scope = "repository:alice/blobs:pull"
    assert get_refused.refusal == (401, "UNAUTHORIZED", challenge(f"{HTTPS}/token", HOST, scope, "invalid_token"))
    assert get_refused.message == "the token has expired"
    assert get_ok.status == 200
    assert tokens(registry)[-1] == ("alice", [scope], [scope])  # the new token
    registry.check_internal_errors()


@TOKEN
@pytest.mark.parametrize("tamper", ["signature", "claims"])
def test_dxf_tampered_token(fake_registry, answers, tamper):
    with dxf_client("alice/blobs", Login("alice", "secret")) as dxf:
        digest = dxf.push_blob(data=iter([DATA]), digest=sha256(DATA))
        header, payload, signature = dxf.token.split(".")
    if tamper == "signature":
        forged = f"{header}.{payload}.{signature[::-1]}"
    else:  # the same signature over claims widened to another repository
        claims = claims_of(dxf.token)
        claims["access"].append({"type": "repository", "name": "alice/other", "actions": ["pull", "push"]})
        encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        forged = f"{header}.{encoded}.{signature}"

    with dxf_client("alice/blobs") as client:
        client.token = forged
        with pytest.raises(DXFUnauthorizedError):
            client.pull_blob(digest)

    scope = "repository:alice/blobs:pull"
    assert answers[-1].refusal == (401, "UNAUTHORIZED", challenge(f"{HTTPS}/token", HOST, scope, "invalid_token"))
    assert "signature" in (answers[-1].message or "")


@pytest.mark.fake_registry(auth="token", users=USERS, access=ACCESS, separate_token_host=True)
def test_dxf_separate_token_host(fake_registry, answers):
    with dxf_client("alice/blobs", Login("alice", "secret")) as dxf:
        digest = dxf.push_blob(data=iter([DATA]), digest=sha256(DATA))
        assert b"".join(dxf.pull_blob(digest)) == DATA

    assert unauthorized(answers)[0].challenge == challenge(
        f"https://auth.{HOST}/token", HOST, "repository:alice/blobs:pull"
    )
    assert_credentials_stay_on_their_host(fake_registry, token_host=f"auth.{HOST}", registry_host=HOST)


def assert_credentials_stay_on_their_host(registry: FakeRegistry, token_host: str, registry_host: str) -> None:
    """The password only ever went to the token host, the registry's Bearer tokens only to the registry."""
    token_requests = registry.requests.filter(route="token")
    registry_requests = [record for record in registry.requests if record.route != "token"]
    assert token_requests and registry_requests, journal(registry)
    assert {record.headers["Host"] for record in token_requests} == {token_host}
    assert {record.headers["Host"] for record in registry_requests} == {registry_host}
    assert not any(authorization(record).startswith("Bearer") for record in token_requests), journal(registry)
    assert not any(authorization(record).startswith("Basic") for record in registry_requests), journal(registry)


@pytest.mark.fake_registry(auth="token", users=USERS, access=ACCESS, separate_token_host=True)
def test_requests_token_dance_with_a_separate_token_host_on_a_socket(fake_registry_server):
    """The realm is on localhost:<port>, the registry on 127.0.0.1:<port>: the same server, two hosts."""
    registry = fake_registry_server
    registry.push_image("alice/app", "v1", layers=[DATA])
    port = registry.host.rpartition(":")[2]
    manifest_url = f"{registry.url}/v2/alice/app/manifests/v1"

    first = answer_of(requests.get(manifest_url, timeout=10))
    scope = "repository:alice/app:pull"
    assert first.refusal == (401, "UNAUTHORIZED", challenge(f"http://localhost:{port}/token", registry.host, scope))
    _, params = parse_challenge(first.challenge or "")
    realm = params.pop("realm")
    with requests.Session() as token_host:  # as a client would keep them: one session per host
        document = token_host.get(realm, params=params, auth=("alice", "secret"), timeout=10).json()
    with requests.Session() as registry_host:
        registry_host.headers["Authorization"] = f"Bearer {document['token']}"
        assert registry_host.get(manifest_url, timeout=10).status_code == 200

    assert_credentials_stay_on_their_host(registry, token_host=f"localhost:{port}", registry_host=registry.host)


# oras-py, over a socket


@pytest.fixture
def oras_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # oras retries a failed request five times, sleeping 2 + 3**n seconds in between: retry at once.
    monkeypatch.setattr(oras.decorator, "time", SimpleNamespace(sleep=lambda seconds: None))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # oras reads ~/.docker/config.json for credentials: none of the machine's.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # push refuses files outside the working directory
    (tmp_path / "artifact.txt").write_bytes(DATA)
    return tmp_path


def oras_login(registry: FakeRegistry, backend: str, username: str, password: str) -> oras.client.OrasClient:
    client = oras.client.OrasClient(hostname=registry.host, insecure=True, auth_backend=backend)
    # What client.login() does, without writing a Docker config file.
    client.auth.set_basic_auth(username, password)
    return client


def oras_push(client: oras.client.OrasClient, registry: FakeRegistry, repository: str) -> requests.Response:
    return client.push(f"{registry.host}/{repository}:v1", files=["artifact.txt"], quiet=True)


def oras_pull(client: oras.client.OrasClient, registry: FakeRegistry, repository: str, outdir: Path) -> bytes:
    (path,) = client.pull(f"{registry.host}/{repository}:v1", outdir=str(outdir))
    return Path(path).read_bytes()


@BASIC
def test_oras_basic_auth_push_and_pull(fake_registry_server, oras_workdir):
    registry = fake_registry_server
    client = oras_login(registry, "basic", "alice", "secret")

    assert oras_push(client, registry, "alice/artifact").status_code == 201
    assert oras_pull(client, registry, "alice/artifact", oras_workdir / "pulled") == DATA

    registry.requests.assert_not_called(route="token")
    for record in registry.requests:
        assert record.status == 401 or (record.user == "alice" and authorization(record).startswith("Basic "))


def prime_push_token(client: oras.client.OrasClient, registry: FakeRegistry, repository: str) -> None:
    """Have oras's TokenAuth fetch a pull,push token before push() starts (oras-py#187, see below)."""
    challenge = {
        "realm": f"{registry.url}/token",
        "service": registry.host,
        "scope": f"repository:{repository}:pull,push",
    }
    client.auth.token = client.auth.request_token(oras.auth.utils.authHeader(challenge))


@TOKEN
def test_oras_token_auth_push_and_pull(fake_registry_server, oras_workdir):
    registry = fake_registry_server
    pusher = oras_login(registry, "token", "alice", "secret")
    prime_push_token(pusher, registry, "alice/artifact")

    assert oras_push(pusher, registry, "alice/artifact").status_code == 201
    # A fresh client: oras answers the manifest's challenge with a pull token, and uses it for the blobs.
    puller = oras_login(registry, "token", "alice", "secret")
    assert oras_pull(puller, registry, "alice/artifact", oras_workdir / "pulled") == DATA

    push, pull = "repository:alice/artifact:pull,push", "repository:alice/artifact:pull"
    assert tokens(registry) == [("alice", [push], [push]), ("alice", [pull], [pull])]
    assert not any(authorization(r).startswith("Basic") for r in registry.requests if r.route != "token")


@TOKEN
def test_oras_token_push_reuses_its_pull_token_and_is_refused(fake_registry_server, oras_workdir, answers):
    """oras-py 0.2 keeps the first token it gets: push() starts with a HEAD, so a pull token, which the
    upload's POST cannot use (oras-project/oras-py#187, open). A registry that grants the scope asked
    refuses it, as this one does. If this test fails because the push worked, oras-py fixed the bug:
    drop ``prime_push_token`` above."""
    registry = fake_registry_server
    client = oras_login(registry, "token", "alice", "secret")

    with pytest.raises(ValueError, match="Issue retrieving session url"):
        oras_push(client, registry, "alice/artifact")

    pull = "repository:alice/artifact:pull"
    assert tokens(registry) == [("alice", [pull], [pull])]
    posts = [answer for answer in answers if answer.method == "POST"]
    expected = challenge(f"{registry.url}/token", registry.host, "repository:alice/artifact:pull,push")
    assert [answer.refusal for answer in posts] == [(401, "UNAUTHORIZED", f'{expected},error="insufficient_scope"')] * 2


@BOTH_MODES
def test_oras_wrong_password(fake_registry_server, oras_workdir, answers, mode):
    registry = fake_registry_server
    registry.push_image("alice/artifact", "v1", layers=[DATA])
    client = oras_login(registry, mode, "alice", "wrong")

    with pytest.raises(ValueError):
        oras_pull(client, registry, "alice/artifact", oras_workdir / "pulled")

    manifest_answers = [answer for answer in answers if "/manifests/" in answer.url]
    scope = "repository:alice/artifact:pull"
    expected = challenge(f"{registry.url}/token", registry.host, scope) if mode == "token" else BASIC_CHALLENGE
    assert {answer.refusal for answer in manifest_answers} == {(401, "UNAUTHORIZED", expected)}
    if mode == "token":
        token_answers = [answer for answer in answers if answer.url.startswith(f"{registry.url}/token")]
        assert token_answers and {(a.status, a.code) for a in token_answers} == {(401, "UNAUTHORIZED")}
        assert not any(authorization(record).startswith("Bearer") for record in registry.requests)
    else:
        assert manifest_answers[-1].message == "wrong username or password"


# skopeo, over a socket


@pytest.fixture
def skopeo(tmp_path: Path) -> SkopeoSandbox:
    return make_sandbox(tmp_path / "skopeo", require_tool("skopeo"))


@pytest.fixture(scope="module")
def image() -> OCIImage:
    return build_image([{"etc/motd": b"hello from an authenticated registry\n"}, {"bin/tool": b"#!/bin/sh\n"}])


@pytest.fixture
def layout(tmp_path: Path, image: OCIImage) -> Path:
    return write_layout(tmp_path / "layout", image, "v1")


def skopeo_copy(
    skopeo: SkopeoSandbox, source: str, destination: str, *options: str
) -> "subprocess.CompletedProcess[bytes]":
    certs = skopeo.certs
    return skopeo.run(
        "copy",
        "--quiet",
        "--retry-times=0",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"--src-cert-dir={certs}",
        f"--dest-cert-dir={certs}",
        f"--authfile={skopeo.authfile}",  # empty: only the credentials given here count
        *options,
        source,
        destination,
    )


def skopeo_inspect(skopeo: SkopeoSandbox, reference: str, *options: str) -> "subprocess.CompletedProcess[bytes]":
    return skopeo.run(
        "inspect",
        "--retry-times=0",
        "--tls-verify=false",
        f"--cert-dir={skopeo.certs}",
        f"--authfile={skopeo.authfile}",
        *options,
        reference,
    )


def succeeded(result: "subprocess.CompletedProcess[bytes]", registry: FakeRegistry) -> bytes:
    if result.returncode != 0:
        pytest.fail(
            f"skopeo exited {result.returncode}:\n{result.stderr.decode(errors='replace')}\n"
            f"HTTP exchanges:\n{journal(registry)}",
            pytrace=False,
        )
    return result.stdout


def failed(result: "subprocess.CompletedProcess[bytes]", registry: FakeRegistry) -> str:
    assert result.returncode != 0, f"skopeo should have failed; HTTP exchanges:\n{journal(registry)}"
    return result.stderr.decode(errors="replace")


def seed(registry: FakeRegistry, repository: str, image: OCIImage) -> None:
    for blob in image.blobs:
        registry.put_blob(repository, blob.data)
    registry.put_manifest(repository, "v1", image.manifest.data)


@BOTH_MODES
def test_skopeo_push_and_inspect_with_creds(fake_registry_server, skopeo, layout, image, mode):
    registry = fake_registry_server
    reference = f"docker://{registry.host}/alice/app:v1"

    succeeded(skopeo_copy(skopeo, f"oci:{layout}:v1", reference, "--dest-creds=alice:secret"), registry)
    info = json.loads(succeeded(skopeo_inspect(skopeo, reference, "--creds=alice:secret"), registry))

    assert info["Digest"] == image.digest
    assert registry.get_manifest("alice/app", "v1") == image.manifest.data
    for record in registry.requests:
        assert record.status == 401 or record.user == "alice", journal(registry)
    if mode == "token":
        assert {user for user, _, _ in tokens(registry)} == {"alice"}
        assert all(asked == granted for _, asked, granted in tokens(registry)), tokens(registry)
    else:
        registry.requests.assert_not_called(route="token")


@BOTH_MODES
def test_skopeo_copy_with_source_and_destination_creds(fake_registry_server, skopeo, image, mode):
    """bob may only pull team/app, alice may only use alice/*: the copy needs each one's credentials."""
    registry = fake_registry_server
    seed(registry, "team/app", image)
    source, destination = f"docker://{registry.host}/team/app:v1", f"docker://{registry.host}/alice/app:v1"

    succeeded(
        skopeo_copy(skopeo, source, destination, "--src-creds=bob:hunter2", "--dest-creds=alice:secret"), registry
    )

    assert registry.get_manifest("alice/app", "v1") == image.manifest.data
    owner = {"team/app": "bob", "alice/app": "alice"}
    for record in registry.requests:
        if record.repository is not None and record.status != 401:
            assert record.user == owner[record.repository], journal(registry)
    if mode == "token":
        for user, asked, granted in tokens(registry):
            prefix = "repository:team/app:" if user == "bob" else "repository:alice/app:"
            assert asked == granted and all(scope.startswith(prefix) for scope in asked), tokens(registry)


@BOTH_MODES
def test_skopeo_wrong_password(fake_registry_server, skopeo, image, mode):
    registry = fake_registry_server
    seed(registry, "alice/app", image)

    stderr = failed(skopeo_inspect(skopeo, f"docker://{registry.host}/alice/app:v1", "--creds=alice:wrong"), registry)

    assert "unauthorized" in stderr
    if mode == "token":
        assert "invalid username/password" in stderr  # what containers/image makes of the token endpoint's 401
        (token_request,) = registry.requests.filter(route="token")
        assert (token_request.status, token_request.user) == (401, None)
        again = answer_again(registry, token_request)
        assert (again.status, again.code, again.message) == (401, "UNAUTHORIZED", "wrong username or password")
        assert not any(authorization(record).startswith("Bearer") for record in registry.requests)
    else:
        (refusal,) = registry.requests.filter(route="manifest")
        assert authorization(refusal).startswith("Basic ")
        again = answer_again(registry, refusal)
        assert again.refusal == (401, "UNAUTHORIZED", BASIC_CHALLENGE)
        assert again.message == "wrong username or password"


@TOKEN
def test_skopeo_without_credentials_gets_an_anonymous_token_that_grants_nothing(fake_registry_server, skopeo, image):
    registry = fake_registry_server
    seed(registry, "alice/app", image)

    stderr = failed(skopeo_inspect(skopeo, f"docker://{registry.host}/alice/app:v1", "--no-creds"), registry)

    # containers/image reports an insufficient_scope challenge as distribution's DENIED
    assert "requested access to the resource is denied" in stderr
    scope = "repository:alice/app:pull"
    assert {(user, tuple(granted)) for user, _, granted in tokens(registry)} == {(None, ())}
    refusal = registry.requests.filter(route="manifest")[-1]
    assert authorization(refusal).startswith("Bearer ")
    assert answer_again(registry, refusal).refusal == (
        401,
        "UNAUTHORIZED",
        challenge(f"{registry.url}/token", registry.host, scope, "insufficient_scope"),
    )


@TOKEN
def test_skopeo_pull_only_user_cannot_push(fake_registry_server, skopeo, layout):
    registry = fake_registry_server

    stderr = failed(
        skopeo_copy(skopeo, f"oci:{layout}:v1", f"docker://{registry.host}/team/app:v1", "--dest-creds=bob:hunter2"),
        registry,
    )

    assert "requested access to the resource is denied" in stderr
    assert "the token does not grant repository:team/app:pull,push" in stderr
    assert ("bob", ["repository:team/app:pull,push"], ["repository:team/app:pull"]) in tokens(registry)
    posts = registry.requests.filter(route="blob-upload", method="POST")
    assert posts and {(record.status, record.error) for record in posts} == {(401, "UNAUTHORIZED")}
    for post in posts:  # each carried a token of bob's, which grants pull only
        access = claims_of(authorization(post).split(" ", 1)[1])["access"]
        assert {(a["name"], tuple(a["actions"])) for a in access} == {("team/app", ("pull",))}
    expected = challenge(f"{registry.url}/token", registry.host, "repository:team/app:pull,push", "insufficient_scope")
    assert answer_again(registry, posts[0]).refusal == (401, "UNAUTHORIZED", expected)
    assert registry.repositories() == []


@BASIC
def test_skopeo_pull_only_user_cannot_push_basic(fake_registry_server, skopeo, layout):
    registry = fake_registry_server

    stderr = failed(
        skopeo_copy(skopeo, f"oci:{layout}:v1", f"docker://{registry.host}/team/app:v1", "--dest-creds=bob:hunter2"),
        registry,
    )

    assert "denied: bob may not pull,push team/app" in stderr
    posts = registry.requests.filter(route="blob-upload", method="POST")
    assert posts and {(record.status, record.error) for record in posts} == {(403, "DENIED")}
    # Authenticated, but not allowed: 403 without a challenge (a challenge would invite logging in again).
    assert answer_again(registry, posts[0]).refusal == (403, "DENIED", None)
    assert registry.repositories() == []


@pytest.mark.fake_registry(auth="token", users=USERS, access=ACCESS, separate_token_host=True)
def test_skopeo_separate_token_host(fake_registry_server, skopeo, layout, image):
    registry = fake_registry_server
    reference = f"docker://{registry.host}/alice/app:v1"

    succeeded(skopeo_copy(skopeo, f"oci:{layout}:v1", reference, "--dest-creds=alice:secret"), registry)
    info = json.loads(succeeded(skopeo_inspect(skopeo, reference, "--creds=alice:secret"), registry))

    assert info["Digest"] == image.digest
    port = registry.host.rpartition(":")[2]
    assert_credentials_stay_on_their_host(registry, token_host=f"localhost:{port}", registry_host=registry.host)


@pytest.mark.fake_registry(auth="token", users=USERS, access=ACCESS, anonymous_pull=["team/*"])
def test_skopeo_anonymous_pull_with_token_auth(fake_registry_server, skopeo, image):
    registry = fake_registry_server
    seed(registry, "team/app", image)

    info = json.loads(
        succeeded(skopeo_inspect(skopeo, f"docker://{registry.host}/team/app:v1", "--no-creds"), registry)
    )

    assert info["Digest"] == image.digest
    assert {user for user, _, _ in tokens(registry)} == {None}
    assert not any(authorization(record).startswith("Basic") for record in registry.requests)


@pytest.mark.fake_registry(auth="basic", users=USERS, access=ACCESS, anonymous_pull=["team/*"])
def test_skopeo_anonymous_pull_with_basic_auth(fake_registry_server, skopeo, image):
    registry = fake_registry_server
    seed(registry, "team/app", image)

    # /v2/ answers anonymous requests with a Basic challenge, so containers/image sends "Basic Og==" (":",
    # no credentials) with every request: the registry must take that for anonymous.
    result = skopeo_inspect(skopeo, f"docker://{registry.host}/team/app:v1", "--no-creds")

    assert json.loads(succeeded(result, registry))["Digest"] == image.digest


class UploadClock:
    """Real time, but 30 s later once the first layer upload has started: as if the upload took 30 s."""

    def __init__(self) -> None:
        self.registry: Optional[FakeRegistry] = None

    def __call__(self) -> float:
        started = self.registry is not None and self.registry.requests.filter(route="blob-upload", status=202)
        return time.time() + (30 if started else 0)


def test_skopeo_short_lived_token_is_accepted_for_its_minimum_lifetime(skopeo, layout):
    clock = UploadClock()
    registry = FakeRegistry(auth="token", users=USERS, access=ACCESS, token_expires_in=5, clock=clock)
    clock.registry = registry
    with serve(registry) as server:
        result = skopeo_copy(
            skopeo, f"oci:{layout}:v1", f"docker://{server.host}/alice/app:v1", "--dest-creds=alice:secret"
        )
    registry.check_internal_errors()
    succeeded(result, registry)


# the command line, as a subprocess


@dataclass
class Served:
    process: "subprocess.Popen[str]"
    url: str

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    def stop(self) -> Tuple[int, str]:
        """SIGTERM, as a service manager would stop it: the exit status and stderr."""
        self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=CLI_TIMEOUT)
        return self.process.returncode, stderr


@pytest.fixture
def cli() -> Iterator[Any]:
    """Start ``python -m fakeregistry serve --port 0 OPTIONS...``; the URL is read from its first line."""
    started: List["subprocess.Popen[str]"] = []

    def start(*options: str) -> Served:
        command = [sys.executable, "-m", "fakeregistry", "serve", "--port", "0", *options]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(CLI_TIMEOUT)
        line = process.stdout.readline() if ready else ""
        if not line.startswith("fakeregistry serving http://127.0.0.1:"):
            process.kill()
            _, stderr = process.communicate(timeout=CLI_TIMEOUT)
            pytest.fail(f"{' '.join(command)} printed {line!r}; stderr:\n{stderr}")
        return Served(process, line.split()[-1])

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=CLI_TIMEOUT)


def token_for(served: Served, header: str, auth: Optional[Tuple[str, str]]) -> Dict[str, Any]:
    """Answer a Bearer challenge as a client does: ask its realm for its service and scope."""
    scheme, params = parse_challenge(header)
    assert scheme == "Bearer", header
    realm = params.pop("realm")
    params.pop("error", None)
    response = requests.get(realm, params=params, auth=auth, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_cli_token_auth_refuses_a_push_with_insufficient_scope(cli):
    served = cli("--auth", "token", "--user", "alice:secret", "--access", "alice:team/*=pull")
    upload = f"{served.url}/v2/team/app/blobs/uploads/"

    first = answer_of(requests.post(upload, timeout=10))
    asked = challenge(f"{served.url}/token", served.host, "repository:team/app:pull,push")
    assert first.refusal == (401, "UNAUTHORIZED", asked)
    document = token_for(served, asked, ("alice", "secret"))
    assert document["scope"] == "repository:team/app:pull"  # pull only, as --access says
    bearer = {"Authorization": f"Bearer {document['token']}"}

    assert answer_of(requests.post(upload, headers=bearer, timeout=10)).refusal == (
        401,
        "UNAUTHORIZED",
        f'{asked},error="insufficient_scope"',
    )
    # The same token may pull: the tag list is answered (an empty registry: NAME_UNKNOWN), not refused.
    listing = answer_of(requests.get(f"{served.url}/v2/team/app/tags/list", headers=bearer, timeout=10))
    assert (listing.status, listing.code) == (404, "NAME_UNKNOWN")

    records = requests.get(f"{served.url}/_fakeregistry/requests", timeout=10).json()
    (token_record,) = [record for record in records if record["route"] == "token"]
    assert (token_record["user"], token_record["scopes"], token_record["granted"]) == (
        "alice",
        ["repository:team/app:pull,push"],
        ["repository:team/app:pull"],
    )
    status, stderr = served.stop()
    assert status == 0, stderr
    assert "fakeregistry stopped" in stderr


def test_cli_anonymous_pull(cli):
    served = cli("--auth", "token", "--user", "alice:secret", "--anonymous-pull")
    blob_url = f"{served.url}/v2/team/app/blobs/{sha256(DATA)}"

    # alice pushes a blob in one request...
    upload = f"{served.url}/v2/team/app/blobs/uploads/?digest={sha256(DATA)}"
    header = answer_of(requests.post(upload, data=DATA, timeout=10)).challenge or ""
    alice = token_for(served, header, ("alice", "secret"))
    response = requests.post(upload, data=DATA, headers={"Authorization": f"Bearer {alice['token']}"}, timeout=10)
    assert response.status_code == 201, response.text

    # ...and anyone may pull it, with an anonymous token; without one, the challenge.
    unauthenticated = answer_of(requests.get(blob_url, timeout=10))
    pull = "repository:team/app:pull"
    assert unauthenticated.refusal == (401, "UNAUTHORIZED", challenge(f"{served.url}/token", served.host, pull))
    anonymous = token_for(served, unauthenticated.challenge or "", None)
    assert anonymous["scope"] == pull
    response = requests.get(blob_url, headers={"Authorization": f"Bearer {anonymous['token']}"}, timeout=10)
    assert (response.status_code, response.content) == (200, DATA)
    # An anonymous token asked for a push is granted the pull only.
    push = token_for(served, answer_of(requests.post(upload, data=DATA, timeout=10)).challenge or "", None)
    assert push["scope"] == pull
    refusal = answer_of(
        requests.post(upload, data=DATA, headers={"Authorization": f"Bearer {push['token']}"}, timeout=10)
    )
    assert (refusal.status, refusal.code) == (401, "UNAUTHORIZED")
    assert (refusal.challenge or "").endswith('error="insufficient_scope"')

    status, stderr = served.stop()
    assert status == 0, stderr
