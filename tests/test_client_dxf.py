"""python-dxf, a real registry client, against fakeregistry on a loopback socket.

python-dxf uploads a blob in one PUT: from a file (with Content-Length) or
from an iterable of chunks (with Transfer-Encoding: chunked); it names sets of
blobs with "aliases", which are Docker schema 2 manifests under a tag.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator, Optional

import pytest
import requests
from dxf import DXF, DXFBase

from helpers import sha256

REPO = "team/blobs"
SMALL = b"a small blob, pushed from a file\n"
# Over the fake's 1 MiB read size, and not a multiple of the chunk size, so the
# body arrives in many HTTP chunks and the last one is short.
LARGE = random.Random(0).randbytes(3 * 1024 * 1024 + 123)
CHUNK = 64 * 1024


@pytest.fixture
def dxf(live_server) -> Iterator[DXF]:
    # As a context manager DXF holds one requests.Session, as a long-lived client would.
    with DXF(live_server.host, REPO, insecure=True, timeout=10) as client:
        yield client


def chunks_of(data: bytes, size: int = CHUNK) -> Iterator[bytes]:
    # A generator, not a list: requests takes a list for form fields (and fails on
    # one of bytes), but streams a generator with Transfer-Encoding: chunked.
    for start in range(0, len(data), size):
        yield data[start : start + size]


def push_file(dxf: DXF, tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    return dxf.push_blob(str(path))


def push_chunks(dxf: DXF, data: bytes) -> str:
    return dxf.push_blob(data=chunks_of(data), digest=sha256(data))


def pull(dxf: DXF, digest: str, chunk_size: Optional[int] = None) -> bytes:
    # pull_blob checks the digest itself once the iterator is exhausted.
    return b"".join(dxf.pull_blob(digest, chunk_size=chunk_size))


def test_api_version_check(dxf):
    body, response = dxf.api_version_check()
    assert body == "{}"
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_small_blob_pushed_from_a_file_round_trips(dxf, live_server, tmp_path):
    digest = push_file(dxf, tmp_path, SMALL)

    assert digest == sha256(SMALL)
    assert live_server.registry.get_blob(REPO, digest) == SMALL
    assert dxf.blob_size(digest) == len(SMALL)
    assert pull(dxf, digest) == SMALL
    (put,) = live_server.registry.requests.filter(route="blob-upload-chunk", method="PUT")
    assert put.headers["Content-Length"] == str(len(SMALL))  # one monolithic body
    assert put.status == 201


def test_large_blob_streamed_in_chunks_round_trips(dxf, live_server):
    digest = push_chunks(dxf, LARGE)

    (put,) = live_server.registry.requests.filter(route="blob-upload-chunk", method="PUT")
    assert put.headers.get("Transfer-Encoding") == "chunked"  # the path under test
    assert "Content-Length" not in put.headers
    assert put.args["digest"] == digest
    assert live_server.registry.get_blob(REPO, digest) == LARGE
    assert dxf.blob_size(digest) == len(LARGE)

    chunks, size = dxf.pull_blob(digest, size=True, chunk_size=CHUNK)
    pieces = list(chunks)
    assert size == len(LARGE)
    assert len(pieces) > 1
    assert b"".join(pieces) == LARGE


def test_push_skips_a_blob_the_repository_already_has(dxf, live_server):
    digest = live_server.registry.put_blob(REPO, SMALL)  # seeded through the Python API

    assert dxf.push_blob(data=chunks_of(SMALL), digest=digest) == digest
    # check_exists: a HEAD that answers 200, and no upload.
    assert [(r.method, r.status) for r in live_server.registry.requests] == [("HEAD", 200)]


def test_push_with_the_wrong_digest_is_refused_and_stores_nothing(dxf, live_server):
    wrong = sha256(SMALL)

    with pytest.raises(requests.HTTPError) as refused:
        dxf.push_blob(data=chunks_of(LARGE), digest=wrong)

    assert refused.value.response.status_code == 400
    assert refused.value.response.json()["errors"][0]["code"] == "DIGEST_INVALID"
    with pytest.raises(KeyError):
        live_server.registry.get_blob(REPO, wrong)


def test_mount_blob_from_another_repository(dxf, live_server):
    digest = live_server.registry.put_blob("team/source", SMALL)

    assert dxf.mount_blob("team/source", digest) == digest
    assert live_server.registry.get_blob(REPO, digest) == SMALL


def test_alias_names_a_set_of_blobs(dxf, live_server):
    large, small = push_chunks(dxf, LARGE), push_chunks(dxf, SMALL)

    manifest_json = dxf.set_alias("v1", large, small)

    assert dxf.get_alias("v1") == [large, small]
    assert dxf.get_alias("v1", sizes=True) == [(large, len(LARGE)), (small, len(SMALL))]
    # python-dxf uses the first blob as the manifest's config, so that is the alias's digest.
    assert dxf.get_digest("v1") == large
    assert dxf.get_manifest("v1") == manifest_json
    digest, _ = dxf.head_manifest_and_response("v1")
    assert digest == sha256(manifest_json.encode())
    # Stored byte for byte as pushed, under the tag.
    assert live_server.registry.get_manifest(REPO, "v1") == manifest_json.encode()
    assert live_server.registry.tags(REPO) == ["v1"]


def test_list_aliases_and_repos_page_through_link_headers(dxf, live_server):
    registry = live_server.registry
    tags = [f"t{i}" for i in range(5)]
    for tag in tags:
        registry.push_image(REPO, tag, layers=[tag.encode()])
    registry.push_image("team/other", "v1")
    registry.push_image("zeta", "v1")

    assert dxf.list_aliases() == tags
    assert dxf.list_aliases(batch_size=2) == tags
    # Three pages of two: the client followed the registry's Link header twice.
    assert len(live_server.registry.requests.filter(route="tags")) == 1 + 3
    assert list(dxf.list_aliases(batch_size=2, iterate=True)) == tags

    base = DXFBase(live_server.host, insecure=True, timeout=10)
    assert base.list_repos() == ["team/blobs", "team/other", "zeta"]
    assert base.list_repos(batch_size=1) == ["team/blobs", "team/other", "zeta"]


def test_del_alias_keeps_the_blobs_and_del_blob_removes_one(dxf, live_server):
    registry = live_server.registry
    large, small = push_chunks(dxf, LARGE), push_chunks(dxf, SMALL)
    dxf.set_alias("v1", large, small)

    # python-dxf deletes the manifest by the digest the registry reported for the tag.
    assert dxf.del_alias("v1") == [large, small]
    assert dxf.list_aliases() == []
    with pytest.raises(KeyError):
        registry.get_manifest(REPO, "v1")
    with pytest.raises(requests.HTTPError) as missing_alias:
        dxf.get_alias("v1")
    assert missing_alias.value.response.status_code == 404
    assert registry.get_blob(REPO, small) == SMALL

    dxf.del_blob(small)

    with pytest.raises(KeyError):
        registry.get_blob(REPO, small)
    with pytest.raises(requests.HTTPError) as missing_blob:
        dxf.blob_size(small)
    assert missing_blob.value.response.status_code == 404
    assert registry.get_blob(REPO, large) == LARGE  # the other blob is untouched
