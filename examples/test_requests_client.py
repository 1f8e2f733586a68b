"""Testing a small hand-written registry client built on ``requests``.

The client below is what a project might write itself: push a blob, push a
manifest, pull a manifest. Its tests use the ``fake_registry`` fixture, which
answers ``requests`` calls to ``fake_registry.url`` (http://registry.test)
in-process, errors included, exactly as a real registry would.
"""

import hashlib
import json

import pytest
import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


# --- the client under test -------------------------------------------------


class RegistryError(Exception):
    """An error answered by the registry: ``code`` is the spec's error code (MANIFEST_UNKNOWN...)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


def check(response: requests.Response) -> requests.Response:
    if response.status_code >= 400:
        error = (response.json().get("errors") or [{}])[0]
        raise RegistryError(response.status_code, error.get("code", ""), error.get("message", ""))
    return response


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(base_url: str, repository: str, data: bytes) -> str:
    """The two-step monolithic upload: POST opens a session, PUT ?digest= sends the bytes and closes it."""
    digest = digest_of(data)
    started = check(requests.post(f"{base_url}/v2/{repository}/blobs/uploads/", timeout=10))
    location = started.headers["Location"]  # may carry a query already: add the digest properly
    check(requests.put(location, params={"digest": digest}, data=data, timeout=10))
    return digest


def push_manifest(base_url: str, repository: str, tag: str, manifest: dict) -> str:
    body = json.dumps(manifest).encode()
    response = check(
        requests.put(
            f"{base_url}/v2/{repository}/manifests/{tag}",
            data=body,
            headers={"Content-Type": manifest["mediaType"]},
            timeout=10,
        )
    )
    return response.headers["Docker-Content-Digest"]


def pull_manifest(base_url: str, repository: str, tag: str) -> dict:
    response = check(
        requests.get(f"{base_url}/v2/{repository}/manifests/{tag}", headers={"Accept": OCI_MANIFEST}, timeout=10)
    )
    return response.json()


def push_image(base_url: str, repository: str, tag: str, layer: bytes) -> str:
    """Push a one-layer OCI image: the blobs first, then the manifest that refers to them."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    config_digest = push_blob(base_url, repository, config.encode())
    layer_digest = push_blob(base_url, repository, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
    }
    return push_manifest(base_url, repository, tag, manifest)


# --- its tests ---------------------------------------------------------------


def test_push_blob(fake_registry):
    digest = push_blob(fake_registry.url, "team/app", b"layer contents")

    assert digest == digest_of(b"layer contents")
    assert fake_registry.get_blob("team/app", digest) == b"layer contents"


def test_push_and_pull_an_image(fake_registry):
    digest = push_image(fake_registry.url, "team/app", "v1", b"layer contents")

    manifest = pull_manifest(fake_registry.url, "team/app", "v1")
    assert manifest["layers"][0]["digest"] == digest_of(b"layer contents")
    # The registry stored the manifest byte for byte: its digest is the one the PUT answered.
    assert digest_of(fake_registry.get_manifest("team/app", "v1")) == digest
    assert fake_registry.tags("team/app") == ["v1"]


def test_pull_a_manifest_seeded_with_the_python_api(fake_registry):
    # No need to push through the client to test the pull side: seed the registry directly.
    image = fake_registry.push_image("team/app", "v1", layers=[b"one", b"two"])

    manifest = pull_manifest(fake_registry.url, "team/app", "v1")
    assert [layer["digest"] for layer in manifest["layers"]] == list(image.layer_digests)


def test_pulling_a_missing_tag_raises_manifest_unknown(fake_registry):
    fake_registry.push_image("team/app", "v1", layers=[b"one"])

    with pytest.raises(RegistryError) as raised:
        pull_manifest(fake_registry.url, "team/app", "v2")

    # The fake answers as the spec says a registry must: 404 with the MANIFEST_UNKNOWN code.
    assert (raised.value.status, raised.value.code) == (404, "MANIFEST_UNKNOWN")


def test_a_manifest_is_rejected_until_its_blobs_are_pushed(fake_registry):
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(b"{}"), "size": 2},
        "layers": [],
    }
    with pytest.raises(RegistryError) as raised:
        push_manifest(fake_registry.url, "team/app", "v1", manifest)
    assert raised.value.code == "MANIFEST_BLOB_UNKNOWN"


def test_the_client_sends_the_manifest_media_type(fake_registry):
    push_image(fake_registry.url, "team/app", "v1", b"layer contents")

    # The journal keeps every request: two blob uploads of two requests each, then one manifest PUT.
    fake_registry.requests.assert_called(times=2, route="blob-upload", method="POST", status=202)
    fake_registry.requests.assert_called(times=2, route="blob-upload-chunk", method="PUT", status=201)
    (put,) = fake_registry.requests.assert_called(route="manifest", method="PUT", repository="team/app", reference="v1")
    assert put.status == 201
    assert put.headers["Content-Type"] == OCI_MANIFEST
