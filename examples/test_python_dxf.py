"""Testing code that uses python-dxf, with the ``fake_registry`` fixture.

python-dxf talks to registries through ``requests``, so ``fake_registry``
answers it in-process: no server, no socket, no Docker. Point DXF at the
fixture's host (``registry.test``) with ``insecure=True`` (plain http).

python-dxf stores "blobs" and names sets of them with "aliases" (a Docker
schema 2 manifest under a tag).
"""

import hashlib

import pytest
from dxf import DXF

REPO = "team/blobs"


@pytest.fixture
def dxf(fake_registry):
    # Used as a context manager, DXF keeps one requests.Session for all its calls.
    with DXF(fake_registry.host, REPO, insecure=True, timeout=10) as client:
        yield client


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_push_alias_and_pull_back(dxf, fake_registry, tmp_path):
    config = tmp_path / "config.json"
    config.write_bytes(b'{"kind": "example"}')
    data = tmp_path / "data.bin"
    data.write_bytes(b"some data\n" * 1000)

    # push_blob uploads a file and returns its digest; set_alias tags the set.
    digests = [dxf.push_blob(str(config)), dxf.push_blob(str(data))]
    dxf.set_alias("v1", *digests)

    # Pull back through python-dxf...
    assert dxf.list_aliases() == ["v1"]
    assert dxf.get_alias("v1") == digests
    assert b"".join(dxf.pull_blob(digests[1])) == data.read_bytes()

    # ...and check what the registry holds with its Python API, bypassing HTTP.
    assert fake_registry.repositories() == [REPO]
    assert fake_registry.tags(REPO) == ["v1"]
    assert fake_registry.get_blob(REPO, digests[0]) == config.read_bytes()


def test_a_blob_already_there_is_not_uploaded_again(dxf, fake_registry):
    # Seed the registry directly: the blob is already in the repository.
    existing = fake_registry.put_blob(REPO, b"already pushed")

    # With data=, python-dxf needs the digest up front (it streams the chunks).
    pushed = dxf.push_blob(data=iter([b"already ", b"pushed"]), digest=sha256(b"already pushed"))
    assert pushed == existing

    # The journal records every request: DXF asked (HEAD) and, answered 200, uploaded nothing.
    fake_registry.requests.assert_called(times=1, route="blob", method="HEAD", reference=existing, status=200)
    fake_registry.requests.assert_not_called(route="blob-upload")
    fake_registry.requests.assert_not_called(route="blob-upload-chunk")


def test_a_new_blob_is_uploaded_once(dxf, fake_registry):
    digest = dxf.push_blob(data=iter([b"new ", b"content"]), digest=sha256(b"new content"))

    # HEAD answered 404, then one POST opened an upload and one PUT finished it.
    fake_registry.requests.assert_called(times=1, route="blob", method="HEAD", status=404, error="BLOB_UNKNOWN")
    fake_registry.requests.assert_called(times=1, route="blob-upload", method="POST", status=202)
    (put,) = fake_registry.requests.assert_called(route="blob-upload-chunk", method="PUT", status=201)
    assert put.args["digest"] == digest
    assert put.bytes_received == len(b"new content")
    assert fake_registry.get_blob(REPO, digest) == b"new content"
