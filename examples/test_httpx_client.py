"""Testing a registry client built on ``httpx``, in-process.

httpx does not go through requests-mock; instead the client takes an
``httpx.Client`` and the tests hand it ``fake_registry.httpx_client()``: an
``httpx.Client`` whose transport calls the fake registry directly (no socket),
with ``base_url`` set to the registry's URL. In production the same class
gets ``httpx.Client(base_url="https://registry.example.com")``.
"""

import hashlib
import json
from typing import List, Optional

import httpx
import pytest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


# --- the client under test -------------------------------------------------


class Registry:
    """A tiny registry client over an injected ``httpx.Client`` (base_url = the registry)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.http.head(f"/v2/{repository}/blobs/{digest}").status_code == 200:
            return digest  # already there: skip the upload
        # The single-request upload: POST with ?digest= and the body.
        response = self.http.post(f"/v2/{repository}/blobs/uploads/", params={"digest": digest}, content=data)
        response.raise_for_status()
        return digest

    def pull_blob(self, repository: str, digest: str) -> bytes:
        response = self.http.get(f"/v2/{repository}/blobs/{digest}")
        response.raise_for_status()
        return response.content

    def resolve(self, repository: str, tag: str) -> Optional[str]:
        """The digest a tag points to, from a HEAD; None when the tag does not exist."""
        response = self.http.head(
            f"/v2/{repository}/manifests/{tag}", headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"}
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]

    def list_tags(self, repository: str, page_size: int = 100) -> List[str]:
        """All tags, following the ``Link: <...>; rel="next"`` pagination header."""
        tags: List[str] = []
        url: Optional[str] = f"/v2/{repository}/tags/list?n={page_size}"
        while url:
            response = self.http.get(url)
            response.raise_for_status()
            tags += response.json()["tags"]
            url = response.links.get("next", {}).get("url")
        return tags


# --- its tests ---------------------------------------------------------------


@pytest.fixture
def registry(fake_registry):
    with fake_registry.httpx_client() as http:
        yield Registry(http)


def test_push_and_pull_a_blob(registry, fake_registry):
    digest = registry.push_blob("team/app", b"some bytes")

    assert registry.pull_blob("team/app", digest) == b"some bytes"
    assert fake_registry.get_blob("team/app", digest) == b"some bytes"


def test_push_skips_blobs_the_registry_has(registry, fake_registry):
    digest = fake_registry.put_blob("team/app", b"some bytes")

    assert registry.push_blob("team/app", b"some bytes") == digest
    fake_registry.requests.assert_called(times=1, route="blob", method="HEAD", reference=digest, status=200)
    fake_registry.requests.assert_not_called(route="blob-upload")


def test_resolve_a_tag(registry, fake_registry):
    image = fake_registry.push_image("team/app", "v1", layers=[b"layer"])

    assert registry.resolve("team/app", "v1") == image.digest
    assert registry.resolve("team/app", "v2") is None


def test_list_tags_follows_pagination(registry, fake_registry):
    image = fake_registry.push_image("team/app", "v1", layers=[b"layer"])
    for tag in ("v2", "v3", "latest"):
        fake_registry.put_manifest("team/app", tag, image.manifest)

    assert registry.list_tags("team/app", page_size=2) == ["latest", "v1", "v2", "v3"]
    # Two pages of two: the client followed the Link header once.
    pages = fake_registry.requests.assert_called(times=2, route="tags", method="GET", status=200)
    assert [page.args.get("last") for page in pages] == [None, "v1"]


def test_errors_carry_the_spec_error_code(registry):
    missing = "sha256:" + "0" * 64
    with pytest.raises(httpx.HTTPStatusError) as raised:
        registry.pull_blob("team/app", missing)

    assert raised.value.response.status_code == 404
    (error,) = raised.value.response.json()["errors"]
    # The repository does not exist either; the reference registry still answers BLOB_UNKNOWN.
    assert error["code"] == "BLOB_UNKNOWN"


def test_manifest_bytes_are_served_as_pushed(fake_registry):
    # Without a client class: fake_registry.httpx_client() is an ordinary httpx.Client.
    manifest = fake_registry.push_image("team/app", "v1", layers=[b"layer"]).manifest
    with fake_registry.httpx_client() as http:
        response = http.get("/v2/team/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_MANIFEST
    assert response.content == manifest
    assert json.loads(response.content)["schemaVersion"] == 2
