"""The Python API: seeding and inspecting the registry without HTTP."""

import json

import pytest

from fakeregistry import BlobUnknown, FakeRegistry, ManifestUnknown, NameUnknown, RegistryError
from helpers import DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST, descriptor, sha256


def test_put_blob_returns_the_sha256_and_stores_the_bytes(registry):
    digest = registry.put_blob("team/app", b"hello")
    assert digest == sha256(b"hello")
    assert registry.get_blob("team/app", digest) == b"hello"
    assert registry.repositories() == ["team/app"]


def test_put_blob_takes_a_private_copy_of_mutable_data(registry):
    data = bytearray(b"hello")
    digest = registry.put_blob("team/app", data)
    data[:] = b"HELLO"
    assert registry.get_blob("team/app", digest) == b"hello"


def test_get_blob_raises_a_key_error_when_absent(registry):
    registry.put_blob("team/app", b"hello")
    with pytest.raises(KeyError):
        registry.get_blob("team/app", sha256(b"other"))
    with pytest.raises(BlobUnknown, match="unknown to repository other"):
        registry.get_blob("other", sha256(b"hello"))


def test_put_blob_rejects_bad_names(registry):
    with pytest.raises(RegistryError, match="invalid repository name"):
        registry.put_blob("Bad Name", b"x")


def test_push_image_stores_a_valid_oci_image(registry, client):
    image = registry.push_image("team/app", "v1", layers=[b"layer1", b"layer2"])
    assert registry.tags("team/app") == ["v1"]
    assert image.reference == "team/app:v1"
    manifest = json.loads(registry.get_manifest("team/app", "v1"))
    assert manifest["mediaType"] == OCI_MANIFEST
    assert image.digest == sha256(image.manifest)
    assert [layer["digest"] for layer in manifest["layers"]] == [sha256(b"layer1"), sha256(b"layer2")]
    assert {layer["mediaType"] for layer in manifest["layers"]} == {"application/vnd.oci.image.layer.v1.tar"}
    assert [layer["size"] for layer in manifest["layers"]] == [6, 6]
    config = json.loads(registry.get_blob("team/app", manifest["config"]["digest"]))
    assert manifest["config"]["mediaType"] == OCI_CONFIG
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["rootfs"] == {"type": "layers", "diff_ids": [sha256(b"layer1"), sha256(b"layer2")]}
    # ...and it is served over HTTP like any pushed image.
    response = client.get("/v2/team/app/manifests/v1")
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert client.get(f"/v2/team/app/blobs/{image.layer_digests[1]}").data == b"layer2"


def test_push_image_options(registry):
    image = registry.push_image(
        "team/app",
        "arm",
        layers=[b"x"],
        layer_media_type="application/vnd.oci.image.layer.v1.tar+gzip",
        architecture="arm64",
        annotations={"org.opencontainers.image.title": "demo"},
    )
    manifest = json.loads(image.manifest)
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert manifest["annotations"] == {"org.opencontainers.image.title": "demo"}
    assert json.loads(registry.get_blob("team/app", image.config_digest))["architecture"] == "arm64"


def test_put_manifest_from_a_dict(registry):
    config = registry.put_blob("team/app", b"{}")
    digest = registry.put_manifest(
        "team/app",
        "v1",
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config, "size": 2},
            "layers": [],
        },
    )
    assert digest == sha256(registry.get_manifest("team/app", "v1"))
    assert registry.store.manifest("team/app", "v1").media_type == DOCKER_MANIFEST


def test_put_manifest_bytes_are_stored_as_given(registry):
    config = registry.put_blob("team/app", b"{}")
    body = json.dumps({"schemaVersion": 2, "config": descriptor(OCI_CONFIG, b"{}"), "layers": []}, indent=7).encode()
    assert config == sha256(b"{}")
    digest = registry.put_manifest("team/app", "v1", body, media_type=OCI_MANIFEST)
    assert registry.get_manifest("team/app", digest) == body


def test_put_manifest_validates_like_the_http_api(registry):
    with pytest.raises(RegistryError) as raised:
        registry.put_manifest(
            "team/app", "v1", {"schemaVersion": 2, "config": descriptor(OCI_CONFIG, b"{}"), "layers": []}
        )
    assert raised.value.code == "MANIFEST_BLOB_UNKNOWN"
    with pytest.raises(RegistryError) as raised:
        registry.put_manifest("team/app", "-bad-tag", b"{}")
    assert raised.value.code == "TAG_INVALID"


def test_tags_and_manifests_of_unknown_things_raise_key_errors(registry):
    with pytest.raises(NameUnknown):
        registry.tags("nothing/here")
    registry.push_image("team/app", "v1")
    with pytest.raises(ManifestUnknown):
        registry.get_manifest("team/app", "v2")


def test_reset_empties_everything(registry, client):
    registry.push_image("team/app", "v1", layers=[b"x"])
    client.post("/v2/team/app/blobs/uploads/")
    registry.reset()
    assert registry.repositories() == []
    assert registry.store.blobs == {} and registry.store.uploads == {}
    assert client.get("/v2/_catalog").json == {"repositories": []}


def test_registries_are_independent():
    first, second = FakeRegistry(), FakeRegistry()
    first.put_blob("team/app", b"x")
    assert second.repositories() == []
